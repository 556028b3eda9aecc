//! The transport's shared state and its rules, without I/O: what a send does when a buffer
//! is full, which connection a peer uses (`admission.rs`), when a peer is abandoned.
//!
//! One `std::sync::Mutex` guards it; nobody holds it across an `.await`.

mod admission;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::book::AddressBook;
use super::queue::{ReceiveWindow, SendQueue};
use super::wire::DATA_BYTES_MAX;
use super::{PeerId, PeerSettings, SendRefusal};
use admission::LinkEntry;
pub use admission::{Admission, Admitted, LinkControl};

/// Everything kept for one remote peer.
#[derive(Debug)]
pub struct Peer {
    /// Frames for it, until acknowledged.
    pub queue: SendQueue,
    /// What has been delivered from it. Async: held while handing a message to the enclave,
    /// so two links to one peer can never deliver out of order.
    pub receive: Arc<tokio::sync::Mutex<ReceiveWindow>>,
    link: Option<LinkEntry>,
    /// Wakes the peer's dialer task; also tells that task it is still the peer's task.
    wake_dialer: Arc<Notify>,
    remote_incarnation: Option<u64>,
    /// The probe of its link under way, if any (one at a time).
    probing: Option<u64>,
    ever_linked: bool,
    unreachable_since: Option<Instant>,
    dial_failures: u32,
}

/// What a peer's dialer task should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The peer's state is gone (or belongs to a newer task): end.
    Exit,
    /// Nothing to do until woken: a link is up, or nothing waits to be sent.
    Idle,
    /// Unreachable for `abandon_after`: abandon the peer.
    Abandon,
    /// No address known: wait this long, or until woken.
    NoAddress(Duration),
    /// Dial this address.
    Dial(SocketAddr),
}

/// The whole transport's state.
#[derive(Debug)]
pub struct State {
    local: PeerId,
    settings: PeerSettings,
    peers: BTreeMap<PeerId, Peer>,
    /// Where peers are.
    pub book: AddressBook,
    /// Peers the local enclave must be told `ResetPeer` about.
    pub resets_owed: BTreeSet<PeerId>,
    /// New peers whose dialer task has not been started yet.
    pub unstarted: Vec<(PeerId, Arc<Notify>)>,
    /// Set once at shutdown: every send and link is refused from then on.
    pub stopping: bool,
    next_link_id: u64,
    next_probe: u64,
}

impl State {
    /// Empty state for the local enclave `local`.
    pub fn new(local: PeerId, settings: &PeerSettings) -> Self {
        State {
            local,
            settings: settings.clone(),
            peers: BTreeMap::new(),
            book: AddressBook::new(settings.addresses_max),
            resets_owed: BTreeSet::new(),
            unstarted: Vec::new(),
            stopping: false,
            next_link_id: 1,
            next_probe: 1,
        }
    }

    /// Queues `data` for `peer_id`. Returns what to wake: the link's writer or the dialer.
    ///
    /// The loss rule: a message that does not fit (too large, buffer full, peer table full)
    /// is refused, and the local enclave is owed one `ResetPeer` for the peer, since its Noise
    /// channel cannot survive the gap. A full buffer is also emptied: the rest of the old
    /// session is worthless after the gap, and the re-handshake needs the room (otherwise
    /// every reset would meet a full buffer again).
    pub fn enqueue(&mut self, peer_id: PeerId, data: Vec<u8>) -> Result<Wake, SendRefusal> {
        if self.stopping {
            return Err(SendRefusal::ShuttingDown);
        }
        if peer_id == self.local {
            return Err(SendRefusal::ToSelf);
        }
        let Some(peer) = self.entry(peer_id) else {
            self.owe_reset(peer_id);
            return Err(SendRefusal::PeersFull);
        };
        let length = data.len();
        let refusal = if length > DATA_BYTES_MAX {
            SendRefusal::TooLarge(length)
        } else if peer.queue.push(data).is_err() {
            SendRefusal::BufferFull {
                dropped: peer.queue.drop_all(),
            }
        } else {
            return Ok(match &peer.link {
                Some(link) => Wake::Link(link.control.clone()),
                None => Wake::Dialer(peer.wake_dialer.clone()),
            });
        };
        self.owe_reset(peer_id);
        Err(refusal)
    }

    /// Removes link `link_id` if it is still `peer_id`'s link; wakes the dialer if so.
    pub fn release(&mut self, peer_id: PeerId, link_id: u64) -> bool {
        let Some(peer) = self.peers.get_mut(&peer_id) else {
            return false;
        };
        if peer.link.as_ref().map(|link| link.id) != Some(link_id) {
            return false;
        }
        peer.link = None;
        peer.wake_dialer.notify_one();
        true
    }

    /// True while `link_id` is `peer_id`'s link.
    pub fn is_current(&self, peer_id: PeerId, link_id: u64) -> bool {
        self.peers
            .get(&peer_id)
            .and_then(|peer| peer.link.as_ref())
            .is_some_and(|link| link.id == link_id)
    }

    /// The peer's state, if it is linked by `link_id`.
    pub fn linked_peer(&mut self, peer_id: PeerId, link_id: u64) -> Option<&mut Peer> {
        self.peers
            .get_mut(&peer_id)
            .filter(|peer| peer.link.as_ref().is_some_and(|link| link.id == link_id))
    }

