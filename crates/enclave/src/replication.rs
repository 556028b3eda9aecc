//! Raft glue: the `raft` crate's `RawNode` over in-memory storage, a byte cap on the log, and
//! compaction after apply.
//!
//! ```text
//!  propose(entry) ──▶ RawNode ──ready()──▶ append to storage ──advance()──▶ committed entries
//!                                                                            │ apply (core)
//!                        compact(applied) ◀──── advance_apply() ◀────────────┘
//! ```
//!
//! Memory only, on purpose: a sealed log on disk could be replayed by the host to roll back a
//! tries counter.

use std::collections::VecDeque;

use cloister_proto::attest::GroupConfig;
use raft::eraftpb::{ConfState, Entry, EntryType, Message};
use raft::storage::MemStorage;
use raft::{RawNode, StateRole};

use crate::Error;

/// A committed log entry, ready to apply.
pub struct Committed {
    /// Log index.
    pub index: u64,
    /// Term the entry was written in.
    pub term: u64,
    /// Entry payload; empty for Raft's own no-op entries.
    pub data: Vec<u8>,
    /// False for configuration changes, which the core does not apply as data.
    pub is_normal: bool,
}

/// What one Raft `ready` cycle produced.
#[derive(Default)]
pub struct Progress {
    /// Entries to apply, in log order.
    pub committed: Vec<Committed>,
    /// Messages for peers (none in a one-replica group).
    pub messages: Vec<Message>,
}

/// One replica's Raft state.
pub struct Replication {
    node: RawNode<MemStorage>,
    /// (index, bytes) of proposed entries still in storage, oldest first.
    entry_bytes: VecDeque<(u64, u64)>,
    log_bytes: u64,
    log_bytes_max: u64,
}

impl Replication {
    /// Start a new group with `raft_id` as its only voter, and campaign at once.
    pub fn create(raft_id: u64, group: &GroupConfig) -> Result<Self, Error> {
        let storage = MemStorage::new_with_conf_state(ConfState::from((vec![raft_id], vec![])));
        let config = raft::Config {
            id: raft_id,
            election_tick: group.election_ticks as usize,
            heartbeat_tick: group.heartbeat_ticks as usize,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let mut node = RawNode::new(&config, storage, &logger)
            .map_err(|error| Error::InvalidArgument(format!("raft configuration: {error}")))?;
        node.campaign()
            .map_err(|error| Error::Internal(format!("campaign: {error}")))?;
        Ok(Self {
            node,
            entry_bytes: VecDeque::new(),
            log_bytes: 0,
            log_bytes_max: group.log_bytes_max,
        })
    }

    /// Append `data` to the log if this replica leads and the log has room.
    /// Returns the (index, term) the entry will commit at, if it commits.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(u64, u64), Error> {
        if self.node.raft.state != StateRole::Leader {
            return Err(Error::Unavailable("this replica is not the leader".into()));
        }
        let bytes = data.len() as u64;
        if self.log_bytes.saturating_add(bytes) > self.log_bytes_max {
            return Err(Error::Unavailable(format!(
                "the log holds {} bytes of a {} byte cap",
                self.log_bytes, self.log_bytes_max
            )));
        }
        let last_before = self.node.raft.raft_log.last_index();
        self.node
            .propose(Vec::new(), data)
            .map_err(|error| Error::Unavailable(format!("proposal dropped: {error}")))?;
        let index = self.node.raft.raft_log.last_index();
        assert_eq!(
            index,
            last_before + 1,
            "a proposal appends exactly one entry"
        );
        self.entry_bytes.push_back((index, bytes));
        self.log_bytes += bytes;
        Ok((index, self.node.raft.term))
    }

    /// One Raft clock tick.
    pub fn tick(&mut self) {
        self.node.tick();
    }

    /// True when [`Self::ready`] has work.
    pub fn has_ready(&self) -> bool {
        self.node.has_ready()
    }

