//! Joining a group, and serving the state a joiner loads (`ReplicateState`).
//!
//! ```text
//!  JoinRaft{peer} ─▶ GetRaft(peer) ─▶ RaftMembershipRequest(leader): added as a learner
//!   ─▶ ReplicateState(leader) × n: committed log since the last push, then rows in key order
//!   ─▶ load: Raft starts at the streamed index as a learner ─▶ answer the host
//! ```
//!
//! Each push carries the rows after the cursor as they are *now* (at the sender's applied
//! index `s`) and the committed entries between the previous push and `s`. The joiner applies
//! those entries only to rows it already holds (keys at or before its cursor): rows after
//! the cursor arrive later, already reflecting them. When entries must be split over several
//! pushes, those pushes carry no rows, so no entry is ever applied twice.

use cloister_proto::attest::GroupConfig;
use cloister_proto::e2e::{
    ReplicateStatePush, ReplicateStateRequest, transaction_request::Inner as Ask,
    transaction_response::Inner as Reply,
};
use cloister_proto::log::{LogEntry, log_entry};
use prost::Message;
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, EntryType};

use crate::Error;
use crate::client::ClientKey;
use crate::core::{Enclave, Group};
use crate::db::{BackupId, Database};
use crate::membership::{Members, PeerId};
use crate::replication::Replication;
use crate::transactions::Purpose;

/// Bytes of rows per push.
pub const REPLICATE_ROWS_BYTES_MAX: usize = 1024 * 1024;
/// Bytes of log entries per push.
pub const REPLICATE_ENTRIES_BYTES_MAX: u64 = 4 * 1024 * 1024;

/// Where a join stands; each step waits for one transaction.
pub(crate) enum JoinStep {
    AwaitGroup {
        request_id: u64,
    },
    AwaitMembership {
        request_id: u64,
        config: GroupConfig,
        leader: PeerId,
    },
    Streaming(Box<Streaming>),
}

pub(crate) struct Streaming {
    request_id: u64,
    config: GroupConfig,
    source: PeerId,
    db: Database,
    last_key: Option<BackupId>,
    since_index: u64,
}

impl Enclave {
    /// Host call JoinRaft: join the group `peer` belongs to.
    pub(crate) fn on_join_raft(&mut self, request_id: u64, peer_id: &[u8]) -> Result<(), Error> {
        if self.group.is_some() {
            return Err(Error::FailedPrecondition(
                "this replica already belongs to a group".into(),
            ));
        }
        if self.joining {
            return Err(Error::FailedPrecondition(
                "a join is already under way".into(),
            ));
        }
        let peer: PeerId = peer_id
            .try_into()
            .map_err(|_| Error::InvalidArgument("peer id must be 32 bytes".into()))?;
        if peer == self.peer_id {
            return Err(Error::InvalidArgument(
                "a replica cannot join through itself".into(),
            ));
        }
        self.start_transaction(
            peer,
            Ask::GetRaft(Default::default()),
            Purpose::Join(JoinStep::AwaitGroup { request_id }),
        )?;
        self.joining = true;
        Ok(())
    }

    pub(crate) fn on_join_reply(&mut self, step: JoinStep, reply: Result<Reply, Error>) {
        let request_id = match &step {
            JoinStep::AwaitGroup { request_id } | JoinStep::AwaitMembership { request_id, .. } => {
                *request_id
            }
            JoinStep::Streaming(streaming) => streaming.request_id,
        };
        if let Err(error) = reply.and_then(|reply| self.advance_join(step, reply)) {
            self.joining = false;
            self.respond_error(request_id, &error);
        }
    }

    fn advance_join(&mut self, step: JoinStep, reply: Reply) -> Result<(), Error> {
        match (step, reply) {
            (JoinStep::AwaitGroup { request_id }, Reply::GetRaft(raft)) => {
                let config = GroupConfig::decode(raft.group_config.as_slice()).map_err(|_| {
                    Error::InvalidArgument("peer sent a malformed group config".into())
                })?;
                if config.simulated != self.env.simulated() {
                    return Err(Error::InvalidArgument(
                        "the group's platform differs from ours".into(),
                    ));
                }
                let members = Members::from_proto(&raft.members)?;
                let leader = *members.peer_id(raft.leader_raft_id).ok_or_else(|| {
                    Error::Unavailable("the group has no leader right now".into())
                })?;
                let step = JoinStep::AwaitMembership {
                    request_id,
                    config,
                    leader,
                };
                self.start_transaction(leader, Ask::RaftMembership(true), Purpose::Join(step))
                    .map(|_| ())
            }
            (
                JoinStep::AwaitMembership {
                    request_id,
                    config,
                    leader,
                },
                Reply::Done(_),
            ) => {
                let streaming = Streaming {
                    request_id,
                    config,
                    source: leader,
                    db: Database::default(),
                    last_key: None,
                    since_index: 0,
                };
                self.request_state(Box::new(streaming))
            }
            (JoinStep::Streaming(streaming), Reply::ReplicateState(push)) => {
                self.on_push(streaming, push)
            }
            _ => Err(Error::InvalidArgument(
                "unexpected answer while joining".into(),
            )),
        }
    }

    fn request_state(&mut self, streaming: Box<Streaming>) -> Result<(), Error> {
        let cursor = encode_cursor(streaming.last_key.as_ref(), streaming.since_index);
        let source = streaming.source;
        let ask = Ask::ReplicateState(ReplicateStateRequest { cursor });
        self.start_transaction(source, ask, Purpose::Join(JoinStep::Streaming(streaming)))
            .map(|_| ())
    }

