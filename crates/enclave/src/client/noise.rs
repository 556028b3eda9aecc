//! Noise plumbing for client sessions: the protocol name, and a resolver that takes its
//! randomness from the core's [`Env`](crate::Env) so that handshakes replay from a seed.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use snow::params::NoiseParams;
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};

/// The SVR2 client handshake.
pub const CLIENT_NOISE_PATTERN: &str = "Noise_NK_25519_ChaChaPoly_SHA256";
/// Largest Noise message (Noise spec §3).
pub const NOISE_MESSAGE_BYTES_MAX: usize = 65535;
/// Noise's AEAD tag.
pub const NOISE_TAG_BYTES: usize = 16;

/// Parsed [`CLIENT_NOISE_PATTERN`].
pub fn client_params() -> NoiseParams {
    // A constant that parses; covered by every handshake test.
    #[allow(clippy::expect_used)]
    CLIENT_NOISE_PATTERN
        .parse()
        .expect("the client Noise pattern is valid")
}

/// A snow resolver whose only randomness is a ChaCha20 stream seeded by the core.
pub struct SeededResolver {
    seed: [u8; 32],
}

impl SeededResolver {
    /// A resolver whose handshake randomness comes from `seed` (drawn from the core's Env).
    pub fn new(seed: [u8; 32]) -> Self {
        Self { seed }
    }
}

struct SeededRandom(ChaCha20Rng);

impl Random for SeededRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SeededRandom(ChaCha20Rng::from_seed(self.seed))))
    }
    fn resolve_dh(&self, choice: &snow::params::DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }
    fn resolve_hash(&self, choice: &snow::params::HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }
    fn resolve_cipher(&self, choice: &snow::params::CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}
