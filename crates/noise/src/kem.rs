//! Noise's `Kyber1024` KEM as SVR2 clients speak it (ML-KEM-1024, FIPS 203), with its
//! randomness from a seeded ChaCha20 stream.
//!
//! The name in the Noise protocol string is `Kyber1024`, but the algorithm SVR2's clients
//! (libsignal) run under that name is ML-KEM-1024, not round-3 Kyber: the two share key and
//! ciphertext sizes and differ in how the shared secret is derived, so a round-3 Kyber would
//! complete no handshake with them. The tests check this against PQClean.
//!
//! In NKhfs the initiator (the client) makes an ephemeral key pair and decapsulates; the
//! responder (the enclave) only encapsulates, once per handshake, to a key it has never seen
//! before. The enclave therefore holds no long-lived KEM secret at all.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use libcrux_ml_kem::mlkem1024::{
    self, MlKem1024Ciphertext, MlKem1024PrivateKey, MlKem1024PublicKey,
};
use libcrux_ml_kem::{KEY_GENERATION_SEED_SIZE, SHARED_SECRET_SIZE};
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;
use snow::types::{Kem, Random};
use zeroize::{Zeroize, Zeroizing};

/// An ML-KEM-1024 public key (the `e1` token).
pub const KEM_PUBLIC_KEY_BYTES: usize = 1568;
/// An ML-KEM-1024 ciphertext (the `ekem1` token, before its tag).
pub const KEM_CIPHERTEXT_BYTES: usize = 1568;
/// The shared secret an encapsulation yields.
pub const KEM_SHARED_SECRET_BYTES: usize = 32;
/// An ML-KEM-1024 secret key (never leaves this module).
const KEM_SECRET_KEY_BYTES: usize = 3168;

const _: () = assert!(MlKem1024PublicKey::len() == KEM_PUBLIC_KEY_BYTES);
const _: () = assert!(MlKem1024Ciphertext::len() == KEM_CIPHERTEXT_BYTES);
const _: () = assert!(MlKem1024PrivateKey::len() == KEM_SECRET_KEY_BYTES);
const _: () = assert!(SHARED_SECRET_SIZE == KEM_SHARED_SECRET_BYTES);

/// snow's `Kyber1024` for `hfs` handshakes, as ML-KEM-1024. Key generation and
/// encapsulation draw only from the ChaCha20 stream given to [`MlKem1024::new`], so one
/// seed gives one transcript.
pub struct MlKem1024 {
    // snow's `encapsulate` takes `&self` and the trait must be `Sync`, hence the lock; it is
    // only ever taken by the one handshake that owns this value.
    random: Mutex<ChaCha20Rng>,
    public: Box<[u8; KEM_PUBLIC_KEY_BYTES]>,
    secret: Option<Box<Zeroizing<[u8; KEM_SECRET_KEY_BYTES]>>>,
}

impl fmt::Debug for MlKem1024 {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("MlKem1024")
            .field("has_key_pair", &self.secret.is_some())
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl MlKem1024 {
    /// A KEM whose randomness is `random` (seeded by the caller: the core's Env, or the OS).
    pub fn new(random: ChaCha20Rng) -> Self {
        Self {
            random: Mutex::new(random),
            public: Box::new([0; KEM_PUBLIC_KEY_BYTES]),
            secret: None,
        }
    }

    /// Fill `bytes` from this KEM's stream.
    fn draw(&self, bytes: &mut [u8]) {
        // A poisoned lock only means a panic elsewhere; the generator state is still valid.
        self.random
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fill_bytes(bytes);
    }
}

impl Kem for MlKem1024 {
    fn name(&self) -> &'static str {
        "Kyber1024"
    }

    fn pub_len(&self) -> usize {
        KEM_PUBLIC_KEY_BYTES
    }

    fn ciphertext_len(&self) -> usize {
        KEM_CIPHERTEXT_BYTES
    }

    fn shared_secret_len(&self) -> usize {
        KEM_SHARED_SECRET_BYTES
    }

    /// A fresh key pair from this KEM's own stream. snow offers its handshake generator too,
    /// but that one is fallible and this method cannot report an error; the stream is seeded
    /// from the same source, so nothing is lost.
    fn generate(&mut self, _snow_random: &mut dyn Random) {
        let mut seed = Zeroizing::new([0u8; KEY_GENERATION_SEED_SIZE]);
        self.draw(seed.as_mut());
        let (mut private, public) = mlkem1024::generate_key_pair(*seed).into_parts();
        *self.public = public.into();
        let mut secret = Box::new(Zeroizing::new([0u8; KEM_SECRET_KEY_BYTES]));
        secret.copy_from_slice(private.as_slice());
        private[0..KEM_SECRET_KEY_BYTES].zeroize();
        self.secret = Some(secret);
    }

    fn pubkey(&self) -> &[u8] {
        self.public.as_slice()
    }

    /// Encapsulate to the client's ephemeral key, after FIPS 203's input check (every
    /// coefficient reduced mod q): a key that fails it comes from no honest client.
    fn encapsulate(
        &self,
        public_key: &[u8],
        shared_secret_out: &mut [u8],
        ciphertext_out: &mut [u8],
    ) -> Result<(usize, usize), snow::Error> {
        let public_key = MlKem1024PublicKey::try_from(public_key).map_err(|_| snow::Error::Kem)?;
        if shared_secret_out.len() < KEM_SHARED_SECRET_BYTES
            || ciphertext_out.len() < KEM_CIPHERTEXT_BYTES
            || !mlkem1024::validate_public_key(&public_key)
        {
            return Err(snow::Error::Kem);
        }
        let mut randomness = Zeroizing::new([0u8; SHARED_SECRET_SIZE]);
        self.draw(randomness.as_mut());
        let (ciphertext, shared_secret) = mlkem1024::encapsulate(&public_key, *randomness);
        let shared_secret = Zeroizing::new(shared_secret);
        shared_secret_out[..KEM_SHARED_SECRET_BYTES].copy_from_slice(shared_secret.as_ref());
        ciphertext_out[..KEM_CIPHERTEXT_BYTES].copy_from_slice(ciphertext.as_slice());
        Ok((KEM_SHARED_SECRET_BYTES, KEM_CIPHERTEXT_BYTES))
    }

    fn decapsulate(
        &self,
        ciphertext: &[u8],
        shared_secret_out: &mut [u8],
    ) -> Result<usize, snow::Error> {
        let Some(secret) = &self.secret else {
            return Err(snow::Error::Kem);
        };
        let ciphertext = MlKem1024Ciphertext::try_from(ciphertext).map_err(|_| snow::Error::Kem)?;
        if shared_secret_out.len() < KEM_SHARED_SECRET_BYTES {
            return Err(snow::Error::Kem);
        }
        let mut private = MlKem1024PrivateKey::from(&***secret);
        let shared_secret = Zeroizing::new(mlkem1024::decapsulate(&private, &ciphertext));
        private[0..KEM_SECRET_KEY_BYTES].zeroize();
        shared_secret_out[..KEM_SHARED_SECRET_BYTES].copy_from_slice(shared_secret.as_ref());
        Ok(KEM_SHARED_SECRET_BYTES)
    }
}