    fn on_push(
        &mut self,
        mut streaming: Box<Streaming>,
        push: ReplicateStatePush,
    ) -> Result<(), Error> {
        for bytes in &push.entries {
            let entry = Entry::parse_from_bytes(bytes)
                .map_err(|_| Error::InvalidArgument("streamed entry does not decode".into()))?;
            if entry.index <= streaming.since_index {
                continue; // already applied
            }
            apply_streamed(&mut streaming.db, streaming.last_key.as_ref(), &entry);
            streaming.since_index = entry.index;
        }
        if !push.rows.is_empty() {
            streaming.last_key = streaming
                .db
                .load_rows(streaming.last_key.as_ref(), &push.rows)?;
        }
        streaming.since_index = streaming.since_index.max(push.applied_index);
        if !push.done {
            self.counters.replicate_state_pushes += 1;
            return self.request_state(streaming);
        }
        self.finish_join(*streaming, &push)
    }

    fn finish_join(
        &mut self,
        streaming: Streaming,
        push: &ReplicateStatePush,
    ) -> Result<(), Error> {
        let members = Members::from_proto(&push.members)?;
        if !members.contains(&self.peer_id) {
            return Err(Error::Internal(
                "the group does not list this replica after adding it".into(),
            ));
        }
        let voters: Vec<u64> = push
            .members
            .iter()
            .filter(|m| m.voting)
            .map(|m| m.raft_id)
            .collect();
        let learners: Vec<u64> = push
            .members
            .iter()
            .filter(|m| !m.voting)
            .map(|m| m.raft_id)
            .collect();
        let conf_state = ConfState::from((voters, learners));
        let replication = Replication::load(
            self.raft_id,
            &streaming.config,
            push.applied_index,
            push.applied_term,
            conf_state,
        )?;
        let client_key =
            ClientKey::generate(self.env.as_mut(), &streaming.config, self.now_unix_secs);
        self.db = streaming.db;
        self.group = Some(Group {
            config: streaming.config,
            replication,
            client_key,
            members,
        });
        self.joining = false;
        self.refresh_peer_attestation();
        self.respond(streaming.request_id, crate::host_calls::done());
        Ok(())
    }

    /// Serve one push of committed state after `cursor`.
    pub(crate) fn serve_replicate_state(
        &mut self,
        cursor: &[u8],
    ) -> Result<ReplicateStatePush, Error> {
        let (last_key, since_index) = decode_cursor(cursor)?;
        let status = self.status();
        let Some(group) = &self.group else {
            return Err(Error::FailedPrecondition("no group here".into()));
        };
        let applied = group.replication.applied_index();
        let mut push = ReplicateStatePush {
            members: status.members,
            ..Default::default()
        };
        let mut reached = applied;
        if since_index > 0 && since_index < applied {
            let entries = group.replication.committed_entries(
                since_index + 1,
                applied + 1,
                REPLICATE_ENTRIES_BYTES_MAX,
            )?;
            reached = entries.last().map_or(since_index, |entry| entry.index);
            push.entries = entries
                .iter()
                .map(|entry| entry.write_to_bytes().unwrap_or_default())
                .collect();
        }
        let mut next_key = last_key;
        let mut rows_done = false;
        if reached == applied {
            let chunk = self
                .db
                .stream_rows(last_key.as_ref(), REPLICATE_ROWS_BYTES_MAX);
            push.rows = chunk.rows;
            next_key = chunk.last.or(last_key);
            rows_done = chunk.done;
        }
        push.applied_index = reached;
        push.applied_term = group.replication.term_of(reached)?;
        push.cursor = encode_cursor(next_key.as_ref(), reached);
        push.done = rows_done && reached == applied;
        Ok(push)
    }
}

/// Apply a streamed entry to the rows already held (keys at or before the cursor).
fn apply_streamed(db: &mut Database, last_key: Option<&BackupId>, entry: &Entry) {
    if entry.get_entry_type() != EntryType::EntryNormal || entry.data.is_empty() {
        return;
    }
    let Some(last_key) = last_key else { return };
    let Ok(decoded) = LogEntry::decode(entry.data.as_ref()) else {
        return;
    };
    let (backup_id, request) = match decoded.inner {
        Some(log_entry::Inner::Client(operation)) => (operation.backup_id, operation.request),
        Some(log_entry::Inner::HostDelete(delete)) => (delete.backup_id, None),
        None => return,
    };
    let Ok(backup_id) = <BackupId>::try_from(backup_id.as_slice()) else {
        return;
    };
    if &backup_id > last_key {
        return; // arrives later with this entry already applied
    }
    match request {
        // Deterministic, as on every replica; its answer went to the client elsewhere.
        Some(request) => {
            let _ = db.apply(&backup_id, &request);
        }
        None => db.delete(&backup_id),
    }
}

fn encode_cursor(last_key: Option<&BackupId>, since_index: u64) -> Vec<u8> {
    let mut cursor = since_index.to_be_bytes().to_vec();
    if let Some(key) = last_key {
        cursor.extend_from_slice(key);
    }
    cursor
}

fn decode_cursor(cursor: &[u8]) -> Result<(Option<BackupId>, u64), Error> {
    if cursor.is_empty() {
        return Ok((None, 0));
    }
    let (index, key) = cursor
        .split_first_chunk::<8>()
        .ok_or_else(|| Error::InvalidArgument("malformed cursor".into()))?;
    let key = match key.len() {
        0 => None,
        16 => Some(
            <BackupId>::try_from(key)
                .map_err(|_| Error::InvalidArgument("malformed cursor".into()))?,
        ),
        _ => return Err(Error::InvalidArgument("malformed cursor".into())),
    };
    Ok((key, u64::from_be_bytes(*index)))
}
