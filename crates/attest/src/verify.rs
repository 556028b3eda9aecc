//! The two steps of verification: the platform's evidence ([`verify_evidence`]: signatures,
//! chain, TCB, debug, measurement), then the binding to the statement ([`verify`]).
//!
//! ```text
//!  Evidence{kind, report, attestation_data}, endorsements
//!    └─ verify_evidence(kind, report, endorsements, policy, now) ──▶ Claims
//!         ├─ sim::claims | dcap::claims | sev_snp::claims | nitro::claims  (platform proof)
//!         └─ Policy::check                                                (debug, TCB, ...)
//!    └─ report data == layout(kind, SHA-256(attestation_data)) ──▶ VerifiedAttestation
//! ```

use cloister_proto::attest::{AttestationData, Evidence, EvidenceKind, GroupConfig};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::claims::{Claims, kind_name};
use crate::{
    AttestError, ENDORSEMENTS_BYTES_MAX, EVIDENCE_BYTES_MAX, MEASUREMENT_BYTES, Policy, sim,
};

pub(crate) mod dcap;
pub(crate) mod nitro;
pub(crate) mod sev_snp;
mod x509;

/// The hash that binds `attestation_data`: SHA-256 over its exact serialized bytes.
pub fn report_data(attestation_data: &[u8]) -> [u8; 32] {
    Sha256::digest(attestation_data).into()
}

/// The report data a platform of `kind` must sign for `attestation_data`:
/// SGX, TDX and SEV-SNP sign 64 bytes, the hash then 32 zero bytes; Nitro's `user_data` and
/// the sim report hold the 32-byte hash alone.
pub fn report_data_for(kind: EvidenceKind, attestation_data: &[u8]) -> Vec<u8> {
    let mut bound = report_data(attestation_data).to_vec();
    if matches!(
        kind,
        EvidenceKind::SgxDcap | EvidenceKind::Tdx | EvidenceKind::SevSnp
    ) {
        bound.resize(64, 0);
    }
    bound
}

/// Evidence that passed [`verify`]. Only `verify` can make one (a proof value).
#[derive(Debug, Clone)]
pub struct VerifiedAttestation {
    claims: Claims,
    timestamp_unix_secs: u64,
    data: AttestationData,
    public_key: [u8; 32],
}

impl VerifiedAttestation {
    /// Which backend produced the evidence.
    pub fn kind(&self) -> EvidenceKind {
        self.claims.kind
    }
    /// The enclave's measurement.
    pub fn measurement(&self) -> &[u8; MEASUREMENT_BYTES] {
        &self.claims.measurement
    }
    /// When the evidence was produced (unix seconds) for platforms that stamp it (Nitro,
    /// sim); for the others (SGX, TDX, SEV-SNP), the time it was verified at.
    pub fn timestamp_unix_secs(&self) -> u64 {
        self.timestamp_unix_secs
    }
    /// The attested X25519 static key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }
    /// The attested group configuration.
    pub fn group_config(&self) -> &GroupConfig {
        // verify() refuses statements without one, so this is always present.
        self.data
            .group_config
            .as_ref()
            .unwrap_or(&DEFAULT_GROUP_CONFIG)
    }
    /// The full attested statement.
    pub fn attestation_data(&self) -> &AttestationData {
        &self.data
    }
    /// Everything the platform's evidence said.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }
    /// True when the evidence came from the simulated (insecure) backend.
    pub fn simulated(&self) -> bool {
        self.claims.simulated()
    }
}

static DEFAULT_GROUP_CONFIG: GroupConfig = GroupConfig {
    group_id: 0,
    simulated: true,
    min_voting_replicas: 0,
    max_voting_replicas: 0,
    election_ticks: 0,
    heartbeat_ticks: 0,
    log_bytes_max: 0,
    attestation_timeout_secs: 0,
    client_pq: false,
    db_version: 0,
    voting_timeout_secs: 0,
    membership_timeout_secs: 0,
};

