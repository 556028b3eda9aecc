//! The door to the enclave core, as the host sees it: bytes in, bytes out.
//!
//! The real core ([`cloister_enclave::Enclave`]) implements it in-process. An enclave in
//! another process (inside a Nitro enclave or a confidential VM) is reached through
//! [`RemoteDoor`], which carries the same bytes over a socket to an [`EnclaveServer`]; tests
//! implement it with scripted fakes.
//!
//! ```text
//!  host process                                   enclave process (cloister enclave)
//!  dispatcher thread                              EnclaveServer: one host at a time
//!   └─ RemoteDoor::exchange(batch) ──Handle × n, Drain──▶ Enclave::handle × n
//!      ◀────────────────────────── Output × m, Drained ── Enclave::poll_message until None
//!                 unix:PATH · tcp:ADDR · vsock:CID:PORT, frames as in proto/door.proto
//! ```
//!
//! The dispatcher calls [`EnclaveDoor::exchange`] once per batch: handle every message, then
//! drain. In-process that is a loop over [`EnclaveDoor::handle`] and
//! [`EnclaveDoor::poll_message`]; over a socket it is one round trip.

mod address;
pub mod frame;
mod remote;
mod serve;
mod session;

use std::time::Duration;

pub use address::{EnclaveAddress, VSOCK_CID_ANY};
pub use remote::{Attachment, RemoteDoor, RemoteSettings};
pub use serve::{EnclaveBackend, EnclaveServer, ServeSettings, ServerStop};

/// A sans-I/O enclave core: feed it serialized `UntrustedMessage`s, drain serialized
/// `EnclaveMessage`s. Runs on the dispatcher's one dedicated thread.
pub trait EnclaveDoor: Send + 'static {
    /// Feeds one serialized `UntrustedMessage`. An error means the bytes were refused
    /// outright and no response will come for them.
    fn handle(&mut self, untrusted_message: &[u8]) -> Result<(), String>;

    /// Drains one serialized `EnclaveMessage`, or `None` when there is nothing more for now.
    fn poll_message(&mut self) -> Option<Vec<u8>>;

    /// Feeds a batch, then drains: [`Self::handle`] each message in order, then
    /// [`Self::poll_message`] until `None`, handing each output to `output`, at most
    /// `drain_messages_max` of them. A door to another process does this in one round trip.
    ///
    /// `Err` means the door itself failed (the enclave process is unreachable, hung, or
    /// broke the protocol): some of the batch may have been handled, and the caller must
    /// stop using the door.
    fn exchange(
        &mut self,
        batch: &[Vec<u8>],
        drain_messages_max: usize,
        output: &mut dyn FnMut(Vec<u8>),
    ) -> Result<Exchanged, DoorError> {
        let refusals = batch
            .iter()
            .map(|message| self.handle(message).err())
            .collect();
        for _ in 0..drain_messages_max {
            match self.poll_message() {
                Some(message) => output(message),
                None => {
                    return Ok(Exchanged {
                        refusals,
                        drained: true,
                    });
                }
            }
        }
        Ok(Exchanged {
            refusals,
            drained: false,
        })
    }

    /// The first request id the host may use. An enclave that outlives its host gives each
    /// new host its own range, so answers meant for a previous host stay orphans.
    fn first_request_id(&self) -> u64 {
        1
    }
}

/// What became of one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchanged {
    /// One entry per batch message: `Some(reason)` if the core refused it (no response will
    /// come for it).
    pub refusals: Vec<Option<String>>,
    /// False if draining stopped at its bound with output possibly left for the next batch.
    pub drained: bool,
}

/// Why a door to an enclave in another process failed, or why an enclave server could not
/// start.
#[derive(Debug, thiserror::Error)]
pub enum DoorError {
    /// The address is malformed, or names a transport this build or platform cannot use.
    #[error("enclave address: {0}")]
    Address(String),
    /// A socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, and where.
        context: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The other side did not answer in time.
    #[error("{context}: no answer within {timeout:?}")]
    Timeout {
        /// What was being waited for, and where.
        context: String,
        /// How long the wait was.
        timeout: Duration,
    },
    /// The enclave refused this host (another host is attached, a different config, ...).
    #[error("the enclave at {address} refused: {reason}")]
    Refused {
        /// The enclave's address.
        address: String,
        /// The enclave's reason.
        reason: String,
    },
    /// The other side sent something the protocol does not allow.
    #[error("the enclave at {address} broke the door protocol: {what}")]
    Protocol {
        /// The enclave's address.
        address: String,
        /// What was wrong.
        what: String,
    },
    /// The enclave closed the connection.
    #[error("the enclave at {0} closed the connection")]
    Closed(String),
    /// An earlier exchange failed; the connection is not used again.
    #[error("the connection to the enclave failed earlier: {0}")]
    Broken(String),
    /// A host session of the enclave server panicked, so the core's state is suspect.
    #[error("a host session panicked; the enclave's state cannot be trusted any more")]
    SessionPanicked,
}

/// The real core, in this process.
impl EnclaveDoor for cloister_enclave::Enclave {
    fn handle(&mut self, untrusted_message: &[u8]) -> Result<(), String> {
        cloister_enclave::Enclave::handle(self, untrusted_message)
            .map_err(|error| error.to_string())
    }

    fn poll_message(&mut self) -> Option<Vec<u8>> {
        cloister_enclave::Enclave::poll_message(self)
    }
}

#[cfg(test)]
mod tests;
