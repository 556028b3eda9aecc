use cloister_proto::attest::{AttestationData, Evidence, EvidenceKind, GroupConfig};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::{
    AttestError, ENDORSEMENTS_BYTES_MAX, EVIDENCE_BYTES_MAX, MEASUREMENT_BYTES, Policy, sim,
};

/// The report data that binds `attestation_data`: SHA-256 over its exact serialized bytes.
pub fn report_data(attestation_data: &[u8]) -> [u8; 32] {
    Sha256::digest(attestation_data).into()
}

/// Evidence that passed [`verify`]. Only `verify` can make one (a proof value).
#[derive(Debug, Clone)]
pub struct VerifiedAttestation {
    kind: EvidenceKind,
    measurement: [u8; MEASUREMENT_BYTES],
    timestamp_unix_secs: u64,
    data: AttestationData,
    public_key: [u8; 32],
}

impl VerifiedAttestation {
    /// Which backend produced the evidence.
    pub fn kind(&self) -> EvidenceKind {
        self.kind
    }
    /// The enclave's measurement.
    pub fn measurement(&self) -> &[u8; MEASUREMENT_BYTES] {
        &self.measurement
    }
    /// When the evidence was produced (unix seconds, by the enclave's clock).
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
    /// True when the evidence came from the simulated (insecure) backend.
    pub fn simulated(&self) -> bool {
        self.kind == EvidenceKind::Sim
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

/// Verify serialized [`Evidence`] against `policy` at `now_unix_secs`.
///
/// Checks, in order: sizes, envelope, backend signature, measurement, evidence age, the
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
    let claims = match kind {
        EvidenceKind::Sim => {
            if !policy.allow_simulated {
                return Err(AttestError::SimulatedNotAllowed);
            }
            sim::verify_report(&envelope.report)?
        }
        other => return Err(AttestError::UnsupportedKind(other.as_str_name().to_owned())),
    };
    if !policy.measurements.contains(&claims.measurement) {
        return Err(AttestError::MeasurementNotAccepted(hex::encode(
            claims.measurement,
        )));
    }
    let issued = claims.timestamp_unix_secs;
    if issued > now_unix_secs.saturating_add(policy.clock_skew_max_secs) {
        return Err(AttestError::FromTheFuture {
            issued,
            now: now_unix_secs,
        });
    }
    if now_unix_secs.saturating_sub(issued) > policy.evidence_age_max_secs {
        return Err(AttestError::Expired {
            issued,
            now: now_unix_secs,
            age_max_secs: policy.evidence_age_max_secs,
        });
    }
    // Constant time is not needed: report data is public.
    if report_data(&envelope.attestation_data) != claims.report_data {
        return Err(AttestError::ReportDataMismatch);
    }
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
        kind,
        measurement: claims.measurement,
        timestamp_unix_secs: issued,
        data,
        public_key,
    })
}

#[cfg(test)]
mod tests;
