//! Why a peer connection ended or failed, and why a send was refused.

use std::net::SocketAddr;

use super::PeerId;
use super::wire::DATA_BYTES_MAX;

/// Why a peer connection failed or ended, grouped by blame.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    // --- The remote host is to blame: it is disconnected, nothing else changes. ---
    /// The remote sent something that is not a valid frame at this point.
    #[error("peer protocol violation: {0}")]
    Violation(String),
    /// The address answered with another enclave than the one dialed for.
    #[error("{addr} is peer {found}, not {expected}")]
    WrongPeer {
        /// The address dialed.
        addr: SocketAddr,
        /// The peer the address was thought to belong to.
        expected: PeerId,
        /// The peer that answered.
        found: PeerId,
    },

    // --- The network: retried with backoff. ---
    /// Connecting, reading or writing failed.
    #[error("{context}: {source}")]
    Io {
        /// What the transport was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The remote did not answer in time.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// The remote closed the connection.
    #[error("the connection was closed")]
    Closed,

    // --- Local decisions. ---
    /// The address is this host's own peer listener.
    #[error("{0} is this host's own peer listener")]
    SelfConnection(SocketAddr),
    /// A newer connection to the same peer replaced this one, or the transport kept an
    /// existing one instead (see the simultaneous-connection rule).
    #[error("superseded by another connection to the same peer")]
    Superseded,
    /// A bounded table is full.
    #[error("busy: {0}")]
    Busy(&'static str),
    /// The transport is stopping.
    #[error("the peer transport is shutting down")]
    ShuttingDown,
}

/// Why [`super::PeerTransport::send`] refused a message. Every refusal of a well-addressed
/// message is a loss the peer's Noise channel cannot survive, so the transport also owes the
/// local enclave a `ResetPeer` for that peer (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendRefusal {
    /// The enclave named a peer id of the wrong size (no reset: there is no such peer).
    #[error("a peer id of {0} bytes (expected 32)")]
    InvalidPeerId(usize),
    /// The enclave addressed itself (no reset).
    #[error("a message addressed to the local enclave itself")]
    ToSelf,
    /// The message is larger than any enclave accepts.
    #[error("a message of {0} bytes (limit {DATA_BYTES_MAX})")]
    TooLarge(usize),
    /// The peer's send buffer is full; everything queued for it was dropped too.
    #[error("the send buffer is full; dropped {dropped} queued frames")]
    BufferFull {
        /// Frames that were queued and are now dropped.
        dropped: usize,
    },
    /// `peers_max` peers have state and none is idle enough to forget.
    #[error("too many peers")]
    PeersFull,
    /// The transport is stopping (no reset: the enclave is stopping too).
    #[error("the peer transport is shutting down")]
    ShuttingDown,
}

impl SendRefusal {
    /// True when the refusal broke the peer's ordered stream, so the enclave must be told
    /// `ResetPeer`.
    pub fn owes_reset(self) -> bool {
        matches!(
            self,
            SendRefusal::TooLarge(_) | SendRefusal::BufferFull { .. } | SendRefusal::PeersFull
        )
    }
}
