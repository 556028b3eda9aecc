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

use crate::claims::{Claims, Validity};
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

/// Produce simulated evidence for `data` at `now_unix_secs`, at security version 0.
pub fn attest(data: &cloister_proto::attest::AttestationData, now_unix_secs: u64) -> Evidence {
    attest_with_security_version(data, now_unix_secs, 0)
}

/// Produce simulated evidence for `data` at `now_unix_secs` attesting `security_version`
/// (claimed as `sim.security_version`, what minimums are tested with).
pub fn attest_with_security_version(
    data: &cloister_proto::attest::AttestationData,
    now_unix_secs: u64,
    security_version: u32,
) -> Evidence {
    let attestation_data = data.encode_to_vec();
    let report = SimReport {
        measurement: measurement().to_vec(),
        report_data: crate::report_data(&attestation_data).to_vec(),
        timestamp_unix_secs: now_unix_secs,
        security_version,
    }
    .encode_to_vec();
    let signature = platform_key().sign(&report).to_bytes().to_vec();
    Evidence {
        kind: EvidenceKind::Sim as i32,
        report: SimQuote { report, signature }.encode_to_vec(),
        attestation_data,
    }
}

/// Check the platform signature and read the report's claims. Sim takes no endorsements.
pub(crate) fn claims(quote_bytes: &[u8], endorsements: &[u8]) -> Result<Claims, AttestError> {
    if !endorsements.is_empty() {
        return Err(AttestError::UnexpectedEndorsements(
            "sim",
            endorsements.len(),
        ));
    }
    let quote =
        SimQuote::decode(quote_bytes).map_err(|_| AttestError::Malformed("simulated quote"))?;
    let signature = ed25519_dalek::Signature::from_slice(&quote.signature)
        .map_err(|_| AttestError::Malformed("simulated quote signature"))?;
    platform_verifying_key()
        .verify_strict(&quote.report, &signature)
        .map_err(|_| {
            AttestError::BadSignature("the simulated platform's signature over the report".into())
        })?;
    let report = SimReport::decode(quote.report.as_slice())
        .map_err(|_| AttestError::Malformed("simulated report"))?;
    let measurement = report
        .measurement
        .as_slice()
        .try_into()
        .map_err(|_| AttestError::Malformed("simulated report measurement"))?;
    if report.report_data.len() != 32 {
        return Err(AttestError::Malformed("simulated report data"));
    }
    Ok(Claims {
        kind: EvidenceKind::Sim,
        measurement,
        report_data: report.report_data,
        tcb_status: None,
        advisory_ids: Vec::new(),
        snp_tcb: None,
        debug: false,
        issued_at_unix_secs: Some(report.timestamp_unix_secs),
        validity: Validity::ALWAYS,
        details: vec![(
            "platform",
            "simulated: insecure, anyone can forge this".into(),
        )],
        attested_values: [(
            "sim.security_version".to_owned(),
            report.security_version.to_be_bytes().to_vec(),
        )]
        .into(),
    })
}
