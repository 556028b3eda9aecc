//! A fake host+enclave on a local port: real WebSocket, real simulated attestation, real
//! Noise, an in-memory SVR2 table, and scripted faults.
// tungstenite's upgrade callback fixes the large `Result<Response, ErrorResponse>` shape.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use cloister_proto::prost::Message as _;
use cloister_proto::svr2::client::{
    BackupResponse, DeleteResponse, ExposeResponse, Request, Response, RestoreResponse,
    TriesResponse, request, response,
};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{
    ErrorResponse, Request as Upgrade, Response as Reply,
};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use cloister_noise::ClientHandshake;

use super::SimulatedEnclave;
use crate::{ConnectOptions, Credentials, EnclaveId};

/// What to do to one connection before any request.
#[derive(Debug, Clone)]
pub(crate) enum ConnectionFault {
    /// Refuse the upgrade with this status and optional Retry-After.
    Http(u16, Option<&'static str>),
    /// Attest this group id instead of the usual one.
    Group(u64),
    /// Send this frame instead of the handshake start.
    FirstFrame(Vec<u8>),
    /// Accept the upgrade and then say nothing.
    Silent,
}

/// What to do to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestFault {
    /// Serve the request normally.
    Pass,
    /// Close with this code without applying the request.
    CloseBefore(u16),
    /// Apply the request, then drop the TCP connection without answering.
    DropAfter,
    /// Answer with a Delete response whatever was asked.
    WrongType,
}

#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub data: Vec<u8>,
    pub pin: Vec<u8>,
    pub tries: u32,
    pub exposed: bool,
}

#[derive(Default)]
pub(crate) struct State {
    pub connection_faults: VecDeque<ConnectionFault>,
    pub request_faults: VecDeque<RequestFault>,
    pub rows: BTreeMap<String, Row>,
    /// Operations applied, in order ("backup", "expose", ...).
    pub applied: Vec<&'static str>,
    pub connections: u32,
}

pub(crate) struct FakeServer {
    pub base_url: String,
    pub state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) const GROUP_ID: u64 = 0x5eed;
pub(crate) const USERNAME: &str = "00112233445566778899aabbccddeeff";

impl FakeServer {
    /// A server whose group speaks NK.
    pub(crate) async fn start() -> FakeServer {
        FakeServer::start_with(ClientHandshake::Classical).await
    }

    /// A server whose group has `client_pq`: its evidence says so and it answers NKhfs.
    pub(crate) async fn start_pq() -> FakeServer {
        FakeServer::start_with(ClientHandshake::PostQuantum).await
    }

    async fn start_with(pattern: ClientHandshake) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("ws://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let enclave = Arc::new(SimulatedEnclave::new(GROUP_ID));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, enclave.clone(), pattern, shared.clone()));
            }
        });
        FakeServer {
            base_url,
            state,
            task,
        }
    }

    pub(crate) fn client(&self) -> crate::Client {
        let credentials = Credentials::new(USERNAME, "1700000000:00112233445566778899").unwrap();
        let mut options = ConnectOptions::insecure_simulated();
        options.timeouts.handshake = std::time::Duration::from_millis(500);
        options.timeouts.response = std::time::Duration::from_secs(2);
        let id = EnclaveId::new(cloister_attest::sim::measurement());
        crate::Client::new(&self.base_url, id, credentials, options).unwrap()
    }

    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Check the upgrade like the host does; answer with `fault`'s status if scripted.
fn check_upgrade(
    upgrade: &Upgrade,
    reply: Reply,
    fault: Option<&ConnectionFault>,
    username: &mut Option<String>,
) -> Result<Reply, ErrorResponse> {
    let refuse = |status: u16, retry_after: Option<&str>| {
        let mut builder = tokio_tungstenite::tungstenite::http::Response::builder().status(status);
        if let Some(value) = retry_after {
            builder = builder.header("retry-after", value);
        }
        Err(builder.body(None).unwrap())
    };
    if let Some(ConnectionFault::Http(status, retry_after)) = fault {
        return refuse(*status, *retry_after);
    }
    let expected_path = format!("/v1/{}", hex::encode(cloister_attest::sim::measurement()));
    if upgrade.uri().path() != expected_path {
        return refuse(404, None);
    }
    let header = upgrade
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok());
    let decoded = header
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|value| base64::engine::general_purpose::STANDARD.decode(value).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    match decoded.as_deref().and_then(|text| text.split_once(':')) {
        Some((user, password)) if user.len() == 32 && !password.is_empty() => {
            *username = Some(user.to_owned());
            Ok(reply)
        }
        _ => refuse(401, None),
    }
}

