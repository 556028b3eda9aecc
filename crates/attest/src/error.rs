//! Why evidence was refused: one variant per failed check.
//!
//! Grouped by what failed: the bytes (size, framing, parsing), the platform's proof
//! (signatures, certificate chain, validity windows), the policy (debug, TCB, measurement,
//! simulated, age), and the binding to the statement.

use thiserror::Error;

use crate::claims::TcbStatus;

/// Why evidence was refused. Each variant names exactly one failed check.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AttestError {
    // --- The bytes ---
    /// The evidence is larger than [`crate::EVIDENCE_BYTES_MAX`].
    #[error("evidence is {0} bytes, more than the {max} allowed", max = crate::EVIDENCE_BYTES_MAX)]
    EvidenceTooLarge(usize),
    /// The endorsements are larger than [`crate::ENDORSEMENTS_BYTES_MAX`].
    #[error("endorsements are {0} bytes, more than the {max} allowed", max = crate::ENDORSEMENTS_BYTES_MAX)]
    EndorsementsTooLarge(usize),
    /// The structure ends before its own framing says it does.
    #[error("truncated {what}: {bytes} bytes, its framing needs {needed}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// How many bytes there were.
        bytes: usize,
        /// How many its framing asks for (at least).
        needed: usize,
    },
    /// Bytes follow the end of the structure: nothing signed them.
    #[error("oversized {what}: {extra} unsigned bytes follow it")]
    TrailingBytes {
        /// What was being read.
        what: &'static str,
        /// How many bytes too many.
        extra: usize,
    },
    /// The bytes do not parse as the named structure.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The bytes do not parse as the named structure, with the parser's reason.
    #[error("malformed {what}: {reason}")]
    Unparsable {
        /// What was being read.
        what: &'static str,
        /// The parser's reason.
        reason: String,
    },
    /// No verifier for this kind in this build.
    #[error("evidence kind {0} is not supported by this build")]
    UnsupportedKind(String),
    /// The envelope names one kind and the report is of another.
    #[error("the evidence says {claimed} but holds {found}")]
    KindMismatch {
        /// The kind the envelope (or the caller) names.
        claimed: &'static str,
        /// What the report turned out to be.
        found: &'static str,
    },
    /// The kind needs endorsements and none came.
    #[error("{0} evidence needs endorsements ({1}); none were given")]
    MissingEndorsements(&'static str, &'static str),
    /// The kind takes no endorsements, yet some came.
    #[error("{0} evidence takes no endorsements, yet {1} bytes were given")]
    UnexpectedEndorsements(&'static str, usize),

    // --- The platform's proof ---
    /// A signature does not verify.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// The certificate chain does not lead to a trusted root, or a certificate is revoked.
    #[error("certificate chain refused: {0}")]
    CertificateChain(String),
    /// A certificate, CRL or piece of collateral is not valid at the verification time.
    #[error("not valid at {now}: {reason}")]
    OutsideValidityWindow {
        /// The verification time (unix seconds).
        now: u64,
        /// What is expired or not yet valid.
        reason: String,
    },
    /// The platform's TCB is older than every level the collateral lists.
    #[error("no matching TCB level: {0}")]
    NoMatchingTcbLevel(String),
    /// The platform refused the evidence for a reason without a variant of its own.
    #[error("platform verification failed: {0}")]
    PlatformRefused(String),

    // --- The policy ---
    /// The enclave runs in debug mode: the host can read its memory. Never accepted.
    #[error("debug enclave refused: the host can read a debug enclave's memory")]
    DebugEnclave,
    /// The platform's TCB is revoked. Never accepted.
    #[error("TCB status Revoked: the platform's keys are compromised")]
    TcbRevoked,
    /// The TCB status, or one of its advisories, is not one the policy allows.
    #[error(
        "TCB status {status} with advisories [{advisories}] refused: the policy allows [{allowed}]{not_allowed}",
        advisories = advisory_ids.join(", "),
        allowed = allowed_statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
        not_allowed = if advisories_not_allowed.is_empty() {
            String::new()
        } else {
            format!(" and not the advisories [{}]", advisories_not_allowed.join(", "))
        },
    )]
    TcbNotAllowed {
        /// The platform's status.
        status: TcbStatus,
        /// Every advisory the platform's status carries.
        advisory_ids: Vec<String>,
        /// The statuses the policy allows.
        allowed_statuses: Vec<TcbStatus>,
        /// The advisories not on the policy's allowlist.
        advisories_not_allowed: Vec<String>,
    },
    /// An SEV-SNP TCB component is below the policy's minimum.
    #[error("SEV-SNP {component} SVN {reported} is below the policy's minimum {minimum}")]
    TcbBelowMinimum {
        /// Which firmware part.
        component: &'static str,
        /// The reported SVN.
        reported: u8,
        /// The policy's minimum.
        minimum: u8,
    },
    /// Simulated evidence offered to a policy that does not allow it.
    #[error("simulated evidence refused: the policy does not allow simulated enclaves")]
    SimulatedNotAllowed,
    /// The measurement is not one the policy accepts.
    #[error("measurement {0} is not accepted by the policy")]
    MeasurementNotAccepted(String),
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

    // --- The binding ---
    /// The report data is not SHA-256 of the attestation data (in the kind's layout).
    #[error("report data does not match SHA-256 of the attestation data")]
    ReportDataMismatch,
    /// The attested statement lacks a required field or has a wrong size.
    #[error("invalid attestation data: {0}")]
    InvalidStatement(&'static str),
}
