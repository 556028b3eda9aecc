//! The one-link rule: which connection a peer uses, and why a connection that merely claims
//! a peer id can never take a working link away from it.
//!
//! ```text
//!  a connection claims peer P (Hello) ──▶ admit(P, dialed_by_local, incarnation, probed)
//!    P has no link ─────────────────────────────────────────────────▶ Admitted
//!    both sides dialed, same incarnation, the other was dialed by the lower id ─▶ Refused
//!    P has a link L, not probed yet ─▶ Probe{L}: Ping{probe} on L, wait probe_timeout
//!        Pong came back ─▶ L is alive: Refused          L silent or ended ─▶ admit(.., Some(L))
//!    probed L is still P's link ─────────────────────────────────────▶ Admitted, L closes
//! ```
//!
//! The peer id and incarnation in a Hello are claims: only the enclaves' Noise channel
//! proves who is speaking. Replacing a working link on a claim would let anyone who can reach
//! the port cut a peer off (its queue dropped, its enclave channel reset) as often as it
//! likes. A real peer never needs that: it dials again only once its own end of the old link
//! is gone, so the old link ends (or goes silent, if its host vanished) and the probe fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use tokio::sync::Notify;

use super::super::queue::ReceiveWindow;
use super::{PeerId, State};

/// What one link's tasks and the rest of the transport say to each other.
#[derive(Debug, Default)]
pub struct LinkControl {
    /// The writer has frames, an acknowledgement, a probe or an answer to write.
    pub wake: Notify,
    /// Another connection replaced this one: close.
    pub close: Notify,
    /// The cumulative acknowledgement the writer owes the remote.
    pub ack_owed: AtomicU64,
    /// A probe the writer must send in a `Ping` (0: none).
    pub probe_owed: AtomicU64,
    /// A probe the remote sent, which the writer must answer with a `Pong` (0: none).
    pub pong_owed: AtomicU64,
    /// The last probe the remote answered.
    pub probe_answered: AtomicU64,
    /// The link has ended: no answer will come.
    pub ended: AtomicBool,
    /// Wakes the prober when a `Pong` arrives or the link ends.
    pub probe_event: Notify,
    /// The last acknowledgement the writer sent (standalone or carried by Data).
    pub ack_told: AtomicU64,
    /// Bytes delivered since then.
    pub ack_pending_bytes: AtomicU64,
    /// The writer sleeps on a deadline for the acknowledgement owed (the reader need not
    /// wake it for every delivery).
    pub ack_waiting: AtomicBool,
}

/// The connection a peer uses now.
#[derive(Debug)]
pub(super) struct LinkEntry {
    pub(super) id: u64,
    dialed_by_local: bool,
    incarnation: u64,
    pub(super) control: Arc<LinkControl>,
}

/// A link the state admitted.
#[derive(Debug)]
pub struct Admitted {
    /// The link's id, to release it with.
    pub id: u64,
    /// The link's control block.
    pub control: Arc<LinkControl>,
    /// The peer's receive window.
    pub receive: Arc<tokio::sync::Mutex<ReceiveWindow>>,
    /// The link this one replaced, which must close.
    pub replaced: Option<Arc<LinkControl>>,
    /// Frames dropped because the remote restarted (`Some` if it did).
    pub restarted: Option<usize>,
    /// The peer had a link before.
    pub reconnect: bool,
}

/// What [`State::admit`] decided about a connection.
#[derive(Debug)]
pub enum Admission {
    /// Run it as the peer's link.
    Admitted(Admitted),
    /// The peer has a link: probe it, then ask again with `probed: Some(link_id)` unless it
    /// answered. Call [`State::probe_finished`] with `probe` either way.
    Probe {
        /// The link to probe.
        link_id: u64,
        /// The number its `Ping` carries (unique per transport).
        probe: u64,
        /// Its control block.
        control: Arc<LinkControl>,
    },
    /// Close it, for this reason.
    Refused(&'static str),
}

impl State {
    /// Admits a connection to `remote` that finished its Hello exchange, asks for its current
    /// link to be probed first, or refuses it (see the module docs). `probed` names the link
    /// a probe found silent or ended.
    ///
    /// The simultaneous-connection rule: when each side dialed one connection (same
    /// incarnation), both hosts keep the one dialed by the lower peer id, so they agree
    /// without talking; the other is refused at once, and the winner still needs the loser
    /// to have ended (the remote closes it by the same rule), so a claim alone never wins.
    pub fn admit(
        &mut self,
        remote: PeerId,
        dialed_by_local: bool,
        incarnation: u64,
        probed: Option<u64>,
    ) -> Admission {
        if self.stopping {
            return Admission::Refused("shutting down");
        }
        let local = self.local;
        let (id, probe) = (self.next_link_id, self.next_probe);
        let Some(peer) = self.entry(remote) else {
            return Admission::Refused("the peer table is full");
        };
        if let Some(current) = &peer.link {
            let initiator = if dialed_by_local { local } else { remote };
            let both_dialed = current.dialed_by_local != dialed_by_local;
            if current.incarnation == incarnation && both_dialed && initiator != local.min(remote) {
                return Admission::Refused("keeping the link dialed by the lower peer id");
            }
            match probed {
                Some(link_id) if link_id == current.id => {}
                Some(_) => return Admission::Refused("another link came up during the probe"),
                None if peer.probing.is_some() => {
                    return Admission::Refused("the peer's link is being probed already");
                }
                None => {
                    peer.probing = Some(probe);
                    let (link_id, control) = (current.id, current.control.clone());
                    self.next_probe += 1;
                    return Admission::Probe {
                        link_id,
                        probe,
                        control,
                    };
                }
            }
        }
        let restarted = match peer.remote_incarnation {
            Some(previous) if previous != incarnation => Some(peer.queue.remote_restarted()),
            _ => None,
        };
        peer.remote_incarnation = Some(incarnation);
        let reconnect = std::mem::replace(&mut peer.ever_linked, true);
        let control = Arc::new(LinkControl::default());
        let entry = LinkEntry {
            id,
            dialed_by_local,
            incarnation,
            control: control.clone(),
        };
        let replaced = peer.link.replace(entry).map(|old| old.control);
        let receive = peer.receive.clone();
        self.next_link_id += 1;
        if restarted.is_some() {
            self.owe_reset(remote);
        }
        Admission::Admitted(Admitted {
            id,
            control,
            receive,
            replaced,
            restarted,
            reconnect,
        })
    }

    /// The probe numbered `probe` of `peer_id`'s link is over: another may start.
    pub fn probe_finished(&mut self, peer_id: PeerId, probe: u64) {
        if let Some(peer) = self.peers.get_mut(&peer_id)
            && peer.probing == Some(probe)
        {
            peer.probing = None;
        }
    }
}
