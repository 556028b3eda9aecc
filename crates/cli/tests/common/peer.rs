//! A raw peer-transport client for bad-input tests: TCP to a replica's `--peer-listen`
//! address, hand-built length-prefixed `cloister.transport.TransportFrame`s.
//!
//! ```text
//!  ┌──────────────┬───────────────────────────────┐
//!  │ length: u32  │ TransportFrame (protobuf)     │   Hello | Data{seq, bytes, ack} | Ack
//!  │ big-endian   │                               │   | Ping{probe} | Pong{probe}
//!  └──────────────┴───────────────────────────────┘
//!  RawPeer::connect(addr) ─ send(bytes) ─ read_frame() ─ closed_by_remote()
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use cloister_proto::prost::Message as _;
use cloister_proto::transport::{Data, Hello, TransportFrame, transport_frame::Kind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bound on waiting for the remote to answer or to close.
pub const PEER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The one transport protocol version.
pub const PROTOCOL_VERSION: u32 = 2;

/// `kind` as one frame with its length prefix.
pub fn frame(kind: Kind) -> Vec<u8> {
    let body = TransportFrame { kind: Some(kind) }.encode_to_vec();
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// A Hello frame claiming `peer_id` (and to have sent nothing yet).
pub fn hello(peer_id: &[u8], listen_addr: &str, incarnation: u64, discovery_only: bool) -> Vec<u8> {
    frame(Kind::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        peer_id: peer_id.to_vec(),
        listen_addr: listen_addr.to_owned(),
        incarnation,
        known_peers: Vec::new(),
        discovery_only,
        sent_through: 0,
    }))
}

/// A Data frame (acknowledging nothing).
pub fn data(seq: u64, bytes: Vec<u8>) -> Vec<u8> {
    frame(Kind::Data(Data { seq, bytes, ack: 0 }))
}

/// One raw TCP connection to a peer listener.
pub struct RawPeer {
    stream: TcpStream,
}

impl RawPeer {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> RawPeer {
        let stream = tokio::time::timeout(PEER_READ_TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("peer connect timed out")
            .unwrap();
        RawPeer { stream }
    }

    /// Writes `bytes`; `false` if the remote had already closed.
    pub async fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok() && self.stream.flush().await.is_ok()
    }

    /// Reads one frame; `None` if the remote closed (or reset) first.
    pub async fn read_frame(&mut self) -> Option<TransportFrame> {
        let read = async {
            let mut prefix = [0u8; 4];
            self.stream.read_exact(&mut prefix).await.ok()?;
            let length = u32::from_be_bytes(prefix) as usize;
            assert!(length <= 1 << 20, "a frame of {length} bytes from the node");
            let mut body = vec![0u8; length];
            self.stream.read_exact(&mut body).await.ok()?;
            Some(TransportFrame::decode(body.as_slice()).unwrap())
        };
        tokio::time::timeout(PEER_READ_TIMEOUT, read)
            .await
            .expect("no frame and no close from the node")
    }

    /// Reads the remote's Hello; panics on anything else.
    pub async fn read_hello(&mut self) -> Hello {
        match self.read_frame().await {
            Some(TransportFrame {
                kind: Some(Kind::Hello(hello)),
            }) => hello,
            other => panic!("expected a Hello, got {other:?}"),
        }
    }

    /// Whether the remote closes the connection within [`PEER_READ_TIMEOUT`] (whatever it
    /// sends before that is skipped).
    pub async fn closed_by_remote(&mut self) -> bool {
        let drain = async {
            let mut buffer = [0u8; 4096];
            loop {
                match self.stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        tokio::time::timeout(PEER_READ_TIMEOUT, drain).await.is_ok()
    }
}
