//! Host requests: group creation, status, hashes, metrics, logging, attestation refresh
//! (minimums: [`crate::minimums_calls`]).

use cloister_proto::attest::GroupConfig;
use cloister_proto::enclave::{
    CreateNewRaftGroupRequest, Done, EnclaveLogLevel, EnclaveStatus, HashesReply,
    HostToEnclaveRequest, RaftMember, host_to_enclave_request::Inner as Call,
    host_to_enclave_response::Inner as Answer,
};
use prost::Message;

use crate::Error;
use cloister_proto::e2e::transaction_request::Inner as Ask;
use raft::eraftpb::ConfChangeType;

use crate::client::ClientKey;
use crate::core::{Enclave, Group, Origin};
use crate::db::BACKUP_ID_BYTES;
use crate::membership::{Members, PeerId};
use crate::metrics::{Gauges, to_reply};
use crate::minimums::Minimums;
use crate::peers::ConnectionState;
use crate::replication::Replication;
use crate::transactions::Purpose;
use cloister_proto::enclave::PeerStatus;

/// Most voting replicas a group may have.
pub const VOTING_REPLICAS_MAX: u32 = 15;
/// Default Raft heartbeat, in timer ticks.
pub const HEARTBEAT_TICKS_DEFAULT: u32 = 1;
/// Default Raft election timeout, in timer ticks.
pub const ELECTION_TICKS_DEFAULT: u32 = 10;
/// Default cap on log bytes held in memory.
pub const LOG_BYTES_MAX_DEFAULT: u64 = 64 * 1024 * 1024;
/// Smallest log cap a group may choose.
pub const LOG_BYTES_MAX_MIN: u64 = 64 * 1024;
/// Largest log cap a group may choose.
pub const LOG_BYTES_MAX_CEILING: u64 = 4 * 1024 * 1024 * 1024;
/// Default time after which a peer's attestation is stale.
pub const ATTESTATION_TIMEOUT_SECS_DEFAULT: u32 = 24 * 60 * 60;
/// Default silence after which the leader demotes a voter.
pub const VOTING_TIMEOUT_SECS_DEFAULT: u32 = 60;
/// Default silence after which the leader removes a member.
pub const MEMBERSHIP_TIMEOUT_SECS_DEFAULT: u32 = 600;
/// The SVR2 database version this core serves.
pub const DB_VERSION: u32 = 2;

impl Enclave {
    /// Run one host request. `Ok(None)` means the answer comes when a log entry commits.
    pub(crate) fn dispatch_host_request(
        &mut self,
        request: HostToEnclaveRequest,
    ) -> Result<Option<Answer>, Error> {
        let request_id = request.request_id;
        let call = request
            .inner
            .ok_or_else(|| Error::InvalidArgument("host request has no call".into()))?;
        match call {
            Call::NewClient(new_client) => self.on_new_client(new_client).map(Some),
            Call::ExistingClient(existing) => self.on_existing_client(request_id, existing),
            Call::CloseClient(close) => self.on_close_client(close.client_id).map(Some),
            Call::GetEnclaveStatus(_) => Ok(Some(Answer::Status(self.status()))),
            Call::CreateNewRaftGroup(create) => self.on_create_new_raft_group(create).map(Some),
            Call::DeleteBackup(delete) => self.on_host_delete(request_id, delete.backup_id),
            Call::Hashes(_) => Ok(Some(Answer::Hashes(self.hashes()))),
            Call::Metrics(_) => Ok(Some(Answer::Metrics(to_reply(
                &self.counters,
                &self.gauges(),
            )))),
            Call::SetLogLevel(set) => {
                let mut config = self.config_proto();
                config.log_level = set.log_level;
                self.reconfigure(config).map(|()| Some(done()))
            }
            Call::Reconfigure(config) => self.reconfigure(config).map(|()| Some(done())),
            Call::RefreshAttestation(_) => self.on_refresh_attestation().map(Some),
            Call::JoinRaft(join) => self.on_join_raft(request_id, &join.peer_id).map(|()| None),
            Call::PingPeer(ping) => self.on_ping_peer(request_id, &ping.peer_id).map(|()| None),
            Call::RequestVoting(_) => self.on_request_membership(request_id, Ask::RaftVoting(true)),
            Call::RequestRemoval(_) => {
                self.on_request_membership(request_id, Ask::RaftRemoval(true))
            }
            Call::RelinquishLeadership(_) => self.on_relinquish_leadership().map(Some),
            Call::UpdateMinimums(update) => {
                self.on_update_minimums(request_id, &update.limits.unwrap_or_default())
            }
        }
    }