    /// What the dialer task holding `wake` should do for `peer_id` at `now`.
    pub fn next_step(&mut self, peer_id: PeerId, wake: &Arc<Notify>, now: Instant) -> Step {
        let Some(peer) = self.peers.get_mut(&peer_id) else {
            return Step::Exit;
        };
        if !Arc::ptr_eq(&peer.wake_dialer, wake) || self.stopping {
            return Step::Exit;
        }
        if peer.link.is_some() || peer.queue.is_empty() {
            return Step::Idle;
        }
        let since = *peer.unreachable_since.get_or_insert(now);
        let waited = now.saturating_duration_since(since);
        if waited >= self.settings.abandon_after {
            return Step::Abandon;
        }
        match self.book.lookup(peer_id) {
            Some(addr) => Step::Dial(addr),
            None => {
                let remaining = self.settings.abandon_after - waited;
                Step::NoAddress(remaining.min(self.settings.backoff_max))
            }
        }
    }

    /// Counts a failed dial; returns the failures in a row.
    pub fn dial_failed(&mut self, peer_id: PeerId) -> u32 {
        self.peers.get_mut(&peer_id).map_or(0, |peer| {
            peer.dial_failures = peer.dial_failures.saturating_add(1);
            peer.dial_failures
        })
    }

    /// A link to the peer carried a frame: it is reachable again.
    pub fn mark_reachable(&mut self, peer_id: PeerId) {
        if let Some(peer) = self.peers.get_mut(&peer_id) {
            peer.unreachable_since = None;
            peer.dial_failures = 0;
        }
    }

    /// Gives up on an unreachable peer: drops its queue and owes the enclave a reset. The
    /// address stays in the book; the next send starts over. Returns the frames dropped.
    pub fn abandon(&mut self, peer_id: PeerId) -> usize {
        let Some(peer) = self.peers.get_mut(&peer_id) else {
            return 0;
        };
        peer.unreachable_since = None;
        peer.dial_failures = 0;
        let dropped = peer.queue.drop_all();
        self.owe_reset(peer_id);
        dropped
    }

    /// Wakes `peer_id`'s dialer (say, because its address became known).
    pub fn wake_dialer(&self, peer_id: PeerId) {
        if let Some(peer) = self.peers.get(&peer_id) {
            peer.wake_dialer.notify_one();
        }
    }

    /// Peers with a link now.
    pub fn connected(&self) -> Vec<PeerId> {
        let linked = self.peers.iter().filter(|(_, peer)| peer.link.is_some());
        linked.map(|(peer_id, _)| *peer_id).collect()
    }

    /// Frames queued for `peer_id` now.
    pub fn queued(&self, peer_id: PeerId) -> usize {
        self.peers.get(&peer_id).map_or(0, |peer| peer.queue.len())
    }

    /// The highest sequence number ever handed to a link to `peer_id` (for its Hello).
    pub fn sent_through(&self, peer_id: PeerId) -> u64 {
        self.peers
            .get(&peer_id)
            .map_or(0, |peer| peer.queue.sent_through())
    }

    /// Owes the local enclave a `ResetPeer` for `peer_id` (wake the courier after).
    pub fn owe_reset(&mut self, peer_id: PeerId) {
        // Bounded like the peer table: a reset for a peer beyond it is still owed, but only
        // `peers_max` can wait at once (the courier drains them as fast as the enclave takes).
        if self.resets_owed.len() < self.settings.peers_max {
            self.resets_owed.insert(peer_id);
        } else {
            tracing::warn!(%peer_id, "too many resets pending; this one is dropped");
        }
    }

    /// `peer_id`'s state, created if there is room. A full table forgets an idle peer (no
    /// link, nothing queued) to make room; its receive window goes with it.
    fn entry(&mut self, peer_id: PeerId) -> Option<&mut Peer> {
        if !self.peers.contains_key(&peer_id) {
            if self.peers.len() >= self.settings.peers_max {
                let idle = self
                    .peers
                    .iter()
                    .find(|(_, peer)| peer.link.is_none() && peer.queue.is_empty())
                    .map(|(idle, _)| *idle)?;
                if let Some(forgotten) = self.peers.remove(&idle) {
                    forgotten.wake_dialer.notify_one();
                }
            }
            let wake_dialer = Arc::new(Notify::new());
            self.unstarted.push((peer_id, wake_dialer.clone()));
            let settings = &self.settings;
            let peer = Peer {
                queue: SendQueue::new(
                    settings.send_buffer_bytes_max,
                    settings.send_buffer_frames_max,
                ),
                receive: Arc::default(),
                link: None,
                wake_dialer,
                remote_incarnation: None,
                probing: None,
                ever_linked: false,
                unreachable_since: None,
                dial_failures: 0,
            };
            self.peers.insert(peer_id, peer);
        }
        self.peers.get_mut(&peer_id)
    }
}

/// Who to wake after a message was queued.
#[derive(Debug)]
pub enum Wake {
    /// The link's writer.
    Link(Arc<LinkControl>),
    /// The dialer (no link yet).
    Dialer(Arc<Notify>),
}

#[cfg(test)]
mod tests;
