//! Mutual attestation between peers: what a peer's evidence must show before we talk to it.
//!
//! ```text
//!  evidence, endorsements ──verify(policy: own measurement only,
//!                                  simulated iff we are, age <= attestation timeout)──▶
//!  VerifiedAttestation ──attested key == peer id ──same platform ──same group or no group
//!  ──attested values meet the group's minimums──▶
//!  PeerAttestation (proof value: only this module makes one)
//! ```

use cloister_attest::{Policy, VerifiedAttestation};
use cloister_proto::attest::GroupConfig;

use super::{PeerContext, PeerId, short};
use crate::Error;

/// The group id a replica attests before it belongs to a group (real groups never draw 0).
pub(crate) const NO_GROUP_ID: u64 = 0;

/// The group config a replica outside any group binds into its peer evidence:
/// `cloister_attest::verify` requires one, and simulated evidence must say `simulated`.
pub(crate) fn ungrouped_config(simulated: bool) -> GroupConfig {
    GroupConfig {
        group_id: NO_GROUP_ID,
        simulated,
        ..GroupConfig::default()
    }
}

/// A peer's attestation that passed every check here. Only this module can make one.
#[derive(Debug, Clone)]
pub(crate) struct PeerAttestation {
    verified: VerifiedAttestation,
}

impl PeerAttestation {
    /// The peer's id: its attested static key.
    pub(crate) fn peer(&self) -> &PeerId {
        self.verified.public_key()
    }

    /// The peer's group, or `None` when it has not joined one yet.
    pub(crate) fn group_config(&self) -> Option<&GroupConfig> {
        joined(Some(self.verified.group_config()))
    }

    /// The security versions the peer's platform attests (what minimums are checked on).
    pub(crate) fn attested_values(&self) -> &std::collections::BTreeMap<String, Vec<u8>> {
        self.verified.claims().attested_values()
    }

    /// When the peer produced the evidence, by its own clock (unix seconds).
    pub(crate) fn attested_at_unix_secs(&self) -> u64 {
        self.verified.timestamp_unix_secs()
    }
}

/// How old a peer's evidence may be: the group's timeout, or the verifier's default (24 h)
/// before this replica has a group.
pub(super) fn attestation_timeout_secs(ctx: &PeerContext<'_>) -> u64 {
    match joined(ctx.group_config.as_ref()) {
        Some(group) if group.attestation_timeout_secs != 0 => {
            u64::from(group.attestation_timeout_secs)
        }
        _ => Policy::EVIDENCE_AGE_MAX_SECS,
    }
}

/// Verify evidence offered in a Syn or SynAck by the peer we know as `peer`.
pub(super) fn verify_handshake(
    evidence: &[u8],
    endorsements: &[u8],
    peer: &PeerId,
    ctx: &PeerContext<'_>,
) -> Result<PeerAttestation, Error> {
    verify_bound_to(evidence, endorsements, peer, ctx, "handshake", |bound| {
        format!(
            "the evidence binds key {}, not the peer's id",
            hex::encode(bound)
        )
    })
}

/// Verify an `AttestationUpdate` from a connected peer: the same checks, and the key must
/// not change (a peer's id is its key for the life of the connection).
pub(super) fn verify_update(
    evidence: &[u8],
    endorsements: &[u8],
    peer: &PeerId,
    ctx: &PeerContext<'_>,
) -> Result<PeerAttestation, Error> {
    verify_bound_to(
        evidence,
        endorsements,
        peer,
        ctx,
        "attestation update",
        |bound| {
            format!(
                "the key changed from {} to {}; a peer's key may not change",
                hex::encode(peer),
                hex::encode(bound)
            )
        },
    )
}

/// Verify `evidence` and require that it binds `peer`'s key; `mismatch` words the refusal.
fn verify_bound_to(
    evidence: &[u8],
    endorsements: &[u8],
    peer: &PeerId,
    ctx: &PeerContext<'_>,
    what: &str,
    mismatch: impl FnOnce(&PeerId) -> String,
) -> Result<PeerAttestation, Error> {
    let attestation = verify_evidence(evidence, endorsements, ctx)
        .map_err(|reason| refused(peer, what, &reason))?;
    if attestation.peer() != peer {
        return Err(refused(peer, what, &mismatch(attestation.peer())));
    }
    Ok(attestation)
}

fn refused(peer: &PeerId, what: &str, reason: &str) -> Error {
    Error::InvalidArgument(format!("peer {} {what} refused: {reason}", short(peer)))
}

fn verify_evidence(
    evidence: &[u8],
    endorsements: &[u8],
    ctx: &PeerContext<'_>,
) -> Result<PeerAttestation, String> {
    let measurements = vec![ctx.measurement];
    let policy = if ctx.simulated {
        Policy::insecure_allow_simulated(measurements)
    } else {
        Policy::strict(measurements)
    }
    .with_evidence_age_max_secs(attestation_timeout_secs(ctx));
    let verified = cloister_attest::verify(evidence, endorsements, &policy, ctx.now_unix_secs)
        .map_err(|error| error.to_string())?;
    // The policy already keeps simulated peers from a real enclave; this also keeps real
    // peers from a simulated one, so the two kinds never share a group.
    if verified.simulated() != ctx.simulated {
        return Err(format!(
            "the peer is {}simulated and we are {}simulated",
            if verified.simulated() { "" } else { "not " },
            if ctx.simulated { "" } else { "not " },
        ));
    }
    let attestation = PeerAttestation { verified };
    // Only the group config must be equal: the minimums a peer binds may lag or lead ours
    // while an update commits, so its own are not compared; its attested values must meet
    // ours.
    check_group(
        joined(ctx.group_config.as_ref()),
        attestation.group_config(),
    )?;
    ctx.minimums
        .check(attestation.attested_values())
        .map_err(|reason| format!("it does not meet the group's minimums: {reason}"))?;
    Ok(attestation)
}

/// Two members of groups must be in the same group with the same config. A replica outside
/// any group is accepted either way: the caller decides what it may do.
fn check_group(own: Option<&GroupConfig>, theirs: Option<&GroupConfig>) -> Result<(), String> {
    match (own, theirs) {
        (Some(own), Some(theirs)) if own != theirs => Err(if own.group_id == theirs.group_id {
            format!(
                "different group config: group {:016x} with different parameters",
                own.group_id
            )
        } else {
            format!(
                "different group config: ours is group {:016x}, the peer's is group {:016x}",
                own.group_id, theirs.group_id
            )
        }),
        _ => Ok(()),
    }
}

/// `group`, unless it is the placeholder of a replica outside any group.
fn joined(group: Option<&GroupConfig>) -> Option<&GroupConfig> {
    group.filter(|group| group.group_id != NO_GROUP_ID)
}