    fn config_proto(&self) -> cloister_proto::enclave::EnclaveConfig {
        cloister_proto::enclave::EnclaveConfig {
            log_level: self.config.log_level as i32,
            client_sessions_max: self.config.client_sessions_max,
            pending_requests_max: self.config.pending_requests_max,
        }
    }

    fn on_create_new_raft_group(
        &mut self,
        create: CreateNewRaftGroupRequest,
    ) -> Result<Answer, Error> {
        if self.group.is_some() {
            return Err(Error::FailedPrecondition(
                "this replica already belongs to a group".into(),
            ));
        }
        let mut config = group_config(&create)?;
        config.simulated = self.env.simulated();
        let mut group_id = [0u8; 8];
        while u64::from_be_bytes(group_id) == 0 {
            self.env.fill_random(&mut group_id);
        }
        config.group_id = u64::from_be_bytes(group_id);
        if self.joining {
            return Err(Error::FailedPrecondition("a join is under way".into()));
        }
        let replication = Replication::create(self.raft_id, &config)?;
        let client_key = ClientKey::generate(
            self.env.as_mut(),
            &config,
            &Minimums::NONE,
            self.now_unix_secs,
        )
        .map_err(|error| self.platform_failed("client", error))?;
        self.log(
            EnclaveLogLevel::Info,
            format!("created group {:016x} as its only voter", config.group_id),
        );
        let members = Members::founding(self.peer_id);
        self.group = Some(Group {
            config,
            replication,
            client_key,
            members,
            minimums: Minimums::NONE,
        });
        self.refresh_peer_attestation();
        Ok(Answer::Status(self.status()))
    }

    fn on_refresh_attestation(&mut self) -> Result<Answer, Error> {
        let now = self.now_unix_secs;
        let Some(group) = &mut self.group else {
            // No client key yet; the peer evidence a joining replica shows still ages.
            self.counters.attestation_refreshes += 1;
            self.refresh_peer_attestation();
            return Ok(done());
        };
        // Sessions already handshaking keep the key they started with; new ones get this one.
        // When the platform fails, the current key and evidence stay until they expire.
        match ClientKey::generate(self.env.as_mut(), &group.config, &group.minimums, now) {
            Ok(key) => group.client_key = key,
            Err(error) => {
                let error = self.platform_failed("client", error);
                self.refresh_peer_attestation();
                return Err(error);
            }
        }
        self.counters.attestation_refreshes += 1;
        self.refresh_peer_attestation();
        self.log(EnclaveLogLevel::Info, "client static key rotated".into());
        Ok(done())
    }

    fn on_host_delete(
        &mut self,
        request_id: u64,
        backup_id: Vec<u8>,
    ) -> Result<Option<Answer>, Error> {
        if backup_id.len() != BACKUP_ID_BYTES {
            return Err(Error::InvalidArgument(format!(
                "backup id is {} bytes; it must be {BACKUP_ID_BYTES}",
                backup_id.len()
            )));
        }
        let entry = cloister_proto::log::LogEntry {
            inner: Some(cloister_proto::log::log_entry::Inner::HostDelete(
                cloister_proto::log::HostDelete { backup_id },
            )),
            forwarded_by: None,
        };
        self.propose(entry.encode_to_vec(), Origin::Host { request_id })?;
        self.counters.host_deletes += 1;
        Ok(None)
    }

    pub(crate) fn gauges(&self) -> Gauges {
        let replication = self.group.as_ref().map(|group| &group.replication);
        Gauges {
            client_sessions: self.sessions.len() as u64,
            backups: self.db.len() as u64,
            pending_requests: self.pending.len() as u64,
            raft_term: replication.map_or(0, Replication::term),
            raft_commit_index: replication.map_or(0, Replication::commit_index),
            raft_applied_index: replication.map_or(0, Replication::applied_index),
            raft_is_leader: replication.map_or(0, |r| u64::from(r.is_leader())),
            log_bytes: replication.map_or(0, Replication::log_bytes),
            log_entries: replication.map_or(0, Replication::log_entries),
            timestamp_unix_secs: self.now_unix_secs,
        }
    }

