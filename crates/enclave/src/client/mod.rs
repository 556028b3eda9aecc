//! Client sessions: one Noise responder per client (NK, or NKhfs with ML-KEM-1024 when the
//! group's config says `client_pq`), in a bounded table.
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
pub(crate) use keys::bound_minimums;
pub use noise::{
    CLIENT_NOISE_PATTERN, CLIENT_PQ_NOISE_PATTERN, ClientHandshake, NOISE_MESSAGE_BYTES_MAX,
};
pub use session::{ExpectHandshake, Session};
pub use sessions::{CLIENT_SESSION_IDLE_SECS_MAX, CLIENT_SESSIONS_MAX, ClientSessions};
