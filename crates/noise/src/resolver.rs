//! The snow resolver both sides use: snow's primitives, with `Kyber1024` resolved to
//! [`MlKem1024`] on a ChaCha20 stream the owner seeds.
//!
//! ```text
//!  Resolver::seeded(seed)         X25519 ephemeral ◀─ ChaCha20(seed, stream 0)   the core:
//!                                 KEM              ◀─ ChaCha20(seed, stream 1)   replays
//!  Resolver::with_kem_seed(seed)  X25519 ephemeral ◀─ snow's generator (the OS)  the SDK
//!                                 KEM              ◀─ ChaCha20(seed, stream 1)
//! ```
//!
//! Never snow's own `Kyber1024`: that one draws its randomness from the operating system.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use snow::params::{CipherChoice, DHChoice, HashChoice, KemChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Kem, Random};
use zeroize::Zeroizing;

use crate::MlKem1024;

/// The ChaCha20 stream of the seed that the KEM draws from; a seeded X25519 generator keeps
/// stream 0, so the two never share keystream.
const KEM_STREAM: u64 = 1;

/// snow's primitives with [`MlKem1024`] as `Kyber1024`, its randomness from a seed.
pub struct Resolver {
    seed: Zeroizing<[u8; 32]>,
    /// True when the X25519 ephemeral also comes from the seed (stream 0).
    seeded_rng: bool,
}

impl Resolver {
    /// Every random byte of the handshake from ChaCha20 keyed by `seed`, so that a core
    /// that drew `seed` from its `Env` replays byte for byte.
    pub fn seeded(seed: [u8; 32]) -> Self {
        Self {
            seed: Zeroizing::new(seed),
            seeded_rng: true,
        }
    }

    /// snow's own generator for the X25519 ephemeral; the KEM from ChaCha20 keyed by
    /// `kem_seed` (which a client draws from the operating system).
    pub fn with_kem_seed(kem_seed: [u8; 32]) -> Self {
        Self {
            seed: Zeroizing::new(kem_seed),
            seeded_rng: false,
        }
    }
}

struct SeededRandom(ChaCha20Rng);

impl Random for SeededRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        if self.seeded_rng {
            Some(Box::new(SeededRandom(ChaCha20Rng::from_seed(*self.seed))))
        } else {
            DefaultResolver.resolve_rng()
        }
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
    fn resolve_kem(&self, choice: &KemChoice) -> Option<Box<dyn Kem>> {
        match choice {
            KemChoice::Kyber1024 => {
                let mut random = ChaCha20Rng::from_seed(*self.seed);
                random.set_stream(KEM_STREAM);
                Some(Box::new(MlKem1024::new(random)))
            }
        }
    }
}
