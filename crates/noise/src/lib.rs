//! The client Noise handshakes of the SVR2 client protocol, shared by the enclave core
//! (responder) and the SDK (initiator), so that both sides agree on one pattern name and
//! one exact size for every handshake message.
//!
//! ```text
//!  group config (attested) ── client_pq? ──▶ ClientHandshake::for_group
//!      false: Noise_NK_25519_ChaChaPoly_SHA256                   msg 1: 48 B,   msg 2: 48 B
//!      true:  Noise_NKhfs_25519+Kyber1024_ChaChaPoly_SHA256      msg 1: 1632 B, msg 2: 1632 B
//!                 -> e, es, e1        (e1: the client's ephemeral KEM public key)
//!                 <- e, ee, ekem1     (ekem1: the enclave's KEM ciphertext)
//! ```
//!
//! The KEM Noise calls `Kyber1024` is, on SVR2's wire, ML-KEM-1024 (FIPS 203): see
//! [`MlKem1024`]. snow's own implementation (PQClean's C code) draws its randomness from the
//! operating system, which the deterministic core may not do; [`MlKem1024`] is a pure-Rust
//! one whose only randomness is a ChaCha20 stream its owner seeds: from the core's `Env` in
//! the enclave, from the operating system in the SDK.
//!
//! ```
//! use cloister_noise::{ClientHandshake, MlKem1024};
//! use rand_chacha::ChaCha20Rng;
//! use rand_core::SeedableRng;
//!
//! let handshake = ClientHandshake::for_group(true);
//! assert_eq!(handshake.pattern(), "Noise_NKhfs_25519+Kyber1024_ChaChaPoly_SHA256");
//! assert_eq!((handshake.message_1_bytes(), handshake.message_2_bytes()), (1632, 1632));
//! // A responder's KEM: the same seed gives the same encapsulations, so a core replays.
//! let kem: Box<dyn snow::types::Kem> = Box::new(MlKem1024::new(ChaCha20Rng::from_seed([7; 32])));
//! assert_eq!(kem.name(), "Kyber1024");
//! ```

mod handshake;
mod kem;
mod resolver;

pub use handshake::{ClientHandshake, NOISE_MESSAGE_BYTES_MAX, NOISE_TAG_BYTES, X25519_KEY_BYTES};
pub use kem::{KEM_CIPHERTEXT_BYTES, KEM_PUBLIC_KEY_BYTES, KEM_SHARED_SECRET_BYTES, MlKem1024};
pub use resolver::Resolver;

#[cfg(test)]
mod tests;
