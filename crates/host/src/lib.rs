//! The Cloister host: the untrusted daemon that runs next to the enclave core.
//!
//! The host is trusted with nothing. It **moves bytes** (client WebSockets, and peer links
//! to other hosts: [`peer`]) to and from the core, **keeps time** (a `TimerTick` every
//! `tick_interval`), and **persists nothing secret**: client traffic is Noise ciphertext it
//! cannot read, and the database lives only in enclave memory. The one file it keeps is the
//! auth secret it shares with the credential service, which lets it check who may connect,
//! not read what they say. A host that lies can deny service; the core validates every byte
//! it is handed.
//!
//! The core runs in this process or in another one (a TEE reached over a socket): the
//! dispatcher sees either through the same [`EnclaveDoor`] (see [`door`]).
//!
//! ```text
//!  clients ──ws, Basic auth──▶ client_ws ─▶ client_session ─┐          ┌─ admin (loopback):
//!          ◀─binary frames───                               │          │  status, create-group,
//!                                                           ▼          ▼  hashes, metrics, …
//!                                                    Dispatcher::call(inner)
//!                                              pending[request_id] ◀─┐
//!                                                           │        │ route by request_id
//!                                         bounded queue ────▼        │
//!  ticker ──TimerTick every tick_interval──▶  enclave thread: handle() batch,
//!                                             then poll_message() until None
//!                                                 (LogRecords become tracing events)
//! ```
//!
//! # The loop, for one client
//!
//! 1. `GET /v1/{enclave_id}` with HTTP Basic auth. The host checks the enclave id (404),
//!    the token ([`auth::verify`], 401), the per-user rate limit (429 + `Retry-After`) and
//!    `connections_max` (503), then upgrades.
//! 2. `NewClient{backup id}` → `NewClientReply`; the serialized `ClientHandshakeStart` is the
//!    first binary frame.
//! 3. Each binary frame → `ExistingClient{client_id, data}` → the reply's `data` is one
//!    binary frame back (Noise handshake message 2, then encrypted SVR2 responses).
//! 4. An enclave `Error` closes the socket (4003 / 4014 / 4013, see [`error::close_code`]);
//!    text frames close with 4003, oversized frames with 1009, idleness with 1000, host
//!    shutdown with 1001. However the socket ends, the host sends `CloseClient`.
//!
//! # Errors
//!
//! [`HostError`] is the crate's one error type, grouped by blame (caller, host bounds,
//! enclave answer, enclave failure, operator setup); [`HostError::http_status`] and
//! [`HostError::close_code`] map each variant onto the wire.
//!
//! # Example: a one-replica development node
//!
//! ```
//! use cloister_enclave::{Enclave, InsecureSimulatedEnv};
//! use cloister_host::{HostConfig, Node, unix_now_secs};
//! use cloister_proto::prost::Message;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("cloister-host-doc-{}", std::process::id()));
//! let config = HostConfig {
//!     client_listen_addr: "127.0.0.1:0".parse()?, // port 0: any free port
//!     admin_listen_addr: "127.0.0.1:0".parse()?,
//!     auth_secret_path: dir.join("auth.secret"), // created (0600) if absent
//!     ..HostConfig::default()
//! };
//! let init = config.init_config(unix_now_secs()).encode_to_vec();
//! let enclave = Enclave::init(&init, Box::new(InsecureSimulatedEnv::from_seed([1; 32])))?;
//! tokio::runtime::Runtime::new()?.block_on(async {
//!     let node = Node::start(config, enclave).await?;
//!     // What `--dev` does: make this enclave a group of one so it can serve clients.
//!     let status = node.dispatcher().create_group(Default::default()).await?;
//!     assert!(status.group_config.is_some());
//!     println!("clients: ws://{}/v1/{}", node.client_addr(), node.enclave_id());
//!     println!("admin:   http://{}/v1/status", node.admin_addr());
//!     // A daemon passes `cloister_host::shutdown_signal()`; this example stops at once.
//!     node.wait(async {}).await
//! })?;
//! # std::fs::remove_dir_all(dir)?;
//! # Ok(())
//! # }
//! ```

pub mod admin;
pub mod auth;
mod client_session;
mod client_ws;
pub mod config;
pub mod dispatcher;
pub mod door;
pub mod error;
pub mod metrics;
mod node;
pub mod peer;
pub mod rate_limit;

pub use admin::CreateGroupParams;
pub use config::HostConfig;
pub use dispatcher::Dispatcher;
pub use door::EnclaveDoor;
pub use error::HostError;
pub use node::{Node, run, shutdown_signal, unix_now_secs};

#[cfg(test)]
mod testing;
