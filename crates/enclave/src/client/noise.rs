//! Noise plumbing for client sessions: the protocol names, and a resolver that takes its
//! randomness from the core's [`Env`](crate::Env) so that handshakes replay from a seed.

use cloister_noise::MlKem1024;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use snow::params::{CipherChoice, DHChoice, HashChoice, KemChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Kem, Random};

pub use cloister_noise::{ClientHandshake, NOISE_MESSAGE_BYTES_MAX, NOISE_TAG_BYTES};

/// The SVR2 client handshake of a group without `client_pq`.
pub const CLIENT_NOISE_PATTERN: &str = "Noise_NK_25519_ChaChaPoly_SHA256";
/// The SVR2 client handshake of a group with `client_pq`.
pub const CLIENT_PQ_NOISE_PATTERN: &str = "Noise_NKhfs_25519+Kyber1024_ChaChaPoly_SHA256";

/// The ChaCha20 stream of the seed that the KEM draws from; snow's own generator (for the
/// X25519 ephemeral) keeps stream 0, so the two never share keystream.
const KEM_STREAM: u64 = 1;

/// A snow resolver whose only randomness is ChaCha20 keyed by a seed the core drew from its
/// Env: X25519 ephemerals from stream 0, KEM encapsulations from stream [`KEM_STREAM`].
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
    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }
    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }
    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
    /// Never snow's default KEM: that one reads the operating system's randomness.
    fn resolve_kem(&self, choice: &KemChoice) -> Option<Box<dyn Kem>> {
        match choice {
            KemChoice::Kyber1024 => {
                let mut random = ChaCha20Rng::from_seed(self.seed);
                random.set_stream(KEM_STREAM);
                Some(Box::new(MlKem1024::new(random)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_names_are_the_shared_crates() {
        assert_eq!(
            ClientHandshake::for_group(false).pattern(),
            CLIENT_NOISE_PATTERN
        );
        assert_eq!(
            ClientHandshake::for_group(true).pattern(),
            CLIENT_PQ_NOISE_PATTERN
        );
    }
}
