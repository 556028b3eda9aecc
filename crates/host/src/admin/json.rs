//! The admin API's JSON shapes. Bytes are lowercase hex. These types are public so the CLI
//! can parse what the API returns.
// Field names mirror the messages in proto/enclave.proto and proto/attest.proto, whose
// comments document them; repeating each here would only drift.
#![allow(missing_docs)]

use std::collections::BTreeMap;

use cloister_proto::attest::GroupConfig;
use cloister_proto::enclave::{
    CreateNewRaftGroupRequest, EnclaveLogLevel, EnclaveStatus, HashesReply, MetricsReply,
    RaftMember,
};
use serde::{Deserialize, Serialize};

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusJson {
    pub peer_id: String,
    pub raft_id: u64,
    pub role: String,
    pub term: u64,
    pub leader_raft_id: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    /// `null` until the enclave belongs to a group.
    pub group_config: Option<GroupConfigJson>,
    pub members: Vec<MemberJson>,
    pub backups: u64,
    pub client_sessions: u64,
    pub log_bytes: u64,
    pub timestamp_unix_secs: u64,
    /// The enclave id clients put in their URL.
    pub measurement: String,
    pub simulated: bool,
    pub attestation_timestamp_unix_secs: u64,
    pub pending_requests: u64,
    /// Connections to other enclaves.
    pub peers: Vec<PeerJson>,
    /// The group's minimums: limit name → big-endian value in hex (empty when none).
    #[serde(default)]
    pub minimum_limits: std::collections::BTreeMap<String, String>,
}

/// One peer connection inside [`StatusJson`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerJson {
    pub peer_id: String,
    /// `handshaking` or `connected`.
    pub state: String,
    pub attested_at_unix_secs: u64,
}

/// The group configuration inside [`StatusJson`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupConfigJson {
    pub group_id: u64,
    pub simulated: bool,
    pub min_voting_replicas: u32,
    pub max_voting_replicas: u32,
    pub election_ticks: u32,
    pub heartbeat_ticks: u32,
    pub log_bytes_max: u64,
    pub attestation_timeout_secs: u32,
    pub client_pq: bool,
    pub db_version: u32,
    pub voting_timeout_secs: u32,
    pub membership_timeout_secs: u32,
}

/// One Raft member inside [`StatusJson`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberJson {
    pub peer_id: String,
    pub raft_id: u64,
    pub voting: bool,
    pub match_index: u64,
}

impl From<&EnclaveStatus> for StatusJson {
    fn from(status: &EnclaveStatus) -> Self {
        StatusJson {
            peer_id: hex::encode(&status.peer_id),
            raft_id: status.raft_id,
            role: status.role.clone(),
            term: status.term,
            leader_raft_id: status.leader_raft_id,
            commit_index: status.commit_index,
            applied_index: status.applied_index,
            group_config: status.group_config.as_ref().map(GroupConfigJson::from),
            members: status.members.iter().map(MemberJson::from).collect(),
            backups: status.backups,
            client_sessions: status.client_sessions,
            log_bytes: status.log_bytes,
            timestamp_unix_secs: status.timestamp_unix_secs,
            measurement: hex::encode(&status.measurement),
            simulated: status.simulated,
            attestation_timestamp_unix_secs: status.attestation_timestamp_unix_secs,
            pending_requests: status.pending_requests,
            peers: status
                .peers
                .iter()
                .map(|peer| PeerJson {
                    peer_id: hex::encode(&peer.peer_id),
                    state: peer.state.clone(),
                    attested_at_unix_secs: peer.attested_at_unix_secs,
                })
                .collect(),
            minimum_limits: status
                .minimum_limits
                .iter()
                .flat_map(|minimums| &minimums.limits)
                .map(|(name, value)| (name.clone(), hex::encode(value)))
                .collect(),
        }
    }
}

impl From<&GroupConfig> for GroupConfigJson {
    fn from(config: &GroupConfig) -> Self {
        GroupConfigJson {
            group_id: config.group_id,
            simulated: config.simulated,
            min_voting_replicas: config.min_voting_replicas,
            max_voting_replicas: config.max_voting_replicas,
            election_ticks: config.election_ticks,
            heartbeat_ticks: config.heartbeat_ticks,
            log_bytes_max: config.log_bytes_max,
            attestation_timeout_secs: config.attestation_timeout_secs,
            client_pq: config.client_pq,
            db_version: config.db_version,
            voting_timeout_secs: config.voting_timeout_secs,
            membership_timeout_secs: config.membership_timeout_secs,
        }
    }
}

impl From<&RaftMember> for MemberJson {
    fn from(member: &RaftMember) -> Self {
        MemberJson {
            peer_id: hex::encode(&member.peer_id),
            raft_id: member.raft_id,
            voting: member.voting,
            match_index: member.match_index,
        }
    }
}

/// `GET /v1/hashes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashesJson {
    pub db_hash: String,
    pub commit_index: u64,
    pub applied_index: u64,
}

impl From<&HashesReply> for HashesJson {
    fn from(hashes: &HashesReply) -> Self {
        HashesJson {
            db_hash: hex::encode(&hashes.db_hash),
            commit_index: hashes.commit_index,
            applied_index: hashes.applied_index,
        }
    }
}

/// `GET /v1/metrics/enclave`: name → value. A name repeated by the enclave keeps its last value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnclaveMetricsJson {
    pub counters: BTreeMap<String, u64>,
    pub gauges: BTreeMap<String, u64>,
}

impl From<&MetricsReply> for EnclaveMetricsJson {
    fn from(reply: &MetricsReply) -> Self {
        let map = |metrics: &[cloister_proto::enclave::Metric]| {
            metrics
                .iter()
                .map(|metric| (metric.name.clone(), metric.value))
                .collect()
        };
        EnclaveMetricsJson {
            counters: map(&reply.counters),
            gauges: map(&reply.gauges),
        }
    }
}

