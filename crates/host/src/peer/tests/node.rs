//! Nodes over a fake enclave that speaks peer messages: the dispatcher hands the enclave's
//! `PeerMessage`s to the transport, and the transport's messages and resets to the enclave.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;

use cloister_proto::enclave::{
    EnclaveMessage, EnclaveStatus, Error, ErrorCode, HostToEnclaveResponse, PeerMessage,
    UntrustedMessage, enclave_message, host_to_enclave_request::Inner as Request,
    host_to_enclave_response::Inner as Response, untrusted_message,
};
use prost::Message as _;

use super::*;
use crate::door::EnclaveDoor;
use crate::testing::http;
use crate::{HostConfig, Node};

type Outbox = Arc<Mutex<Vec<(PeerId, Vec<u8>)>>>;
type Journal = Arc<Mutex<Vec<String>>>;

/// Answers status with its peer id; records peer messages ("02 ping") and resets
/// ("reset 09") by the peer id's first byte; echoes every message not already an echo; and
/// sends whatever the test puts in its outbox at the next message it handles (ticks come
/// every 20 ms).
struct PeerFake {
    peer_id: PeerId,
    out: VecDeque<Vec<u8>>,
    outbox: Outbox,
    journal: Journal,
}

impl PeerFake {
    fn new(byte: u8) -> (PeerFake, Outbox, Journal) {
        let (outbox, journal) = (Outbox::default(), Journal::default());
        let fake = PeerFake {
            peer_id: id(byte),
            out: VecDeque::new(),
            outbox: outbox.clone(),
            journal: journal.clone(),
        };
        (fake, outbox, journal)
    }

    fn emit(&mut self, inner: enclave_message::Inner) {
        let message = EnclaveMessage { inner: Some(inner) };
        self.out.push_back(message.encode_to_vec());
    }

    fn send(&mut self, peer_id: Vec<u8>, data: Vec<u8>) {
        self.emit(enclave_message::Inner::PeerMessage(PeerMessage {
            peer_id,
            data,
        }));
    }

    fn answer(&mut self, request_id: u64, request: Option<Request>) {
        let answer = match request {
            Some(Request::GetEnclaveStatus(_)) => Response::Status(EnclaveStatus {
                peer_id: self.peer_id.as_bytes().to_vec(),
                measurement: vec![0xcd; 32],
                ..EnclaveStatus::default()
            }),
            _ => Response::Error(Error {
                code: ErrorCode::NotSupported.into(),
                message: "not in this fake".to_owned(),
            }),
        };
        let response = HostToEnclaveResponse {
            request_id,
            inner: Some(answer),
        };
        self.emit(enclave_message::Inner::H2eResponse(response));
    }
}

impl EnclaveDoor for PeerFake {
    fn handle(&mut self, bytes: &[u8]) -> Result<(), String> {
        let message = UntrustedMessage::decode(bytes).map_err(|error| error.to_string())?;
        match message.inner {
            Some(untrusted_message::Inner::H2eRequest(request)) => {
                self.answer(request.request_id, request.inner);
            }
            Some(untrusted_message::Inner::PeerMessage(message)) => {
                let text = String::from_utf8_lossy(&message.data).into_owned();
                let from = hex::encode(&message.peer_id[..1]);
                self.journal.lock().unwrap().push(format!("{from} {text}"));
                if !text.starts_with("echo:") {
                    self.send(message.peer_id, format!("echo:{text}").into_bytes());
                }
            }
            Some(untrusted_message::Inner::ResetPeer(reset)) => {
                let peer = hex::encode(&reset.peer_id[..1]);
                self.journal.lock().unwrap().push(format!("reset {peer}"));
            }
            Some(untrusted_message::Inner::TimerTick(_)) | None => {}
        }
        let outbox = std::mem::take(&mut *self.outbox.lock().unwrap());
        for (peer_id, data) in outbox {
            self.send(peer_id.as_bytes().to_vec(), data);
        }
        Ok(())
    }