    fn on_ping_peer(&mut self, request_id: u64, peer_id: &[u8]) -> Result<(), Error> {
        let peer: PeerId = peer_id
            .try_into()
            .map_err(|_| Error::InvalidArgument("peer id must be 32 bytes".into()))?;
        if peer == self.peer_id {
            return Err(Error::InvalidArgument(
                "a replica cannot ping itself".into(),
            ));
        }
        self.start_transaction(peer, Ask::Ping(true), Purpose::Host { request_id })
            .map(|_| ())
    }

    /// RequestVoting / RequestRemoval: ask the leader to change this replica's membership.
    fn on_request_membership(
        &mut self,
        request_id: u64,
        ask: Ask,
    ) -> Result<Option<Answer>, Error> {
        let Some(group) = &mut self.group else {
            return Err(Error::FailedPrecondition("no group yet".into()));
        };
        let leader_raft_id = group.replication.leader_id();
        if leader_raft_id == self.raft_id {
            // The leader changes its own membership directly.
            let kind = match ask {
                Ask::RaftRemoval(_) => ConfChangeType::RemoveNode,
                _ => return Err(Error::FailedPrecondition("the leader already votes".into())),
            };
            let voters = group
                .replication
                .members()
                .iter()
                .filter(|(_, voting, _)| *voting)
                .count();
            if voters <= 1 {
                return Err(Error::FailedPrecondition(
                    "the only voter cannot leave its group".into(),
                ));
            }
            let (index, term) = group
                .replication
                .propose_conf_change(Members::change(kind, &self.peer_id))?;
            self.add_pending(index, term, Origin::Host { request_id });
            return Ok(None);
        }
        let leader = *group
            .members
            .peer_id(leader_raft_id)
            .ok_or_else(|| Error::Unavailable("no leader known right now".into()))?;
        self.start_transaction(leader, ask, Purpose::Host { request_id })?;
        Ok(None)
    }

    /// Hand leadership to the most up-to-date other voter.
    fn on_relinquish_leadership(&mut self) -> Result<Answer, Error> {
        let Some(group) = &mut self.group else {
            return Err(Error::FailedPrecondition("no group yet".into()));
        };
        if !group.replication.is_leader() {
            return Err(Error::FailedPrecondition(
                "this replica is not the leader".into(),
            ));
        }
        let successor = group
            .replication
            .members()
            .into_iter()
            .filter(|(raft_id, voting, _)| *voting && *raft_id != self.raft_id)
            .max_by_key(|(_, _, match_index)| *match_index)
            .map(|(raft_id, _, _)| raft_id)
            .ok_or_else(|| {
                Error::FailedPrecondition("no other voter to hand leadership to".into())
            })?;
        group.replication.transfer_leader(successor);
        Ok(done())
    }

    pub(crate) fn status(&self) -> EnclaveStatus {
        let group = self.group.as_ref();
        let replication = group.map(|group| &group.replication);
        let members = replication.map_or_else(Vec::new, |r| {
            r.members()
                .into_iter()
                .map(|(raft_id, voting, match_index)| RaftMember {
                    peer_id: group
                        .and_then(|group| group.members.peer_id(raft_id))
                        .map_or_else(Vec::new, |peer| peer.to_vec()),
                    raft_id,
                    voting,
                    match_index,
                })
                .collect()
        });
        EnclaveStatus {
            peer_id: self.peer_id.to_vec(),
            raft_id: self.raft_id,
            role: replication.map_or("none", Replication::role).to_owned(),
            term: replication.map_or(0, Replication::term),
            leader_raft_id: replication.map_or(0, Replication::leader_id),
            commit_index: replication.map_or(0, Replication::commit_index),
            applied_index: replication.map_or(0, Replication::applied_index),
            group_config: group.map(|group| group.config),
            members,
            backups: self.db.len() as u64,
            client_sessions: self.sessions.len() as u64,
            log_bytes: replication.map_or(0, Replication::log_bytes),
            timestamp_unix_secs: self.now_unix_secs,
            measurement: self.env.measurement().to_vec(),
            simulated: self.env.simulated(),
            attestation_timestamp_unix_secs: group
                .map_or(0, |g| g.client_key.attested_at_unix_secs()),
            pending_requests: self.pending.len() as u64,
            peers: self.peer_statuses(),
            minimum_limits: group
                .filter(|group| !group.minimums.is_empty())
                .map(|group| group.minimums.to_proto()),
        }
    }

