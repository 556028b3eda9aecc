//! The enclave's only window on its platform: randomness and evidence.
//!
//! The simulated platform lives here; the real ones (Gramine SGX, configfs-tsm for TDX and
//! SEV-SNP, the Nitro NSM) live in `cloister-platform`, outside the deterministic core.

use cloister_proto::attest::{AttestationData, Evidence};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// Evidence, and the endorsements that travel beside it (DCAP collateral for SGX and TDX,
/// the VCEK chain for SEV-SNP, nothing for Nitro and the simulated platform).
#[derive(Debug, Clone, PartialEq)]
pub struct Attestation {
    /// The platform's report binding the statement.
    pub evidence: Evidence,
    /// What a verifier needs beside the evidence; empty when nothing.
    pub endorsements: Vec<u8>,
}

/// The platform could not produce evidence (its device is gone, busy, or answered nonsense).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlatformError(pub String);

/// What the core asks of the platform it runs on. A real TEE reads its hardware randomness
/// and its attestation device; simulation uses a seeded generator and the insecure
/// simulated platform key.
pub trait Env: Send {
    /// Fill `buffer` with cryptographically strong randomness.
    fn fill_random(&mut self, buffer: &mut [u8]);
    /// Evidence that binds `data`, produced at `now_unix_secs`. A failure changes nothing in
    /// the core: it keeps its current evidence and says why.
    fn attest(
        &mut self,
        data: &AttestationData,
        now_unix_secs: u64,
    ) -> Result<Attestation, PlatformError>;
    /// This enclave's measurement.
    fn measurement(&self) -> [u8; cloister_attest::MEASUREMENT_BYTES];
    /// True for the simulated (insecure) backend. Bound into the group config.
    fn simulated(&self) -> bool;
}

/// The simulated TEE: randomness from a seeded ChaCha20 generator, evidence signed by the
/// published simulation key. **Insecure**: the host that picks the seed knows every key.
pub struct InsecureSimulatedEnv {
    rng: ChaCha20Rng,
    security_version: u32,
}

impl InsecureSimulatedEnv {
    /// A simulated platform whose randomness is derived from `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            rng: ChaCha20Rng::from_seed(seed),
            security_version: 0,
        }
    }

    /// The same platform attesting `security_version` as `sim.security_version` (for
    /// testing minimums); 0 unless set.
    pub fn with_security_version(mut self, security_version: u32) -> Self {
        self.security_version = security_version;
        self
    }
}

impl Env for InsecureSimulatedEnv {
    fn fill_random(&mut self, buffer: &mut [u8]) {
        self.rng.fill_bytes(buffer);
    }

    fn attest(
        &mut self,
        data: &AttestationData,
        now_unix_secs: u64,
    ) -> Result<Attestation, PlatformError> {
        Ok(Attestation {
            evidence: cloister_attest::sim::attest_with_security_version(
                data,
                now_unix_secs,
                self.security_version,
            ),
            endorsements: Vec::new(),
        })
    }

    fn measurement(&self) -> [u8; cloister_attest::MEASUREMENT_BYTES] {
        cloister_attest::sim::measurement()
    }

    fn simulated(&self) -> bool {
        true
    }
}
