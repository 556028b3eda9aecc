//! The simulated TEE backend. **Insecure by design.**
//!
//! A software "platform" key signs a report of (measurement, report data, time). The key's
//! seed is public, so anyone can forge this evidence; it exists so that development and tests
//! run the same code paths as hardware. Its evidence always says `simulated`, and
//! [`crate::verify`] accepts it only under [`crate::Policy::insecure_allow_simulated`].

use cloister_proto::attest::{Evidence, EvidenceKind, SimQuote, SimReport};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::{AttestError, MEASUREMENT_BYTES};

/// The public seed of the simulated platform key. Publishing it is the point: simulated
/// evidence proves nothing.
const INSECURE_PLATFORM_SEED: [u8; 32] = *b"cloister insecure sim platform!!";

/// The simulated enclave's measurement: a hash of the build's version, so two builds of
/// different versions have different measurements, as real enclaves would.
pub fn measurement() -> [u8; MEASUREMENT_BYTES] {
    let mut hash = Sha256::new();
    hash.update(b"cloister simulated enclave ");
    hash.update(env!("CARGO_PKG_VERSION").as_bytes());
    hash.finalize().into()
}

fn platform_key() -> SigningKey {
    SigningKey::from_bytes(&INSECURE_PLATFORM_SEED)
}

/// The simulated platform's verifying key.
pub fn platform_verifying_key() -> VerifyingKey {
    platform_key().verifying_key()
}

/// Produce simulated evidence for `data` at `now_unix_secs`.
pub fn attest(data: &cloister_proto::attest::AttestationData, now_unix_secs: u64) -> Evidence {
    let attestation_data = data.encode_to_vec();
    let report = SimReport {
        measurement: measurement().to_vec(),
        report_data: crate::report_data(&attestation_data).to_vec(),
        timestamp_unix_secs: now_unix_secs,
    }
    .encode_to_vec();
    let signature = platform_key().sign(&report).to_bytes().to_vec();
    Evidence {
        kind: EvidenceKind::Sim as i32,
        report: SimQuote { report, signature }.encode_to_vec(),
        attestation_data,
    }
}

/// The claims of a simulated report whose signature verified.
pub(crate) struct SimClaims {
    pub measurement: [u8; MEASUREMENT_BYTES],
    pub report_data: [u8; 32],
    pub timestamp_unix_secs: u64,
}

/// Check the platform signature and parse the report.
pub(crate) fn verify_report(quote_bytes: &[u8]) -> Result<SimClaims, AttestError> {
    let quote =
        SimQuote::decode(quote_bytes).map_err(|_| AttestError::Malformed("simulated quote"))?;
    let signature = ed25519_dalek::Signature::from_slice(&quote.signature)
        .map_err(|_| AttestError::Malformed("simulated quote signature"))?;
    platform_verifying_key()
        .verify_strict(&quote.report, &signature)
        .map_err(|_| AttestError::BadSignature)?;
    let report = SimReport::decode(quote.report.as_slice())
        .map_err(|_| AttestError::Malformed("simulated report"))?;
    Ok(SimClaims {
        measurement: report
            .measurement
            .as_slice()
            .try_into()
            .map_err(|_| AttestError::Malformed("simulated report measurement"))?,
        report_data: report
            .report_data
            .as_slice()
            .try_into()
            .map_err(|_| AttestError::Malformed("simulated report data"))?,
        timestamp_unix_secs: report.timestamp_unix_secs,
    })
}