    fn peer_statuses(&self) -> Vec<PeerStatus> {
        self.peers
            .peers()
            .into_iter()
            .filter_map(|peer| {
                let (state, attested_at_unix_secs) = match self.peers.connection_state(&peer)? {
                    ConnectionState::AwaitSynAck { .. } => ("handshaking", 0),
                    ConnectionState::Connected {
                        attested_at_unix_secs,
                    } => ("connected", attested_at_unix_secs),
                };
                Some(PeerStatus {
                    peer_id: peer.to_vec(),
                    state: state.into(),
                    attested_at_unix_secs,
                })
            })
            .collect()
    }

    fn hashes(&self) -> HashesReply {
        let replication = self.group.as_ref().map(|group| &group.replication);
        HashesReply {
            db_hash: self.db.hash().to_vec(),
            commit_index: replication.map_or(0, Replication::commit_index),
            applied_index: replication.map_or(0, Replication::applied_index),
        }
    }
}

pub(crate) fn done() -> Answer {
    Answer::Done(Done {})
}

/// Validate a group request; zero fields take defaults.
fn group_config(create: &CreateNewRaftGroupRequest) -> Result<GroupConfig, Error> {
    let or = |value: u32, default: u32| if value == 0 { default } else { value };
    let min_voting = or(create.min_voting_replicas, 1);
    let max_voting = or(create.max_voting_replicas, min_voting.max(5));
    if min_voting > max_voting || max_voting > VOTING_REPLICAS_MAX {
        return Err(Error::InvalidArgument(format!(
            "voting replicas must satisfy 1 <= min ({min_voting}) <= max ({max_voting}) <= {VOTING_REPLICAS_MAX}"
        )));
    }
    let voting_timeout = or(create.voting_timeout_secs, VOTING_TIMEOUT_SECS_DEFAULT);
    let membership_timeout = or(
        create.membership_timeout_secs,
        MEMBERSHIP_TIMEOUT_SECS_DEFAULT,
    );
    if voting_timeout > 86_400
        || membership_timeout < voting_timeout
        || membership_timeout > 30 * 86_400
    {
        return Err(Error::InvalidArgument(format!(
            "timeouts must satisfy 1 <= voting ({voting_timeout}) <= membership ({membership_timeout}) <= 2592000 s"
        )));
    }
    let heartbeat = or(create.heartbeat_ticks, HEARTBEAT_TICKS_DEFAULT);
    let election = or(create.election_ticks, ELECTION_TICKS_DEFAULT);
    if heartbeat > 1_000 || election <= heartbeat || election > 10_000 {
        return Err(Error::InvalidArgument(format!(
            "ticks must satisfy 1 <= heartbeat ({heartbeat}) < election ({election}) <= 10000"
        )));
    }
    let log_bytes_max = if create.log_bytes_max == 0 {
        LOG_BYTES_MAX_DEFAULT
    } else {
        create.log_bytes_max
    };
    if !(LOG_BYTES_MAX_MIN..=LOG_BYTES_MAX_CEILING).contains(&log_bytes_max) {
        return Err(Error::InvalidArgument(format!(
            "log_bytes_max is {log_bytes_max}; it must be {LOG_BYTES_MAX_MIN} to {LOG_BYTES_MAX_CEILING}"
        )));
    }
    Ok(GroupConfig {
        group_id: 0,
        simulated: true,
        min_voting_replicas: min_voting,
        max_voting_replicas: max_voting,
        election_ticks: election,
        heartbeat_ticks: heartbeat,
        log_bytes_max,
        attestation_timeout_secs: or(
            create.attestation_timeout_secs,
            ATTESTATION_TIMEOUT_SECS_DEFAULT,
        ),
        // SVR2's option: clients use NKhfs with ML-KEM-1024 (the config is attested, so a
        // client learns it from the evidence, not from the host).
        client_pq: create.client_pq,
        db_version: DB_VERSION,
        voting_timeout_secs: voting_timeout,
        membership_timeout_secs: membership_timeout,
    })
}
