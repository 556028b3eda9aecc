//! Enclave-to-enclave channels: mutual attestation bound to a Noise KK handshake, then
//! segmented, encrypted [`EnclaveToEnclave`] messages. Sans-I/O, like the rest of the core.
//!
//! ```text
//!  initiator I (was told P's id)                      responder P (its host names I as sender)
//!  send(P, m) ─▶ AwaitSynAck{queue m}
//!             ──Syn{evidence_I, endorsements, KK msg 1}──▶ verify evidence_I binds I's id,
//!                                                          read msg 1 (fails unless sender owns I)
//!  verify evidence_P binds P's id, ◀──SynAck{evidence_P, endorsements, KK msg 2}── Connected
//!  read msg 2 ─▶ Connected, flush m
//!             ══data: Noise(Segment{seq, index, count, slice})══▶ reassemble ─▶ Received
//!  bad frame, failed decryption, out-of-order segment ─▶ Rst to the peer + Disconnected
//!  (that connection only; every other connection is untouched)
//! ```
//!
//! A peer's id is its X25519 static key. Hosts relay `PeerFrame` bytes in
//! `PeerMessage.data` and can drop, delay, replay or reorder them; they cannot read or forge
//! them. Noise transport nonces make a replayed, dropped or reordered data frame fail to
//! decrypt, which resets the connection; the next [`PeerChannels::send`] reconnects.
//!
//! The core drives it in the door's loop:
//!
//! ```text
//!  PeerMessage{peer_id, data} ─▶ on_frame(peer_id, data, ctx) ─▶ events
//!  Raft / E2E transaction out ─▶ send(peer_id, message, ctx)  ─▶ frames
//!  RefreshAttestation         ─▶ refresh_attestation(ctx)      ─▶ events
//!  TimerTick                  ─▶ expire(ctx)                   ─▶ events
//!  ResetPeer{peer_id}         ─▶ reset(peer_id)                ─▶ events
//!  events: Send ─▶ EnclaveMessage::PeerMessage · Connected / Reattested ─▶ peer table
//!          Received ─▶ Raft or transactions · Disconnected / Refused ─▶ log and metrics
//! ```
//!
//! `ctx` ([`PeerContext`]) carries the caller's view of itself: its current evidence, its
//! measurement and platform, its group config, the time, and a seed for handshake
//! randomness drawn from the core's `Env`. Nothing here reads a clock or the OS RNG.
//!
//! A replica outside any group attests `GroupConfig{group_id: NO_GROUP_ID, simulated, ..}`
//! (see [`ungrouped_config`]) because `cloister_attest::verify` requires a group config.
//! Two replicas that both belong to a group must have identical configs; a replica
//! outside any group is accepted, and the caller decides what it may do from the
//! [`PeerAttestation`] in the `Connected` event.

mod attestation;
mod channels;
mod connected;
mod handshake;
mod inbound;
mod reassembly;

#[cfg(test)]
mod tests;

use cloister_attest::{ENDORSEMENTS_BYTES_MAX, EVIDENCE_BYTES_MAX, MEASUREMENT_BYTES};
use cloister_proto::attest::GroupConfig;
use cloister_proto::e2e::EnclaveToEnclave;

use crate::Error;
use crate::client::noise::{NOISE_MESSAGE_BYTES_MAX, NOISE_TAG_BYTES};

pub(crate) use attestation::{PeerAttestation, ungrouped_config};
pub(crate) use channels::{ConnectionState, PeerChannels};

/// A peer's id: its X25519 static public key, bound into its evidence.
pub(crate) type PeerId = [u8; 32];

/// Default bound on connections (handshaking or established): 15 voters, as many learners
/// or joiners, and slack for a replica being replaced.
pub(crate) const PEER_CONNECTIONS_MAX: usize = 32;
/// Default bound on one serialized `EnclaveToEnclave`: the largest Raft message the
/// replication accepts, plus room for its envelope. `ReplicateState` pushes must be chunked
/// below it. Only attested peers can fill a reassembly buffer (the host cannot forge a
/// segment), so the bound guards against bugs, not hosts.
pub(crate) const PEER_MESSAGE_BYTES_MAX: usize =
    crate::replication::RAFT_MESSAGE_BYTES_MAX + 64 * 1024;
/// Default bound on messages queued for a peer while its handshake runs (raft-rs keeps at
/// most 256 appends in flight per follower).
pub(crate) const PEER_PENDING_MESSAGES_MAX: usize = 256;
/// Default bound on the bytes of those queued messages.
pub(crate) const PEER_PENDING_BYTES_MAX: usize = PEER_MESSAGE_BYTES_MAX;
/// Default time a SynAck may take before [`PeerChannels::expire`] gives up the attempt.
pub(crate) const PEER_HANDSHAKE_TIMEOUT_SECS: u64 = 60;

/// Room for a `Segment`'s fields other than its data: tag and varint for a u64 and two u32s
/// (at most 11 + 6 + 6 bytes) and the data's tag and length (at most 4 bytes).
pub(crate) const SEGMENT_OVERHEAD_BYTES_MAX: usize = 32;
/// Bytes of a message carried by one segment: one Noise message, less its tag and the
/// segment's own fields. Every segment but the last carries exactly this many.
pub(crate) const SEGMENT_DATA_BYTES_MAX: usize =
    NOISE_MESSAGE_BYTES_MAX - NOISE_TAG_BYTES - SEGMENT_OVERHEAD_BYTES_MAX;