async fn serve(
    stream: TcpStream,
    enclave: Arc<SimulatedEnclave>,
    pattern: ClientHandshake,
    state: Arc<Mutex<State>>,
) {
    let fault = {
        let mut state = state.lock().unwrap();
        state.connections += 1;
        state.connection_faults.pop_front()
    };
    let mut username = None;
    let callback = |upgrade: &Upgrade, reply: Reply| {
        check_upgrade(upgrade, reply, fault.as_ref(), &mut username)
    };
    let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let Some(username) = username else { return };
    let Some(mut transport) = handshake(&mut socket, &enclave, pattern, fault.as_ref()).await
    else {
        return;
    };
    let mut buffer = vec![0u8; 65535];
    while let Some(Ok(Message::Binary(frame))) = socket.next().await {
        let length = transport.read_message(&frame, &mut buffer).unwrap();
        let request = Request::decode(&buffer[..length]).unwrap();
        let fault = state.lock().unwrap().request_faults.pop_front();
        if let Some(RequestFault::CloseBefore(code)) = fault {
            close(&mut socket, code).await;
            return;
        }
        let mut response = apply(&mut state.lock().unwrap(), &username, request);
        match fault {
            Some(RequestFault::DropAfter) => return,
            Some(RequestFault::WrongType) => {
                response = Response {
                    inner: Some(response::Inner::Delete(DeleteResponse {})),
                }
            }
            _ => {}
        }
        let length = transport
            .write_message(&response.encode_to_vec(), &mut buffer)
            .unwrap();
        let frame = Bytes::copy_from_slice(&buffer[..length]);
        if socket.send(Message::Binary(frame)).await.is_err() {
            return;
        }
    }
}

/// Send the first frame (or the scripted fault) and answer Noise message 1.
async fn handshake(
    socket: &mut WebSocketStream<TcpStream>,
    enclave: &SimulatedEnclave,
    pattern: ClientHandshake,
    fault: Option<&ConnectionFault>,
) -> Option<snow::TransportState> {
    let client_pq = pattern == ClientHandshake::PostQuantum;
    let first = match fault {
        Some(ConnectionFault::FirstFrame(frame)) => frame.clone(),
        Some(ConnectionFault::Silent) => {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            return None;
        }
        Some(ConnectionFault::Group(group_id)) => {
            let evidence = enclave.evidence(now(), |group| {
                group.group_id = *group_id;
                group.client_pq = client_pq;
            });
            super::handshake_start_bytes(&evidence, &enclave.public_key())
        }
        _ if client_pq => enclave.handshake_start_pq(now()),
        _ => enclave.handshake_start(now()),
    };
    socket
        .send(Message::Binary(Bytes::from(first)))
        .await
        .ok()?;
    let Some(Ok(Message::Binary(message1))) = socket.next().await else {
        return None;
    };
    let mut responder = enclave.responder(pattern);
    let mut buffer = vec![0u8; 65535];
    responder.read_message(&message1, &mut buffer).ok()?;
    let length = responder.write_message(&[], &mut buffer).unwrap();
    let reply = Bytes::copy_from_slice(&buffer[..length]);
    socket.send(Message::Binary(reply)).await.ok()?;
    Some(responder.into_transport_mode().unwrap())
}

async fn close(socket: &mut WebSocketStream<TcpStream>, code: u16) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: "scripted".into(),
    };
    let _ = socket.close(Some(frame)).await;
}

/// The SVR2 table semantics, as the spec states them.
fn apply(state: &mut State, user: &str, request: Request) -> Response {
    use response::Inner as Out;
    let inner = match request.inner.unwrap() {
        request::Inner::Backup(backup) => {
            state.applied.push("backup");
            let row = Row {
                data: backup.data,
                pin: backup.pin,
                tries: backup.max_tries,
                exposed: false,
            };
            state.rows.insert(user.to_owned(), row);
            Out::Backup(BackupResponse { status: 1 })
        }
        request::Inner::Expose(expose) => {
            state.applied.push("expose");
            let row = state
                .rows
                .get_mut(user)
                .filter(|row| row.data == expose.data);
            let status = row.map(|row| row.exposed = true).map_or(2, |_| 1);
            Out::Expose(ExposeResponse { status })
        }
        request::Inner::Restore(restore) => {
            state.applied.push("restore");
            Out::Restore(restore_row(&mut state.rows, user, &restore.pin))
        }
        request::Inner::Delete(_) => {
            state.applied.push("delete");
            state.rows.remove(user);
            Out::Delete(DeleteResponse {})
        }
        request::Inner::Tries(_) => {
            state.applied.push("tries");
            Out::Tries(match state.rows.get(user) {
                Some(row) => TriesResponse {
                    status: 1,
                    tries: row.tries,
                    exposed: row.exposed,
                },
                None => TriesResponse {
                    status: 2,
                    tries: 0,
                    exposed: false,
                },
            })
        }
    };
    Response { inner: Some(inner) }
}

fn restore_row(rows: &mut BTreeMap<String, Row>, user: &str, pin: &[u8]) -> RestoreResponse {
    let missing = RestoreResponse {
        status: 2,
        data: vec![],
        tries: 0,
    };
    let Some(row) = rows.get_mut(user).filter(|row| row.exposed) else {
        return missing;
    };
    if row.pin == pin {
        return RestoreResponse {
            status: 1,
            data: row.data.clone(),
            tries: row.tries,
        };
    }
    row.tries -= 1;
    if row.tries == 0 {
        rows.remove(user);
        return missing;
    }
    RestoreResponse {
        status: 3,
        data: vec![],
        tries: row.tries,
    }
}
