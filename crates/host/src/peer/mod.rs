//! The peer transport: hosts relay their enclaves' peer messages to each other over TCP.
//!
//! The enclaves of a group talk through Noise channels the hosts cannot read. A lost,
//! repeated or reordered message breaks such a channel (its nonces count up), so the
//! transport delivers each message **exactly once and in order** for as long as it can, and
//! when it cannot, it says so: the local enclave gets `ResetPeer` and re-handshakes.
//!
//! ```text
//!  enclave thread ── EnclaveMessage::PeerMessage ──▶ send(peer_id, data)   (never blocks)
//!     per peer: SendQueue, seq 1, 2, …, kept until acked, ≤ send_buffer_{bytes,frames}_max
//!        │ wake                                             other hosts
//!        ▼
//!     link writer ── Data{seq, ack} · Ack · Ping · Pong ──▶ TCP ──▶ listener: Hello, admit
//!     link reader ◀── Data{seq, ack} · Ack · Ping · Pong ── TCP ◀── (probe the peer's link
//!        │ receive window: seq above the last delivered     first), link reader and writer
//!        │ → deliver; else drop. The ack rides on the next Data, or goes alone after
//!        │ ack_delay (5 ms), or at once past 64 frames or 1 MiB
//!        ▼
//!     PeerEvent::{Message, Reset} ─▶ bounded channel ─▶ node ─▶ UntrustedMessage
//!  dialer, per peer: connects while frames wait; backoff 100 ms doubling to 10 s; abandons
//!  after 60 s unreachable (drop the queue, ResetPeer)
//! ```
//!
//! # The rules
//!
//! - **Wire.** Frames are a 4-byte big-endian length and a protobuf `TransportFrame`
//!   (`proto/transport.proto`). Each side's first frame is a `Hello` naming its enclave peer
//!   id and a random per-process `incarnation`. Frames are bounded ([`FRAME_BYTES_MAX`]; a
//!   Hello much less) and checked field by field; a peer that sends anything invalid is
//!   disconnected with a log line, and nothing else changes.
//! - **Sequencing.** Messages to a peer are numbered from 1 and stay queued until its
//!   cumulative acknowledgement. A new link opens with an `Ack` each way (where each window
//!   stands) and resends every unacknowledged frame in order; the receiver delivers a number
//!   only if it is above the last it delivered (duplicates are dropped) and starts over when
//!   the sender's incarnation changes.
//! - **Acknowledgements.** A receiver's next Data frame carries its acknowledgement
//!   (`Data.ack`); a standalone `Ack` goes out only when none did within `ack_delay`
//!   (5 ms by default), or at once when 64 frames or 1 MiB wait for one. An
//!   acknowledgement only frees the sender's resend buffer, so the delay costs memory, never
//!   latency, and a sender whose buffer is full is acknowledged without traffic the other
//!   way.
//! - **Loss.** A send is refused when the peer's buffer is full (`send_buffer_bytes_max`,
//!   `send_buffer_frames_max`), the message exceeds [`DATA_BYTES_MAX`], or the peer table is
//!   full, and the local enclave is told `ResetPeer{peer_id}` (once, however many refusals
//!   happen before the courier delivers it). A full buffer is emptied as well: after the gap
//!   the old session's frames are worthless, and the re-handshake needs the room. The queue
//!   is dropped with a reset too when a peer stays unreachable for `abandon_after`
//!   (abandoned: its address stays in the book, and the next send starts over) and when a
//!   peer comes back with a new incarnation (frames in flight may have been lost either way),
//!   and a reset is owed when a link's first `Ack` shows frames were released that the peer
//!   never got (an impostor acknowledged them, see below). Sequence numbers never go back,
//!   so the receiver sees a gap, never a reuse. Messages the enclave sends before it handles
//!   the reset still go out; they belong to the dead session and the remote enclave discards
//!   them.
//! - **One link per peer, and a Hello is only a claim.** Anyone who reaches the port can
//!   claim any peer id and incarnation; only the enclaves' Noise channel proves who speaks.
//!   So a connection never replaces a peer's link on its word: the link is probed first
//!   (`Ping{probe}`, answered at once by `Pong`), and the newcomer is refused if the answer
//!   comes within `probe_timeout`. A real peer dials again only once its own end of the old
//!   link is gone, so the probe fails at once (the link ended) or times out (its host
//!   vanished), and a restarted peer is back within `probe_timeout`. When both hosts dial at
//!   once, both keep the link dialed by the lower peer id. A connection that gets in while no
//!   link is up can disturb the stream only until the real peer's next link, which repairs
//!   it: its Hello's `sent_through` takes back sequence numbers counted beyond what it sent,
//!   and its first `Ack` shows what was released for the impostor's acknowledgements.
//! - **Addresses.** The book maps peer ids to addresses, from config seeds (resolved by a
//!   discovery Hello), Hellos (the peer's own address and its `known_peers`) and
//!   [`PeerTransport::add_address`]. An address some peer dialed and got an answer from
//!   beats one a peer announced, which beats hearsay; any of them only costs a failed dial
//!   if wrong, since the remote's Hello names who answered.
//!
//! # Example: two transports on loopback
//!
//! ```
//! use cloister_host::peer::{PeerEvent, PeerId, PeerSettings, PeerTransport};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let metrics = std::sync::Arc::new(cloister_host::metrics::HostMetrics::default());
//! let any_port = "127.0.0.1:0".parse()?;
//! let (alice, _) = PeerTransport::start(PeerId::from([1; 32]), any_port, vec![],
//!     PeerSettings::default(), metrics.clone()).await?;
//! let (bob, mut bob_events) = PeerTransport::start(PeerId::from([2; 32]), any_port, vec![],
//!     PeerSettings::default(), metrics).await?;
//! // Alice learns who listens at Bob's address, then sends to Bob's enclave.
//! let bob_id = alice.discover(bob.local_addr()).await?;
//! alice.send(bob_id.as_bytes(), b"noise bytes".to_vec())?;
//! let Some(PeerEvent::Message { peer_id, data }) = bob_events.recv().await else { panic!() };
//! assert_eq!((peer_id, data.as_slice()), (alice.peer_id(), &b"noise bytes"[..]));
//! alice.shutdown().await;
//! bob.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod ack;
mod book;
mod dialer;
mod error;
mod handshake;
mod inner;
mod link;
mod probe;
mod queue;
mod settings;
mod state;
pub mod wire;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub use error::{PeerError, SendRefusal};
pub use settings::PeerSettings;
pub use wire::{DATA_BYTES_MAX, FRAME_BYTES_MAX};

