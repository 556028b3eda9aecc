//! Client sessions: one Noise NK responder per client, in a bounded table.
//!
//! ```text
//!  NewClient ──▶ ExpectHandshake ──handshake msg 1──▶ Established ──transport msgs──▶ …
//!                      │ bad message                     │ bad frame / bad request
//!                      ▼                                 ▼
//!                   removed                           removed
//! ```

mod keys;
pub(crate) mod noise;
mod session;
mod sessions;

pub use keys::ClientKey;
pub use noise::{CLIENT_NOISE_PATTERN, NOISE_MESSAGE_BYTES_MAX};
pub use session::{ExpectHandshake, Session};
pub use sessions::{CLIENT_SESSIONS_MAX, ClientSessions};
