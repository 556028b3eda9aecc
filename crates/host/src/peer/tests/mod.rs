//! Transports on loopback (ports chosen by the OS), with timings shrunk so failures and
//! recoveries take milliseconds. Every wait is bounded by [`WAIT`].

mod acks;
mod delivery;
mod discovery;
mod faults;
mod impostors;
mod node;
mod sequencing;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::wire::{self, Frame};
use super::*;
use crate::metrics::{Counter, HostMetrics};

/// The longest any test waits for something that should happen.
const WAIT: Duration = Duration::from_secs(15);

/// Timings for tests: fast retries, quick idle detection, a short abandon bound.
fn fast() -> PeerSettings {
    PeerSettings {
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(200),
        abandon_after: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        handshake_timeout: Duration::from_secs(2),
        ping_interval: Duration::from_millis(200),
        idle_timeout: Duration::from_secs(2),
        probe_timeout: Duration::from_millis(500),
        ..PeerSettings::default()
    }
}

fn id(byte: u8) -> PeerId {
    PeerId::from([byte; 32])
}

/// One transport and what it hands its (absent) enclave.
struct Host {
    transport: PeerTransport,
    events: mpsc::Receiver<PeerEvent>,
    metrics: Arc<HostMetrics>,
}

impl Host {
    async fn start(byte: u8, settings: PeerSettings) -> Host {
        Host::start_with_seeds(byte, settings, vec![]).await
    }

    async fn start_with_seeds(byte: u8, settings: PeerSettings, seeds: Vec<SocketAddr>) -> Host {
        let metrics = Arc::new(HostMetrics::default());
        let any_port = "127.0.0.1:0".parse().unwrap();
        let (transport, events) =
            PeerTransport::start(id(byte), any_port, seeds, settings, metrics.clone())
                .await
                .unwrap();
        Host {
            transport,
            events,
            metrics,
        }
    }

    fn id(&self) -> PeerId {
        self.transport.peer_id()
    }

    fn addr(&self) -> SocketAddr {
        self.transport.local_addr()
    }

    fn counter(&self, counter: Counter) -> u64 {
        self.metrics.counter(counter)
    }

    fn send(&self, to: &Host, data: &[u8]) {
        self.transport
            .send(to.id().as_bytes(), data.to_vec())
            .unwrap();
    }

    /// The next event, which must come within [`WAIT`].
    async fn next_event(&mut self) -> PeerEvent {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("no event in time")
            .expect("the event channel closed")
    }

    /// The next `count` messages, which must all come from `from`.
    async fn messages(&mut self, from: PeerId, count: usize) -> Vec<Vec<u8>> {
        let mut messages = Vec::with_capacity(count);
        while messages.len() < count {
            match self.next_event().await {
                PeerEvent::Message { peer_id, data } if peer_id == from => messages.push(data),
                other => panic!("expected a message from {from:?}, got {other:?}"),
            }
        }
        messages
    }

    /// True if no event arrives within `quiet`.
    async fn is_quiet(&mut self, quiet: Duration) -> bool {
        tokio::time::timeout(quiet, self.events.recv())
            .await
            .is_err()
    }

    async fn stop(self) {
        self.transport.shutdown().await;
    }
}

/// Numbered messages `range`, as bytes ("m17").
fn numbered(range: std::ops::RangeInclusive<u32>) -> Vec<Vec<u8>> {
    range.map(|n| format!("m{n}").into_bytes()).collect()
}

/// Polls `condition` every 5 ms until it holds; panics after [`WAIT`].
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Each relayed connection's task, and its switch for silencing replies.
type Relays = Arc<std::sync::Mutex<Vec<(JoinHandle<()>, Arc<AtomicBool>)>>>;

