use thiserror::Error;

/// Why evidence was refused. Each variant names exactly one failed check.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AttestError {
    /// The evidence is larger than [`crate::EVIDENCE_BYTES_MAX`].
    #[error("evidence is {0} bytes, more than the {max} allowed", max = crate::EVIDENCE_BYTES_MAX)]
    EvidenceTooLarge(usize),
    /// The endorsements are larger than [`crate::ENDORSEMENTS_BYTES_MAX`].
    #[error("endorsements are {0} bytes, more than the {max} allowed", max = crate::ENDORSEMENTS_BYTES_MAX)]
    EndorsementsTooLarge(usize),
    /// The bytes do not parse as the named structure.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// No verifier for this kind in this build.
    #[error("evidence kind {0} is not supported by this build")]
    UnsupportedKind(String),
    /// Simulated evidence offered to a policy that does not allow it.
    #[error("simulated evidence refused: the policy does not allow simulated enclaves")]
    SimulatedNotAllowed,
    /// The platform signature does not verify.
    #[error("the platform signature over the report does not verify")]
    BadSignature,
    /// The measurement is not one the policy accepts.
    #[error("measurement {0} is not accepted by the policy")]
    MeasurementNotAccepted(String),
    /// The report data is not SHA-256 of the attestation data.
    #[error("report data does not match SHA-256 of the attestation data")]
    ReportDataMismatch,
    /// The evidence is older than the policy allows.
    #[error("evidence from {issued} is older than {age_max_secs}s at {now}")]
    Expired {
        /// When the evidence was produced (unix seconds).
        issued: u64,
        /// The verification time (unix seconds).
        now: u64,
        /// The policy's bound.
        age_max_secs: u64,
    },
    /// The evidence claims to come from the future.
    #[error("evidence from {issued} is in the future at {now}")]
    FromTheFuture {
        /// When the evidence claims to be produced (unix seconds).
        issued: u64,
        /// The verification time (unix seconds).
        now: u64,
    },
    /// The attested statement lacks a required field or has a wrong size.
    #[error("invalid attestation data: {0}")]
    InvalidStatement(&'static str),
}
