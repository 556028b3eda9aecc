//! Cloister's wire types, generated from `proto/*.proto` by prost.
//!
//! ```text
//!  client ──svr2::client──▶ host ──enclave::UntrustedMessage──▶ core
//!  client ◀─svr2::client─── host ◀─enclave::EnclaveMessage───── core
//! ```
//!
//! - [`svr2::client`]: the SVR2 client protocol (field numbers are interface facts).
//! - [`enclave`]: the host↔enclave door.
//! - [`attest`]: evidence and the statement it binds.
//! - [`log`]: entries of the replicated log.
//! - [`e2e`]: enclave-to-enclave messages, relayed by hosts.
//! - [`transport`]: the frames hosts relay those messages in, host to host over TCP.
//! - [`door`]: the frames that carry the door over a socket, to a core in another process.
//!
//! ```
//! use cloister_proto::{prost::Message, svr2::client::{Request, TriesRequest, request}};
//! let bytes = Request { inner: Some(request::Inner::Tries(TriesRequest {})) }.encode_to_vec();
//! assert!(Request::decode(bytes.as_slice()).is_ok());
//! ```
#![allow(missing_docs)]
// generated code carries the .proto comments, not docs on every item
// Generated oneofs hold messages inline; boxing them would change every caller for no gain.
#![allow(clippy::large_enum_variant)]

pub use prost;

/// The SVR2 protocol namespace.
pub mod svr2 {
    /// Messages exchanged inside the client's Noise channel.
    pub mod client {
        include!(concat!(env!("OUT_DIR"), "/svr2.client.rs"));
    }
}

/// Cloister's own packages. Module nesting mirrors the protobuf packages, because prost
/// refers across packages with relative paths.
pub mod cloister {
    /// The host↔enclave door.
    pub mod enclave {
        include!(concat!(env!("OUT_DIR"), "/cloister.enclave.rs"));
    }

    /// Attestation evidence and statements.
    pub mod attest {
        include!(concat!(env!("OUT_DIR"), "/cloister.attest.rs"));
    }

    /// Replicated log entries.
    pub mod log {
        include!(concat!(env!("OUT_DIR"), "/cloister.log.rs"));
    }

    /// Enclave-to-enclave messages, relayed by hosts.
    pub mod e2e {
        include!(concat!(env!("OUT_DIR"), "/cloister.e2e.rs"));
    }

    /// Host-to-host peer transport frames (TCP, length-prefixed).
    pub mod transport {
        include!(concat!(env!("OUT_DIR"), "/cloister.transport.rs"));
    }

    /// The door carried over a socket, to an enclave core in another process.
    pub mod door {
        include!(concat!(env!("OUT_DIR"), "/cloister.door.rs"));
    }
}

pub use cloister::{attest, door, e2e, enclave, log, transport};