/// Bound on a serialized `PeerFrame`: a Syn with the largest evidence and endorsements the
/// verifier accepts, plus a handshake message and framing. Data frames are far smaller.
pub(crate) const PEER_FRAME_BYTES_MAX: usize = EVIDENCE_BYTES_MAX + ENDORSEMENTS_BYTES_MAX + 1024;
/// Bound on the reason carried by an Rst, both sent and reported.
pub(crate) const RST_REASON_BYTES_MAX: usize = 512;

const _: () = assert!(NOISE_MESSAGE_BYTES_MAX < PEER_FRAME_BYTES_MAX);
// A Raft message of the largest size, in its envelope, fits one peer message.
const _: () = assert!(crate::replication::RAFT_MESSAGE_BYTES_MAX + 16 <= PEER_MESSAGE_BYTES_MAX);
// An attestation update (evidence and endorsements) always fits one message.
const _: () = assert!(EVIDENCE_BYTES_MAX + ENDORSEMENTS_BYTES_MAX + 64 <= PEER_MESSAGE_BYTES_MAX);
// Segment counts fit the wire's u32.
const _: () = assert!(PEER_MESSAGE_BYTES_MAX / SEGMENT_DATA_BYTES_MAX < u32::MAX as usize);

/// The bounds a [`PeerChannels`] enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeerLimits {
    /// Connections (handshaking or established); new Syns beyond it are refused.
    pub(crate) connections_max: usize,
    /// Largest serialized `EnclaveToEnclave`, sent or reassembled.
    pub(crate) message_bytes_max: usize,
    /// Messages queued for one peer while its handshake runs.
    pub(crate) pending_messages_max: usize,
    /// Bytes queued for one peer while its handshake runs.
    pub(crate) pending_bytes_max: usize,
    /// How long a SynAck may take, by the caller's clock.
    pub(crate) handshake_timeout_secs: u64,
}

impl Default for PeerLimits {
    fn default() -> Self {
        Self {
            connections_max: PEER_CONNECTIONS_MAX,
            message_bytes_max: PEER_MESSAGE_BYTES_MAX,
            pending_messages_max: PEER_PENDING_MESSAGES_MAX,
            pending_bytes_max: PEER_PENDING_BYTES_MAX,
            handshake_timeout_secs: PEER_HANDSHAKE_TIMEOUT_SECS,
        }
    }
}

/// What one call needs to know about this enclave. Built by the core for each call.
pub(crate) struct PeerContext<'a> {
    /// This enclave's current serialized `cloister.attest.Evidence`, binding its peer id.
    pub(crate) evidence: &'a [u8],
    /// Endorsements (collateral) for that evidence; empty for the simulated backend.
    pub(crate) endorsements: &'a [u8],
    /// This enclave's measurement: the only one a peer may have.
    pub(crate) measurement: [u8; MEASUREMENT_BYTES],
    /// True on the simulated backend: then, and only then, simulated peers are accepted.
    pub(crate) simulated: bool,
    /// This enclave's group, if it has joined one.
    pub(crate) group_config: Option<GroupConfig>,
    /// The group's minimums: every peer's attested values must meet them.
    pub(crate) minimums: &'a crate::minimums::Minimums,
    /// The time to judge evidence by (group time once there is a group).
    pub(crate) now_unix_secs: u64,
    /// Randomness for a handshake this call may start, drawn from the core's `Env`.
    pub(crate) seed: [u8; 32],
}

/// Frame bytes for the host to carry to `peer` in a `PeerMessage`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Outbound {
    pub(crate) peer: PeerId,
    /// A serialized `PeerFrame`.
    pub(crate) frame: Vec<u8>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Outbound({}, {} bytes)",
            short(&self.peer),
            self.frame.len()
        )
    }
}

/// What happened, for the core to act on.
pub(crate) enum PeerEvent {
    /// A frame for the host to carry.
    Send(Outbound),
    /// A connection completed; the peer proved its key and attestation.
    Connected {
        peer: PeerId,
        attestation: PeerAttestation,
    },
    /// A connected peer sent fresh evidence, and it verified.
    Reattested {
        peer: PeerId,
        attestation: PeerAttestation,
    },
    /// A whole message from a connected peer.
    Received {
        peer: PeerId,
        message: EnclaveToEnclave,
    },
    /// A connection, or our attempt at one, ended; messages queued for it were dropped.
    Disconnected { peer: PeerId, reason: Error },
    /// A frame was refused without touching any connection; the peer was sent an Rst.
    Refused { peer: PeerId, reason: Error },
}

impl std::fmt::Debug for PeerEvent {
    // Messages may carry log entries with client data: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Send(outbound) => write!(f, "Send({outbound:?})"),
            Self::Connected { peer, .. } => write!(f, "Connected({})", short(peer)),
            Self::Reattested { peer, .. } => write!(f, "Reattested({})", short(peer)),
            Self::Received { peer, .. } => write!(f, "Received({}, <redacted>)", short(peer)),
            Self::Disconnected { peer, reason } => {
                write!(f, "Disconnected({}, {reason})", short(peer))
            }
            Self::Refused { peer, reason } => write!(f, "Refused({}, {reason})", short(peer)),
        }
    }
}

/// A peer id for messages: its first 8 bytes in hex.
pub(crate) fn short(peer: &PeerId) -> String {
    hex::encode(&peer[..8])
}
