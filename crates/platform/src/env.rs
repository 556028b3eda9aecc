//! [`HardwareEnv`]: the core's [`Env`] on a real TEE, over one [`Producer`].
//!
//! ```text
//!  open(producer): probe = attest(PROBE statement) ──▶ measurement (unverified::inspect)
//!  attest(data):   report_data_for(kind, bytes) ──▶ producer ──▶ report, endorsements
//!                  inspect(report): report data == what we asked, measurement == probe's
//!                  ──▶ Attestation{Evidence{kind, report, bytes}, endorsements}
//! ```
//!
//! The producer's kernel is outside the enclave's code: a report that does not bind the
//! statement, or that names another measurement, is refused here rather than handed to
//! peers and clients who would refuse it later with a less useful message.

use cloister_attest::unverified::inspect;
use cloister_attest::{
    ENDORSEMENTS_BYTES_MAX, EVIDENCE_BYTES_MAX, MEASUREMENT_BYTES, kind_name, report_data_for,
};
use cloister_enclave::{Attestation, Env, PlatformError};
use cloister_proto::attest::{AttestationData, Evidence, EvidenceKind};
use prost::Message;
use rand::RngCore;

/// A platform's raw report and the endorsements that go with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Produced {
    /// The platform's report (quote, SEV-SNP report, Nitro document) over the report data.
    pub report: Vec<u8>,
    /// What a verifier needs beside it; empty when nothing.
    pub endorsements: Vec<u8>,
}

/// One TEE's way of getting a report over given report data.
pub trait Producer: Send {
    /// The kind of evidence it produces.
    fn kind(&self) -> EvidenceKind;
    /// A report over exactly `report_data` (the layout [`report_data_for`] gives), with its
    /// endorsements.
    fn produce(&mut self, report_data: &[u8]) -> Result<Produced, PlatformError>;
}

/// The statement attested once at start: it exercises the device, the endorsements and the
/// binding, and tells us our measurement. It binds no key, so its evidence is useless to
/// anyone (a verifier refuses a statement without a 32-byte key and a group config).
fn probe_statement() -> AttestationData {
    AttestationData {
        public_key: b"cloister platform probe".to_vec(),
        group_config: None,
        minimum_limits: None,
    }
}

/// The core's [`Env`] on a real TEE: randomness from the OS (inside a TEE, the OS and the
/// CPU's RDRAND under it are in the trusted base), evidence from a [`Producer`].
pub struct HardwareEnv {
    producer: Box<dyn Producer>,
    measurement: [u8; MEASUREMENT_BYTES],
}

impl std::fmt::Debug for HardwareEnv {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("HardwareEnv")
            .field("kind", &kind_name(self.producer.kind()))
            .field("measurement", &hex_string(&self.measurement))
            .finish()
    }
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl HardwareEnv {
    /// Probe `producer` once (a full attestation of a fixed statement) and learn this
    /// enclave's measurement from the report. Fails, saying why, when the device is absent,
    /// answers nonsense, does not bind what it is asked to, or its endorsements are missing.
    pub fn open(producer: Box<dyn Producer>) -> Result<Self, PlatformError> {
        let mut env = Self {
            producer,
            measurement: [0; MEASUREMENT_BYTES],
        };
        let (_, measurement) = env.attest_checked(&probe_statement(), None)?;
        env.measurement = measurement;
        Ok(env)
    }

    /// The evidence kind this environment produces.
    pub fn kind(&self) -> EvidenceKind {
        self.producer.kind()
    }

    /// Attest `data`; the report must bind it and, once known, show `expected` measurement.
    fn attest_checked(
        &mut self,
        data: &AttestationData,
        expected: Option<&[u8; MEASUREMENT_BYTES]>,
    ) -> Result<(Attestation, [u8; MEASUREMENT_BYTES]), PlatformError> {
        let kind = self.producer.kind();
        let name = kind_name(kind);
        let attestation_data = data.encode_to_vec();
        let report_data = report_data_for(kind, &attestation_data);
        let produced = self.producer.produce(&report_data)?;
        if produced.report.len() > EVIDENCE_BYTES_MAX {
            return Err(PlatformError(format!(
                "{name}: the platform's report is {} bytes, more than the {EVIDENCE_BYTES_MAX} \
                 evidence may have",
                produced.report.len()
            )));
        }
        if produced.endorsements.len() > ENDORSEMENTS_BYTES_MAX {
            return Err(PlatformError(format!(
                "{name}: the endorsements are {} bytes, more than the {ENDORSEMENTS_BYTES_MAX} \
                 allowed",
                produced.endorsements.len()
            )));
        }
        let inspected = inspect(kind, &produced.report).map_err(|error| {
            PlatformError(format!(
                "{name}: the platform's report is unusable: {error}"
            ))
        })?;
        if inspected.report_data != report_data {
            return Err(PlatformError(format!(
                "{name}: the platform's report does not bind the report data it was given \
                 (it holds {}, not {})",
                hex_string(&inspected.report_data),
                hex_string(&report_data)
            )));
        }
        if let Some(expected) = expected {
            if inspected.measurement != *expected {
                return Err(PlatformError(format!(
                    "{name}: the platform's report names measurement {}, not this enclave's {}",
                    hex_string(&inspected.measurement),
                    hex_string(expected)
                )));
            }
        }
        let attestation = Attestation {
            evidence: Evidence {
                kind: kind as i32,
                report: produced.report,
                attestation_data,
            },
            endorsements: produced.endorsements,
        };
        Ok((attestation, inspected.measurement))
    }
}

impl Env for HardwareEnv {
    fn fill_random(&mut self, buffer: &mut [u8]) {
        rand::rngs::OsRng.fill_bytes(buffer);
    }

    fn attest(
        &mut self,
        data: &AttestationData,
        _now_unix_secs: u64,
    ) -> Result<Attestation, PlatformError> {
        let expected = self.measurement;
        self.attest_checked(data, Some(&expected))
            .map(|(attestation, _)| attestation)
    }

    fn measurement(&self) -> [u8; MEASUREMENT_BYTES] {
        self.measurement
    }

    fn simulated(&self) -> bool {
        false
    }
}
