//! The Cloister enclave core: a sans-I/O, deterministic state machine behind one door.
//!
//! ```text
//!            UntrustedMessage bytes                 EnclaveMessage bytes
//!  host ──────────── handle() ──────▶ ┌──────────┐ ──── poll_message() ────▶ host
//!                                     │  Enclave │
//!   TimerTick (the only clock)        │  ├ client sessions (Noise NK responders)
//!   HostToEnclaveRequest              │  ├ Raft (RawNode, memory-only log)
//!   (client frames ride inside)       │  └ SVR2 database
//!                                     └──────────┘
//!                  randomness and evidence only from `Env`
//! ```
//!
//! The core owns no clock, sockets, files or threads. Given the same `Env` seed and the same
//! sequence of `handle`/`poll_message` calls it produces the same bytes, which is what lets a
//! simulator replay any failure.
//!
//! ```
//! use cloister_enclave::{Enclave, InsecureSimulatedEnv};
//! use cloister_proto::enclave::{
//!     CreateNewRaftGroupRequest, EnclaveMessage, HostToEnclaveRequest, InitConfig,
//!     UntrustedMessage, enclave_message, host_to_enclave_request, host_to_enclave_response,
//!     untrusted_message,
//! };
//! use cloister_proto::prost::Message;
//!
//! let env = Box::new(InsecureSimulatedEnv::from_seed([1; 32]));
//! let mut enclave = Enclave::init(&InitConfig::default().encode_to_vec(), env).unwrap();
//! let create = UntrustedMessage {
//!     inner: Some(untrusted_message::Inner::H2eRequest(HostToEnclaveRequest {
//!         request_id: 1,
//!         inner: Some(host_to_enclave_request::Inner::CreateNewRaftGroup(
//!             CreateNewRaftGroupRequest::default(),
//!         )),
//!     })),
//! };
//! enclave.handle(&create.encode_to_vec()).unwrap();
//! // Drain everything: log records for the host, and the response to request 1.
//! let mut responses = Vec::new();
//! while let Some(bytes) = enclave.poll_message() {
//!     if let Some(enclave_message::Inner::H2eResponse(response)) =
//!         EnclaveMessage::decode(bytes.as_slice()).unwrap().inner
//!     {
//!         responses.push(response);
//!     }
//! }
//! assert_eq!(responses[0].request_id, 1);
//! assert!(matches!(responses[0].inner, Some(host_to_enclave_response::Inner::Status(_))));
//! ```

mod apply;
#[cfg(feature = "bug-injection")]
mod bugs;
mod client;
mod client_calls;
mod config;
mod core;
mod db;
mod env;
mod error;
mod healing;
mod host_calls;
mod join;
mod membership;
mod metrics;
mod minimums;
mod minimums_calls;
mod peer_calls;
mod peers;
mod replication;
mod transactions;

#[cfg(feature = "bug-injection")]
pub use crate::bugs::InjectedBug;
pub use crate::client::{
    CLIENT_NOISE_PATTERN, CLIENT_PQ_NOISE_PATTERN, CLIENT_SESSIONS_MAX, ClientHandshake,
    NOISE_MESSAGE_BYTES_MAX,
};
pub use crate::config::PENDING_REQUESTS_MAX;
pub use crate::core::{Enclave, INIT_CONFIG_BYTES_MAX, UNTRUSTED_MESSAGE_BYTES_MAX};
pub use crate::db::{
    BACKUP_ID_BYTES, BackupId, DATA_BYTES_MAX, DATA_BYTES_MIN, Database, PIN_BYTES, TRIES_MAX,
    TRIES_MIN,
};
pub use crate::env::{Attestation, Env, InsecureSimulatedEnv, PlatformError};
pub use crate::error::Error;
pub use crate::host_calls::{
    ELECTION_TICKS_DEFAULT, HEARTBEAT_TICKS_DEFAULT, LOG_BYTES_MAX_DEFAULT, VOTING_REPLICAS_MAX,
};

#[cfg(test)]
mod tests;