use crate::error::HostError;
use crate::metrics::{Counter, HostMetrics};
use book::{Learned, Source};
use inner::{Inner, Local};
use state::Wake;

/// An enclave's peer id: the 32-byte public key its peers know it by.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId([u8; 32]);

impl PeerId {
    /// The size of a peer id.
    pub const BYTES: usize = 32;

    /// A peer id from exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<PeerId> {
        bytes.try_into().ok().map(PeerId)
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<[u8; 32]> for PeerId {
    fn from(bytes: [u8; 32]) -> Self {
        PeerId(bytes)
    }
}

/// Lowercase hex, as the admin API shows peer ids.
impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", hex::encode(&self.0[..8]))
    }
}

/// What the transport hands the local enclave, in order per peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// A message from `peer_id` (becomes `UntrustedMessage::PeerMessage`).
    Message {
        /// The sending enclave.
        peer_id: PeerId,
        /// Its bytes, exactly as its enclave emitted them.
        data: Vec<u8>,
    },
    /// Messages to or from `peer_id` were lost (becomes `UntrustedMessage::ResetPeer`).
    Reset {
        /// The peer whose channel must re-handshake.
        peer_id: PeerId,
    },
}

/// A running transport; clones share it. Stop it with [`PeerTransport::shutdown`].
#[derive(Clone)]
pub struct PeerTransport {
    inner: Arc<Inner>,
}