/// `POST /v1/create-group`. Every field is optional: a missing one takes the enclave's
/// default (1 to 5 voters, election 10 ticks, heartbeat 1 tick, 64 MiB log, 1-day
/// attestation). The enclave checks the bounds; out of range is 400 and nothing changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CreateGroupParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_voting_replicas: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_voting_replicas: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub election_ticks: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_ticks: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_bytes_max: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attestation_timeout_secs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voting_timeout_secs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub membership_timeout_secs: Option<u32>,
    pub client_pq: bool,
}

impl CreateGroupParams {
    /// Builds the enclave request. On the wire, 0 means "default", so an explicit 0 is
    /// refused here rather than silently read as "default".
    pub fn to_request(&self) -> Result<CreateNewRaftGroupRequest, String> {
        let fields = [
            (
                "min_voting_replicas",
                self.min_voting_replicas.map(u64::from),
            ),
            (
                "max_voting_replicas",
                self.max_voting_replicas.map(u64::from),
            ),
            ("election_ticks", self.election_ticks.map(u64::from)),
            ("heartbeat_ticks", self.heartbeat_ticks.map(u64::from)),
            ("log_bytes_max", self.log_bytes_max),
            (
                "attestation_timeout_secs",
                self.attestation_timeout_secs.map(u64::from),
            ),
            (
                "voting_timeout_secs",
                self.voting_timeout_secs.map(u64::from),
            ),
            (
                "membership_timeout_secs",
                self.membership_timeout_secs.map(u64::from),
            ),
        ];
        if let Some((name, _)) = fields.iter().find(|(_, value)| *value == Some(0)) {
            return Err(format!(
                "{name} must be at least 1 (omit it to use the default)"
            ));
        }
        Ok(CreateNewRaftGroupRequest {
            min_voting_replicas: self.min_voting_replicas.unwrap_or(0),
            max_voting_replicas: self.max_voting_replicas.unwrap_or(0),
            election_ticks: self.election_ticks.unwrap_or(0),
            heartbeat_ticks: self.heartbeat_ticks.unwrap_or(0),
            log_bytes_max: self.log_bytes_max.unwrap_or(0),
            attestation_timeout_secs: self.attestation_timeout_secs.unwrap_or(0),
            client_pq: self.client_pq,
            voting_timeout_secs: self.voting_timeout_secs.unwrap_or(0),
            membership_timeout_secs: self.membership_timeout_secs.unwrap_or(0),
        })
    }
}

/// `POST /v1/log-level` body and answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogLevelJson {
    /// One of none, fatal, error, warning, info, verbose, max (aliases: warn, debug, trace).
    pub level: String,
}

/// Parses a log level name.
pub fn parse_log_level(name: &str) -> Option<EnclaveLogLevel> {
    Some(match name {
        "none" => EnclaveLogLevel::None,
        "fatal" => EnclaveLogLevel::Fatal,
        "error" => EnclaveLogLevel::Error,
        "warning" | "warn" => EnclaveLogLevel::Warning,
        "info" => EnclaveLogLevel::Info,
        "verbose" | "debug" => EnclaveLogLevel::Verbose,
        "max" | "trace" => EnclaveLogLevel::Max,
        _ => return None,
    })
}

/// `POST /v1/delete-backup` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteBackupJson {
    /// 32 lowercase hex chars.
    pub backup_id: String,
}

/// `POST /v1/update-minimums` body: limit name → big-endian unsigned value in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateMinimumsJson {
    pub limits: std::collections::BTreeMap<String, String>,
}

/// Most limits in one update (the enclave's bound).
pub const MINIMUMS_MAX: usize = 32;
/// Longest limit name (the enclave's bound).
pub const MINIMUM_NAME_BYTES_MAX: usize = 64;
/// Longest limit value, in bytes (the enclave's bound).
pub const MINIMUM_VALUE_BYTES_MAX: usize = 32;

impl UpdateMinimumsJson {
    /// The limits as the enclave takes them; the error says what is wrong. The enclave
    /// checks again (and whether the update only raises limits).
    pub fn to_proto(&self) -> Result<cloister_proto::attest::MinimumLimits, String> {
        if self.limits.is_empty() || self.limits.len() > MINIMUMS_MAX {
            return Err(format!("give 1 to {MINIMUMS_MAX} limits"));
        }
        let mut limits = std::collections::BTreeMap::new();
        for (name, value) in &self.limits {
            let well_formed = !name.is_empty()
                && name.len() <= MINIMUM_NAME_BYTES_MAX
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
            if !well_formed {
                return Err(format!(
                    "limit name {:?} is not 1 to {MINIMUM_NAME_BYTES_MAX} of [a-z0-9._-]",
                    name.chars()
                        .take(MINIMUM_NAME_BYTES_MAX)
                        .collect::<String>()
                ));
            }
            let bytes = hex::decode(value)
                .ok()
                .filter(|bytes| (1..=MINIMUM_VALUE_BYTES_MAX).contains(&bytes.len()))
                .ok_or_else(|| {
                    format!(
                        "limit {name:?} must be 1 to {MINIMUM_VALUE_BYTES_MAX} bytes of hex                          (a big-endian unsigned integer)"
                    )
                })?;
            limits.insert(name.clone(), bytes);
        }
        Ok(cloister_proto::attest::MinimumLimits { limits })
    }
}

/// `GET /health/ready` answer (200 when ready, 503 otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyJson {
    pub ready: bool,
    /// Why not, when not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_raft_id: Option<u64>,
}