    fn poll_message(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }
}

fn config(name: &str, peers: Vec<SocketAddr>) -> (HostConfig, PathBuf) {
    let dir = std::env::temp_dir().join(format!("cloister-peer-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = HostConfig {
        client_listen_addr: "127.0.0.1:0".parse().unwrap(),
        admin_listen_addr: "127.0.0.1:0".parse().unwrap(),
        auth_secret_path: dir.join("auth.secret"),
        tick_interval: Duration::from_millis(20),
        shutdown_grace: Duration::from_secs(2),
        peer_listen_addr: Some("127.0.0.1:0".parse().unwrap()),
        peers,
        peer_settings: PeerSettings {
            abandon_after: Duration::from_millis(300),
            ..fast()
        },
        ..HostConfig::default()
    };
    (config, dir)
}

fn journal_has(journal: &Journal, entry: &str) -> bool {
    journal.lock().unwrap().iter().any(|line| line == entry)
}

#[tokio::test]
async fn nodes_relay_enclave_peer_messages_and_resets() {
    let (alice_fake, _alice_outbox, alice_journal) = PeerFake::new(1);
    let (alice_config, alice_dir) = config("alice", vec![]);
    let alice = Node::start(alice_config, alice_fake).await.unwrap();
    let alice_addr = alice.peer_addr().unwrap();
    let (bob_fake, bob_outbox, bob_journal) = PeerFake::new(2);
    let (bob_config, bob_dir) = config("bob", vec![alice_addr]);
    let bob = Node::start(bob_config, bob_fake).await.unwrap();
    let bob_transport = bob.peer_transport().unwrap().clone();
    eventually("Bob resolved his seed", || {
        bob_transport.address(id(1)) == Some(alice_addr)
    })
    .await;
    bob_outbox.lock().unwrap().push((id(1), b"ping".to_vec()));
    eventually("a round trip between the enclaves", || {
        journal_has(&alice_journal, "02 ping") && journal_has(&bob_journal, "01 echo:ping")
    })
    .await;
    // A message to a peer nobody can reach: abandoned, and Bob's enclave told to reset.
    bob_outbox.lock().unwrap().push((id(9), b"lost".to_vec()));
    eventually("the reset reached Bob's enclave", || {
        journal_has(&bob_journal, "reset 09")
    })
    .await;
    let metrics = http(alice.admin_addr(), "GET", "/metrics", &[], "")
        .await
        .body;
    for line in [
        "cloister_host_peer_messages_delivered_total 1",
        "cloister_host_peers_connected 1",
        "cloister_host_peer_protocol_violations_total 0",
    ] {
        assert!(
            metrics.contains(&format!("\n{line}\n")),
            "{line}\n{metrics}"
        );
    }
    let bob_metrics = bob.dispatcher().metrics();
    assert_eq!(bob_metrics.counter(Counter::PeerAbandons), 1);
    assert_eq!(bob_metrics.counter(Counter::PeerResets), 1);
    alice.shutdown().await.unwrap();
    bob.shutdown().await.unwrap();
    // Stopped with the node: nobody listens any more.
    assert!(TcpStream::connect(alice_addr).await.is_err());
    std::fs::remove_dir_all(alice_dir).unwrap();
    std::fs::remove_dir_all(bob_dir).unwrap();
}

#[tokio::test]
async fn without_a_peer_listener_peer_messages_are_dropped_and_counted() {
    let (fake, outbox, _journal) = PeerFake::new(1);
    let (mut config, dir) = config("none", vec![]);
    config.peer_listen_addr = None;
    let node = Node::start(config, fake).await.unwrap();
    assert_eq!(node.peer_addr(), None);
    outbox.lock().unwrap().push((id(2), b"nowhere".to_vec()));
    let metrics = node.dispatcher().metrics().clone();
    eventually("the message was dropped", || {
        metrics.counter(Counter::EnclavePeerMessagesDropped) == 1
    })
    .await;
    node.shutdown().await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}
