//! Which client handshake a group speaks, and the exact size of each of its messages.

use snow::params::NoiseParams;

use crate::kem::{KEM_CIPHERTEXT_BYTES, KEM_PUBLIC_KEY_BYTES};

/// Largest Noise message (Noise spec §3; SVR2 client protocol: "at most 65535 bytes").
pub const NOISE_MESSAGE_BYTES_MAX: usize = 65535;
/// ChaChaPoly's tag, after every encrypted field once a handshake has a key.
pub const NOISE_TAG_BYTES: usize = 16;
/// An X25519 public key (the `e` token).
pub const X25519_KEY_BYTES: usize = 32;

/// The client handshake of a group, chosen by its attested `client_pq` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientHandshake {
    /// `Noise_NK_25519_ChaChaPoly_SHA256`: SVR2's default.
    Classical,
    /// `Noise_NKhfs_25519+Kyber1024_ChaChaPoly_SHA256`: SVR2's `client_pq` option, X25519
    /// and Kyber1024 together, so that a later quantum computer cannot read a recorded
    /// session unless Kyber falls too.
    PostQuantum,
}

impl ClientHandshake {
    /// The handshake for a group whose config says `client_pq`.
    pub fn for_group(client_pq: bool) -> Self {
        if client_pq {
            Self::PostQuantum
        } else {
            Self::Classical
        }
    }

    /// The Noise protocol name.
    pub fn pattern(self) -> &'static str {
        match self {
            Self::Classical => "Noise_NK_25519_ChaChaPoly_SHA256",
            Self::PostQuantum => "Noise_NKhfs_25519+Kyber1024_ChaChaPoly_SHA256",
        }
    }

    /// [`Self::pattern`], parsed for snow.
    pub fn params(self) -> NoiseParams {
        // Two constant names that parse; every handshake test covers both.
        #[allow(clippy::expect_used)]
        self.pattern()
            .parse()
            .expect("the client Noise patterns are valid")
    }

    /// Message 1 (client to enclave) with its empty payload. NK: `e, es`. NKhfs:
    /// `e, es, e1`, where `e1` is encrypted under the key `es` made.
    pub const fn message_1_bytes(self) -> usize {
        let kem_public_key = match self {
            Self::Classical => 0,
            Self::PostQuantum => KEM_PUBLIC_KEY_BYTES + NOISE_TAG_BYTES,
        };
        X25519_KEY_BYTES + kem_public_key + NOISE_TAG_BYTES
    }

    /// Message 2 (enclave to client) with its empty payload. NK: `e, ee`. NKhfs:
    /// `e, ee, ekem1`, where the ciphertext is encrypted too.
    pub const fn message_2_bytes(self) -> usize {
        let kem_ciphertext = match self {
            Self::Classical => 0,
            Self::PostQuantum => KEM_CIPHERTEXT_BYTES + NOISE_TAG_BYTES,
        };
        X25519_KEY_BYTES + kem_ciphertext + NOISE_TAG_BYTES
    }

    /// The largest handshake message of either pattern: what a buffer must hold.
    pub const HANDSHAKE_MESSAGE_BYTES_MAX: usize = Self::PostQuantum.message_2_bytes();
}

const _: () = {
    let max = ClientHandshake::HANDSHAKE_MESSAGE_BYTES_MAX;
    assert!(ClientHandshake::PostQuantum.message_1_bytes() <= max);
    assert!(ClientHandshake::Classical.message_1_bytes() <= max);
    assert!(ClientHandshake::Classical.message_2_bytes() <= max);
    assert!(max <= NOISE_MESSAGE_BYTES_MAX);
};
