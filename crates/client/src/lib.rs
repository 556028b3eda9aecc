//! The Cloister client SDK for secure value recovery (SVR2 client protocol).
//!
//! A client reaches an enclave through an untrusted host. It trusts nothing the host says:
//! it verifies the enclave's attestation, takes the enclave's Noise key from the attested
//! statement, and talks to the enclave through a Noise channel the host cannot read: NK, or
//! NKhfs with ML-KEM-1024 (SVR2's `client_pq`) when the attested group config asks for it.
//! PINs never leave the client: they are stretched with Argon2id into an access key (sent
//! as the `pin` field) and an encryption key (which seals the user's secret).
//!
//! ```text
//!  Client::connect ──ws://host/v1/<enclave-id>, Basic auth──▶ host ──▶ enclave
//!     │ frame 1: ClientHandshakeStart{evidence}  ◀──────────────────────┘
//!     │ verify evidence (policy: measurement, simulated?) ─▶ attested key, group id
//!     │ Noise NK / NKhfs (attested client_pq) message 1 ──▶ ◀── message 2   (hash kept)
//!     ▼
//!  Connection: backup · expose · restore · delete · tries   (one Noise message each way)
//!
//!  session::backup_secret:  PinHash::derive(pin, username, group id)
//!     Backup (retry on new connections until one succeeds) ─▶ Expose (retry Expose only)
//! ```
//!
//! # Example
//!
//! ```no_run
//! use cloister_client::{Client, ConnectOptions, Credentials, EnclaveId, RetryPolicy};
//! use cloister_client::pin::Secret;
//! use cloister_client::session::{backup_secret, restore_secret, RestoreSecretOutcome};
//!
//! # async fn example() -> Result<(), cloister_client::Error> {
//! let enclave_id: EnclaveId = "…64 hex characters…".parse()?;
//! let credentials = Credentials::new("00112233445566778899aabbccddeeff", "1700000000:0123456789abcdef0123")?;
//! // Simulated enclaves are refused unless you opt in (development only).
//! let client = Client::new("ws://127.0.0.1:8080", enclave_id, credentials, ConnectOptions::default())?;
//!
//! // Two-phase backup: Backup until it succeeds, then Expose until it succeeds.
//! let secret = Secret::generate();
//! backup_secret(&client, &secret, "1234", 10, &RetryPolicy::default()).await?;
//!
//! match restore_secret(&client, "1234", &RetryPolicy::default()).await? {
//!     RestoreSecretOutcome::Ok { secret: restored, tries } => assert!(restored == secret && tries == 10),
//!     RestoreSecretOutcome::PinMismatch { tries_left } => println!("wrong PIN, {tries_left} left"),
//!     RestoreSecretOutcome::Missing => println!("no backup"),
//! }
//!
//! // Lower level: one connection, several typed requests.
//! let mut connection = client.connect().await?;
//! println!("tries: {:?}", connection.tries().await?);
//! connection.delete().await?;
//! connection.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! Errors are one enum, [`Error`], grouped by [`Blame`]; [`Error::is_retryable`] says
//! whether a new connection may help, and [`session`] documents when a retry is *safe*.

mod channel;
mod connection;
mod credentials;
mod error;
mod handshake;
mod operations;
mod options;
pub mod pin;
mod resolver;
pub mod session;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use channel::HANDSHAKE_HASH_BYTES;
pub use cloister_noise::ClientHandshake;
pub use connection::{Client, Connection};
pub use credentials::{BACKUP_ID_BYTES, Credentials, PASSWORD_BYTES_MAX};
pub use error::{Blame, Error, Phase, Result};
pub use handshake::{AttestedEnclave, NOISE_PATTERN, NOISE_PATTERN_PQ, verify_handshake_start};
pub use operations::{
    DATA_BYTES_MAX, DATA_BYTES_MIN, ExposeOutcome, PIN_BYTES, RestoreOutcome, TRIES_MAX, TRIES_MIN,
    TriesOutcome,
};
pub use options::{ConnectOptions, EnclaveId, Timeouts};
pub use session::{Connector, RetryPolicy};

/// Largest WebSocket frame (and message) accepted from the server: the protocol's 128 KiB.
pub const FRAME_BYTES_MAX: usize = 128 * 1024;

/// Largest Noise message, in either direction.
pub const NOISE_MESSAGE_BYTES_MAX: usize = 65535;

/// Ping/pong frames tolerated while waiting for one binary frame.
pub const CONTROL_FRAMES_MAX: usize = 64;

const _: () = assert!(NOISE_MESSAGE_BYTES_MAX <= FRAME_BYTES_MAX);
const _: () = assert!(NOISE_MESSAGE_BYTES_MAX == cloister_noise::NOISE_MESSAGE_BYTES_MAX);
const _: () = assert!(cloister_attest::EVIDENCE_BYTES_MAX < FRAME_BYTES_MAX);