/// A TCP relay in front of `target`, so a test can cut connections or silence one
/// direction. New connections are relayed in full.
struct Proxy {
    addr: SocketAddr,
    accept: JoinHandle<()>,
    connections: Relays,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Relays::default();
        let tracked = connections.clone();
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(target).await else {
                    continue;
                };
                let muted = Arc::new(AtomicBool::new(false));
                let relay = tokio::spawn(relay(inbound, outbound, muted.clone()));
                tracked.lock().unwrap().push((relay, muted));
            }
        });
        Proxy {
            addr,
            accept,
            connections,
        }
    }

    /// Stops relaying target-to-dialer bytes on the open connections (acks get lost).
    fn mute_replies(&self) {
        for (_, muted) in self.connections.lock().unwrap().iter() {
            muted.store(true, Ordering::Relaxed);
        }
    }

    /// Drops both sockets of every open connection.
    fn cut(&self) {
        for (relay, _) in self.connections.lock().unwrap().drain(..) {
            relay.abort();
        }
    }

    fn stop(self) {
        self.cut();
        self.accept.abort();
    }
}

async fn relay(inbound: TcpStream, outbound: TcpStream, muted: Arc<AtomicBool>) {
    let (mut in_read, mut in_write) = inbound.into_split();
    let (mut out_read, mut out_write) = outbound.into_split();
    let forward = async {
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok(read) = in_read.read(&mut buffer).await {
            if read == 0 || out_write.write_all(&buffer[..read]).await.is_err() {
                break;
            }
        }
    };
    let back = async {
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok(read) = out_read.read(&mut buffer).await {
            if read == 0 {
                break;
            }
            if !muted.load(Ordering::Relaxed) && in_write.write_all(&buffer[..read]).await.is_err()
            {
                break;
            }
        }
    };
    tokio::select! {
        () = forward => {}
        () = back => {}
    }
}

/// A hand-driven peer speaking the wire format, to script exact frame sequences.
struct RawPeer {
    stream: TcpStream,
}

impl RawPeer {
    /// A Hello from peer `byte` of `incarnation` that has sent up to `sent_through`.
    fn hello(byte: u8, incarnation: u64, sent_through: u64) -> Vec<u8> {
        wire::encode_hello(&wire::Hello {
            peer_id: id(byte),
            listen_addr: None,
            incarnation,
            known_peers: vec![],
            discovery_only: false,
            sent_through,
        })
    }

    /// Dials `addr` as peer `byte` of `incarnation` that has sent up to `sent_through`.
    async fn dial(addr: SocketAddr, byte: u8, incarnation: u64, sent_through: u64) -> RawPeer {
        let mut raw = RawPeer {
            stream: TcpStream::connect(addr).await.unwrap(),
        };
        raw.write(&Self::hello(byte, incarnation, sent_through))
            .await;
        assert!(matches!(raw.next_frame().await, Frame::Hello(_)));
        raw
    }

    /// Accepts one connection on `listener` as peer `byte` of `incarnation` (nothing sent).
    async fn accept(listener: &TcpListener, byte: u8, incarnation: u64) -> RawPeer {
        let (stream, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .unwrap()
            .unwrap();
        let mut raw = RawPeer { stream };
        assert!(matches!(raw.next_frame().await, Frame::Hello(_)));
        raw.write(&Self::hello(byte, incarnation, 0)).await;
        raw
    }

    async fn write(&mut self, frame: &[u8]) {
        self.stream.write_all(frame).await.unwrap();
    }

    async fn data(&mut self, seq: u64, bytes: &[u8]) {
        let data = cloister_proto::transport::Data {
            seq,
            bytes: bytes.to_vec(),
            ack: 0,
        };
        self.write(&wire::encode(
            cloister_proto::transport::transport_frame::Kind::Data(data),
        ))
        .await;
    }

    async fn ack(&mut self, seq: u64) {
        let ack = cloister_proto::transport::Ack { seq };
        self.write(&wire::encode(
            cloister_proto::transport::transport_frame::Kind::Ack(ack),
        ))
        .await;
    }

    /// The next frame that is not a keepalive Ping (probes are returned).
    async fn next_frame(&mut self) -> Frame {
        loop {
            let read = wire::read_frame(&mut self.stream, FRAME_BYTES_MAX);
            let (frame, _) = tokio::time::timeout(WAIT, read).await.unwrap().unwrap();
            if frame != (Frame::Ping { probe: 0 }) {
                return frame;
            }
        }
    }
}