/// Verify a platform's raw evidence of `kind` with its `endorsements` against `policy` at
/// `now_unix_secs`: the platform signature and its chain to a trusted root, the validity
/// windows, then the policy (debug refused, TCB, measurement, simulated, age). Does not
/// check any binding: see [`verify`].
pub fn verify_evidence(
    kind: EvidenceKind,
    report: &[u8],
    endorsements: &[u8],
    policy: &Policy,
    now_unix_secs: u64,
) -> Result<Claims, AttestError> {
    if report.len() > EVIDENCE_BYTES_MAX {
        return Err(AttestError::EvidenceTooLarge(report.len()));
    }
    if endorsements.len() > ENDORSEMENTS_BYTES_MAX {
        return Err(AttestError::EndorsementsTooLarge(endorsements.len()));
    }
    // Refuse before any parsing: a strict verifier has nothing to learn from a sim quote.
    if kind == EvidenceKind::Sim && !policy.allow_simulated {
        return Err(AttestError::SimulatedNotAllowed);
    }
    let roots = &policy.roots;
    let claims = match kind {
        EvidenceKind::Sim => sim::claims(report, endorsements)?,
        EvidenceKind::SgxDcap | EvidenceKind::Tdx => {
            dcap::claims(kind, report, endorsements, roots, now_unix_secs)?
        }
        EvidenceKind::SevSnp => sev_snp::claims(report, endorsements, roots, now_unix_secs)?,
        EvidenceKind::Nitro => nitro::claims(report, endorsements, roots, now_unix_secs)?,
        EvidenceKind::Unspecified => {
            return Err(AttestError::UnsupportedKind(kind_name(kind).to_owned()));
        }
    };
    policy.check(&claims, now_unix_secs)?;
    Ok(claims)
}

/// Verify serialized [`Evidence`] against `policy` at `now_unix_secs`.
///
/// Checks, in order: sizes, envelope, the platform's evidence ([`verify_evidence`]), the
/// report-data binding, and the statement's shape. A simulated backend's evidence must also
/// say `simulated` in its group config, so a simulated enclave cannot pass as a real group.
pub fn verify(
    evidence: &[u8],
    endorsements: &[u8],
    policy: &Policy,
    now_unix_secs: u64,
) -> Result<VerifiedAttestation, AttestError> {
    if evidence.len() > EVIDENCE_BYTES_MAX {
        return Err(AttestError::EvidenceTooLarge(evidence.len()));
    }
    if endorsements.len() > ENDORSEMENTS_BYTES_MAX {
        return Err(AttestError::EndorsementsTooLarge(endorsements.len()));
    }
    let envelope = Evidence::decode(evidence).map_err(|_| AttestError::Malformed("evidence"))?;
    let kind = EvidenceKind::try_from(envelope.kind)
        .map_err(|_| AttestError::UnsupportedKind(format!("#{}", envelope.kind)))?;
    let claims = verify_evidence(kind, &envelope.report, endorsements, policy, now_unix_secs)?;
    check_binding(&claims, &envelope.attestation_data)?;
    let data = AttestationData::decode(envelope.attestation_data.as_slice())
        .map_err(|_| AttestError::Malformed("attestation data"))?;
    let public_key: [u8; 32] = data
        .public_key
        .as_slice()
        .try_into()
        .map_err(|_| AttestError::InvalidStatement("public key must be 32 bytes"))?;
    let group = data
        .group_config
        .as_ref()
        .ok_or(AttestError::InvalidStatement("group config missing"))?;
    if kind == EvidenceKind::Sim && !group.simulated {
        return Err(AttestError::InvalidStatement(
            "simulated evidence for a group that does not say simulated",
        ));
    }
    Ok(VerifiedAttestation {
        timestamp_unix_secs: claims.issued_at_unix_secs.unwrap_or(now_unix_secs),
        claims,
        data,
        public_key,
    })
}

/// The binding: the platform signed exactly the report data `attestation_data` calls for.
pub fn check_binding(claims: &Claims, attestation_data: &[u8]) -> Result<(), AttestError> {
    // Constant time is not needed: report data is public.
    if claims.report_data != report_data_for(claims.kind, attestation_data) {
        return Err(AttestError::ReportDataMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
