//! A scripted fake enclave for the host's own tests: it speaks the real door's bytes and
//! answers like the core would, with a few magic client payloads to provoke failures.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use cloister_proto::attest::GroupConfig;
use cloister_proto::enclave::{
    Done, EnclaveLogLevel, EnclaveMessage, EnclaveStatus, Error, ErrorCode, ExistingClientReply,
    HashesReply, HostToEnclaveResponse, LogRecord, Metric, MetricsReply, NewClientReply,
    UntrustedMessage, enclave_message, host_to_enclave_request::Inner as Request,
    host_to_enclave_response::Inner as Response, untrusted_message,
};
use cloister_proto::svr2::client::ClientHandshakeStart;
use prost::Message;

use crate::door::EnclaveDoor;

pub(crate) const FAKE_MEASUREMENT: [u8; 32] = [0xab; 32];

/// What the fake was asked, in order (request kinds, e.g. "close_client 1").
pub(crate) type Journal = Arc<Mutex<Vec<String>>>;

pub(crate) struct FakeEnclave {
    out: VecDeque<Vec<u8>>,
    held: Vec<Vec<u8>>,
    clients: BTreeSet<u64>,
    next_client_id: u64,
    group: bool,
    journal: Journal,
}

impl FakeEnclave {
    pub(crate) fn new(group: bool) -> (Self, Journal) {
        let journal = Journal::default();
        let fake = FakeEnclave {
            out: VecDeque::new(),
            held: Vec::new(),
            clients: BTreeSet::new(),
            next_client_id: 1,
            group,
            journal: journal.clone(),
        };
        (fake, journal)
    }

    fn emit(&mut self, inner: enclave_message::Inner) {
        self.out
            .push_back(EnclaveMessage { inner: Some(inner) }.encode_to_vec());
    }

    fn answer(&mut self, request_id: u64, inner: Response) {
        let response = HostToEnclaveResponse {
            request_id,
            inner: Some(inner),
        };
        self.emit(enclave_message::Inner::H2eResponse(response));
    }

    fn error(code: ErrorCode, message: &str) -> Response {
        Response::Error(Error {
            code: code.into(),
            message: message.to_owned(),
        })
    }

    fn on_request(&mut self, request_id: u64, request: Request) -> Result<(), String> {
        let answer = match request {
            Request::NewClient(new) => self.on_new_client(&new.client_authenticated_id),
            Request::ExistingClient(existing) => {
                match self.on_existing_client(request_id, existing.client_id, &existing.data)? {
                    Some(answer) => answer,
                    None => return Ok(()),
                }
            }
            Request::CloseClient(close) => {
                self.record(format!("close_client {}", close.client_id));
                if self.clients.remove(&close.client_id) {
                    Response::Done(Done {})
                } else {
                    Self::error(ErrorCode::NotFound, "no such client")
                }
            }
            Request::GetEnclaveStatus(_) => Response::Status(self.status()),
            Request::CreateNewRaftGroup(_) if self.group => {
                Self::error(ErrorCode::FailedPrecondition, "group exists")
            }
            Request::CreateNewRaftGroup(request) => {
                self.record(format!("create_group {}", request.max_voting_replicas));
                self.group = true;
                Response::Status(self.status())
            }
            Request::DeleteBackup(delete) if delete.backup_id.len() == 16 => {
                self.record(format!("delete_backup {}", hex::encode(&delete.backup_id)));
                Response::Done(Done {})
            }
            Request::Hashes(_) => Response::Hashes(HashesReply {
                db_hash: vec![1; 32],
                commit_index: 5,
                applied_index: 5,
            }),
            Request::Metrics(_) => Response::Metrics(self.metrics()),
            Request::UpdateMinimums(update) => {
                let limits = update.limits.unwrap_or_default().limits;
                let named: Vec<String> = limits
                    .iter()
                    .map(|(name, value)| format!("{name}={}", hex::encode(value)))
                    .collect();
                self.record(format!("update_minimums {}", named.join(",")));
                Response::Done(Done {})
            }
            Request::SetLogLevel(level) => {
                self.record(format!("log_level {}", level.log_level));
                Response::Done(Done {})
            }
            _ => Self::error(ErrorCode::NotSupported, "not in this fake"),
        };
        self.answer(request_id, answer);
        Ok(())
    }

    fn on_new_client(&mut self, backup_id: &[u8]) -> Response {
        if backup_id.len() != 16 {
            return Self::error(ErrorCode::InvalidArgument, "backup id size");
        }
        if !self.group {
            return Self::error(ErrorCode::Unavailable, "no group");
        }
        let client_id = self.next_client_id;
        self.next_client_id += 1;
        self.clients.insert(client_id);
        self.record(format!("new_client {client_id}"));
        Response::NewClient(NewClientReply {
            client_id,
            handshake_start: Some(ClientHandshakeStart {
                test_only_pubkey: vec![9; 32],
                evidence: b"evidence".to_vec(),
                endorsement: Vec::new(),
            }),
        })
    }