impl PeerTransport {
    /// Binds `listen_addr` (port 0: any free port) and starts accepting, for the local
    /// enclave `local_peer_id`. `seeds` are addresses of peers whose ids are learned by asking.
    /// Returns the transport and the events for the enclave, which the caller must drain.
    pub async fn start(
        local_peer_id: PeerId,
        listen_addr: SocketAddr,
        seeds: Vec<SocketAddr>,
        settings: PeerSettings,
        metrics: Arc<HostMetrics>,
    ) -> Result<(PeerTransport, mpsc::Receiver<PeerEvent>), HostError> {
        settings.validate()?;
        let listener = TcpListener::bind(listen_addr)
            .await
            .map_err(|source| HostError::Io {
                context: format!("binding the peer listener on {listen_addr}"),
                source,
            })?;
        let bound = listener.local_addr().map_err(|source| HostError::Io {
            context: "reading the peer listener's address".into(),
            source,
        })?;
        let (events, receiver) = mpsc::channel(settings.events_max);
        let local = Local {
            peer_id: local_peer_id,
            listen_addr: bound,
            incarnation: rand::random(),
        };
        let inner = Arc::new(Inner::new(local, settings, events, metrics));
        inner.spawn(handshake::run_listener(inner.clone(), listener));
        inner.spawn(inner.clone().run_reset_courier());
        if !seeds.is_empty() {
            inner.spawn(dialer::resolve_seeds(inner.clone(), seeds));
        }
        let incarnation = local.incarnation;
        tracing::info!(%bound, peer_id = %local_peer_id, incarnation, "peer transport listening");
        Ok((PeerTransport { inner }, receiver))
    }

    /// Queues `data` for the enclave `peer_id`; never blocks (the enclave thread calls it).
    /// On refusal the transport has already counted it and, where [`SendRefusal::owes_reset`],
    /// queued a `ResetPeer` for the local enclave.
    pub fn send(&self, peer_id: &[u8], data: Vec<u8>) -> Result<(), SendRefusal> {
        let peer_id = PeerId::from_slice(peer_id).ok_or(SendRefusal::InvalidPeerId(peer_id.len()));
        let queued = peer_id.and_then(|peer_id| self.inner.state().enqueue(peer_id, data));
        self.inner.start_new_peers();
        match queued {
            Ok(Wake::Link(control)) => control.wake.notify_one(),
            Ok(Wake::Dialer(wake)) => wake.notify_one(),
            Err(refusal) => {
                self.inner.metrics.increment(Counter::PeerSendRefusals);
                if let SendRefusal::BufferFull { dropped } = refusal {
                    self.inner
                        .metrics
                        .add(Counter::PeerFramesDropped, dropped as u64);
                }
                if refusal.owes_reset() {
                    self.inner.resets_owed();
                }
                return Err(refusal);
            }
        }
        Ok(())
    }

    /// Records that `peer_id` accepts connections at `addr` (the operator's word: it
    /// replaces what the book had).
    pub fn add_address(&self, peer_id: PeerId, addr: SocketAddr) -> Result<(), PeerError> {
        if peer_id == self.inner.local.peer_id {
            return Err(PeerError::SelfConnection(addr));
        }
        let mut state = self.inner.state();
        match state.book.learn(peer_id, addr, Source::Dialed) {
            Learned::Full => Err(PeerError::Busy("the address book is full")),
            Learned::Changed | Learned::Unchanged => {
                state.wake_dialer(peer_id);
                Ok(())
            }
        }
    }

    /// Connects to `addr`, exchanges Hellos, and returns the enclave peer id that answered.
    /// The book learns its address and the peers it knows; no link is kept.
    pub async fn discover(&self, addr: SocketAddr) -> Result<PeerId, PeerError> {
        let established = handshake::dial(&self.inner, addr, None, true).await?;
        Ok(established.hello.peer_id)
    }

    /// Where the book says `peer_id` accepts connections.
    pub fn address(&self, peer_id: PeerId) -> Option<SocketAddr> {
        self.inner.state().book.lookup(peer_id)
    }

    /// Peers with a link now.
    pub fn connected_peers(&self) -> Vec<PeerId> {
        self.inner.state().connected()
    }

    /// Frames queued for `peer_id` (sent or not, unacknowledged).
    pub fn queued_frames(&self, peer_id: PeerId) -> usize {
        self.inner.state().queued(peer_id)
    }

    /// The bound peer listener's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local.listen_addr
    }

    /// The local enclave's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.inner.local.peer_id
    }

    /// This process's incarnation (random per start).
    pub fn incarnation(&self) -> u64 {
        self.inner.local.incarnation
    }

    /// Stops listening, closes every link, ends every task and waits for them. Sends are
    /// refused from then on. Calling it again returns at once.
    pub async fn shutdown(&self) {
        self.inner.stop().await;
        tracing::debug!("peer transport stopped");
    }
}

#[cfg(test)]
mod tests;
