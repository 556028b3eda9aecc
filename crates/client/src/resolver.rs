//! The SDK's snow resolver: [`cloister_noise::Resolver`] with its KEM seeded from the
//! operating system (the same ML-KEM-1024 code the enclave runs; snow's own `Kyber1024` is
//! PQClean's C code behind an optional feature).

use cloister_noise::Resolver;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::{Error, Result};

/// A resolver for one handshake: snow's generator for the X25519 ephemeral, the KEM seeded
/// from the operating system.
pub(crate) fn client_resolver() -> Result<Resolver> {
    let mut kem_seed = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng
        .try_fill_bytes(kem_seed.as_mut())
        .map_err(|error| Error::Noise(format!("no randomness from the system: {error}")))?;
    Ok(Resolver::with_kem_seed(*kem_seed))
}
