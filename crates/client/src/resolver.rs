//! The SDK's snow resolver: snow's defaults, with ML-KEM-1024 for NKhfs.

use cloister_noise::MlKem1024;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use snow::params::{CipherChoice, DHChoice, HashChoice, KemChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Kem, Random};
use zeroize::Zeroizing;

use crate::{Error, Result};

/// snow's defaults, except the KEM: ML-KEM-1024 (what SVR2 runs as `Kyber1024`), seeded from
/// the operating system. snow's own `Kyber1024` is PQClean's C code behind an optional
/// feature; this one is pure Rust, the same code the enclave runs.
pub(crate) struct ClientResolver {
    kem_seed: Zeroizing<[u8; 32]>,
}

impl ClientResolver {
    /// A resolver for one handshake, its KEM seeded from the operating system.
    pub(crate) fn new() -> Result<Self> {
        let mut kem_seed = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng
            .try_fill_bytes(kem_seed.as_mut())
            .map_err(|error| Error::Noise(format!("no randomness from the system: {error}")))?;
        Ok(Self { kem_seed })
    }
}

impl CryptoResolver for ClientResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        DefaultResolver.resolve_rng()
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
            KemChoice::Kyber1024 => Some(Box::new(MlKem1024::new(ChaCha20Rng::from_seed(
                *self.kem_seed,
            )))),
        }
    }
}