    /// Magic payloads: "invalid", "unavailable", "internal" end the session with that code;
    /// "hang" never answers; "late" answers at the next tick; "refuse" makes `handle` fail;
    /// "panic" panics. Anything else is echoed with an "echo:" prefix.
    fn on_existing_client(
        &mut self,
        request_id: u64,
        client_id: u64,
        data: &[u8],
    ) -> Result<Option<Response>, String> {
        if !self.clients.contains(&client_id) {
            return Ok(Some(Self::error(ErrorCode::NotFound, "no such client")));
        }
        let ending = match data {
            b"invalid" => Some(ErrorCode::InvalidArgument),
            b"unavailable" => Some(ErrorCode::Unavailable),
            b"internal" => Some(ErrorCode::Internal),
            _ => None,
        };
        if let Some(code) = ending {
            self.clients.remove(&client_id);
            return Ok(Some(Self::error(code, "session ended")));
        }
        match data {
            b"hang" => Ok(None),
            b"refuse" => Err("refused by the fake".to_owned()),
            b"panic" => panic!("the fake enclave was asked to panic"),
            b"late" => {
                let reply = ExistingClientReply {
                    data: b"late".to_vec(),
                };
                let response = HostToEnclaveResponse {
                    request_id,
                    inner: Some(Response::ExistingClient(reply)),
                };
                let message = enclave_message::Inner::H2eResponse(response);
                self.held.push(
                    EnclaveMessage {
                        inner: Some(message),
                    }
                    .encode_to_vec(),
                );
                Ok(None)
            }
            _ => {
                let echoed = [b"echo:".as_slice(), data].concat();
                Ok(Some(Response::ExistingClient(ExistingClientReply {
                    data: echoed,
                })))
            }
        }
    }

    fn status(&self) -> EnclaveStatus {
        EnclaveStatus {
            role: if self.group { "leader" } else { "none" }.to_owned(),
            term: u64::from(self.group),
            leader_raft_id: u64::from(self.group),
            raft_id: 1,
            peer_id: vec![7; 32],
            group_config: self.group.then(|| GroupConfig {
                group_id: 42,
                simulated: true,
                ..GroupConfig::default()
            }),
            client_sessions: self.clients.len() as u64,
            measurement: FAKE_MEASUREMENT.to_vec(),
            simulated: true,
            ..EnclaveStatus::default()
        }
    }

    fn metrics(&self) -> MetricsReply {
        let metric = |name: &str, value: u64| Metric {
            name: name.to_owned(),
            value,
        };
        MetricsReply {
            counters: vec![metric("client_sessions_opened", self.next_client_id - 1)],
            gauges: vec![metric("client_sessions", self.clients.len() as u64)],
        }
    }

    fn record(&self, entry: String) {
        self.journal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(entry);
    }
}

impl EnclaveDoor for FakeEnclave {
    fn handle(&mut self, untrusted_message: &[u8]) -> Result<(), String> {
        let message =
            UntrustedMessage::decode(untrusted_message).map_err(|error| error.to_string())?;
        match message.inner {
            Some(untrusted_message::Inner::H2eRequest(request)) => match request.inner {
                Some(inner) => self.on_request(request.request_id, inner),
                None => {
                    let answer = Self::error(ErrorCode::InvalidArgument, "empty request");
                    self.answer(request.request_id, answer);
                    Ok(())
                }
            },
            Some(untrusted_message::Inner::TimerTick(tick)) => {
                let held = std::mem::take(&mut self.held);
                self.out.extend(held);
                let record = LogRecord {
                    level: EnclaveLogLevel::Verbose.into(),
                    message: format!("tick {}", tick.new_timestamp_unix_secs),
                };
                self.emit(enclave_message::Inner::Log(record));
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn poll_message(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }
}

/// The auth secret every test node uses.
pub(crate) const TEST_SECRET: [u8; 32] = [5; 32];
/// A backup id for tests.
pub(crate) const TEST_USER: &str = "00112233445566778899aabbccddeeff";

/// A node over the fake enclave, on loopback ports chosen by the OS.
pub(crate) struct TestNode {
    pub node: crate::Node,
    pub journal: Journal,
    dir: std::path::PathBuf,
}

impl TestNode {
    pub(crate) async fn start(group: bool, edit: impl FnOnce(&mut crate::HostConfig)) -> TestNode {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "cloister-host-node-{}-{unique}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let secret_path = dir.join("auth.secret");
        std::fs::write(&secret_path, format!("{}\n", hex::encode(TEST_SECRET))).unwrap();
        let mut config = crate::HostConfig {
            client_listen_addr: "127.0.0.1:0".parse().unwrap(),
            admin_listen_addr: "127.0.0.1:0".parse().unwrap(),
            auth_secret_path: secret_path,
            tick_interval: std::time::Duration::from_millis(50),
            shutdown_grace: std::time::Duration::from_secs(2),
            ..crate::HostConfig::default()
        };
        edit(&mut config);
        let (fake, journal) = FakeEnclave::new(group);
        let node = crate::Node::start(config, fake).await.unwrap();
        TestNode { node, journal, dir }
    }

    pub(crate) fn journal(&self) -> Vec<String> {
        self.journal.lock().unwrap().clone()
    }

    pub(crate) async fn stop(self) {
        self.node.shutdown().await.unwrap();
        std::fs::remove_dir_all(&self.dir).unwrap();
    }
}

/// `Basic base64(user:password)` with a freshly minted password.
pub(crate) fn basic_auth(user: &str) -> String {
    use base64::Engine;
    let secret = crate::auth::AuthSecret::from_bytes(TEST_SECRET);
    let password = crate::auth::mint(&secret, user, crate::unix_now_secs()).unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// A status, headers (lowercase names) and body from one HTTP/1.1 exchange.
pub(crate) struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpAnswer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }
}

/// A minimal HTTP/1.1 client: one request per connection.
pub(crate) async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpAnswer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value == "chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    HttpAnswer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}