    /// Persist what Raft asks (to memory), and return what to apply and send.
    /// Call [`Self::advance_apply`] once the committed entries are applied.
    pub fn ready(&mut self) -> Progress {
        let mut progress = Progress::default();
        let mut ready = self.node.ready();
        progress.messages.extend(ready.take_messages());
        let mut committed = ready.take_committed_entries();
        {
            let storage = self.node.store().clone();
            let mut core = storage.wl();
            // Snapshots arrive with replica groups (ReplicateState); a one-replica group, the
            // only kind this build creates, never produces one.
            assert!(
                ready.snapshot().is_empty(),
                "no snapshots in a one-replica group"
            );
            if !ready.entries().is_empty() {
                // Appending follows Raft's own index continuity; errors are invariant breaks.
                assert!(
                    core.append(ready.entries()).is_ok(),
                    "raft entries are contiguous"
                );
            }
            if let Some(hard_state) = ready.hs() {
                core.set_hardstate(hard_state.clone());
            }
        }
        progress.messages.extend(ready.take_persisted_messages());
        let mut light = self.node.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.node.store().wl().mut_hard_state().set_commit(commit);
        }
        progress.messages.extend(light.take_messages());
        committed.extend(light.take_committed_entries());
        progress.committed = committed.into_iter().map(to_committed).collect();
        progress
    }

    /// Mark everything returned by [`Self::ready`] applied, and drop applied entries from
    /// memory (the last one stays: Raft needs its term).
    pub fn advance_apply(&mut self) {
        self.node.advance_apply();
        let applied = self.node.raft.raft_log.applied;
        // MemStorage::compact keeps entries at and after `applied`.
        assert!(
            self.node.store().wl().compact(applied).is_ok(),
            "compacting applied entries"
        );
        while let Some(&(index, bytes)) = self.entry_bytes.front() {
            if index >= applied {
                break;
            }
            self.entry_bytes.pop_front();
            self.log_bytes -= bytes;
        }
    }

    /// Role name for status.
    pub fn role(&self) -> &'static str {
        match self.node.raft.state {
            StateRole::Leader => "leader",
            StateRole::Follower => "follower",
            StateRole::Candidate => "candidate",
            StateRole::PreCandidate => "pre-candidate",
        }
    }

    /// True when this replica leads.
    pub fn is_leader(&self) -> bool {
        self.node.raft.state == StateRole::Leader
    }

    /// Current term.
    pub fn term(&self) -> u64 {
        self.node.raft.term
    }

    /// Raft id of the known leader (0 when none).
    pub fn leader_id(&self) -> u64 {
        self.node.raft.leader_id
    }

    /// Highest committed index.
    pub fn commit_index(&self) -> u64 {
        self.node.raft.raft_log.committed
    }

    /// Highest applied index.
    pub fn applied_index(&self) -> u64 {
        self.node.raft.raft_log.applied
    }

    /// Bytes of proposed entries still held in memory.
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes
    }

    /// Entries currently held in storage.
    pub fn log_entries(&self) -> u64 {
        let storage = self.node.store();
        match (
            raft::Storage::first_index(storage),
            raft::Storage::last_index(storage),
        ) {
            (Ok(first), Ok(last)) if last >= first => last - first + 1,
            _ => 0,
        }
    }

    /// (raft id, voting, match index) of every member.
    pub fn members(&self) -> Vec<(u64, bool, u64)> {
        let progress = self.node.raft.prs();
        let conf = progress.conf();
        let mut members: Vec<(u64, bool, u64)> = conf
            .voters()
            .ids()
            .iter()
            .map(|id| (id, true))
            .chain(conf.learners().iter().map(|id| (*id, false)))
            .map(|(id, voting)| (id, voting, progress.get(id).map_or(0, |p| p.matched)))
            .collect();
        members.sort_unstable();
        members
    }
}

fn to_committed(mut entry: Entry) -> Committed {
    Committed {
        index: entry.index,
        term: entry.term,
        is_normal: entry.get_entry_type() == EntryType::EntryNormal,
        data: entry.take_data().to_vec(),
    }
}
