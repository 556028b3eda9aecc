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

mod storage;

use cloister_proto::attest::GroupConfig;
use protobuf::Message as _;
use raft::eraftpb::{ConfChangeV2, ConfState, Entry, EntryType, Message, MessageType};
use raft::{RawNode, StateRole};

pub use self::storage::{EnclaveStorage, EntrySizes};
use crate::Error;

/// Entries every member holds are dropped this many at a time at least (see
/// [`Replication::advance_apply`]).
pub const COMPACT_ENTRIES_MIN: u64 = 1024;

/// Largest raft message accepted from a peer (entries are capped well below this).
pub const RAFT_MESSAGE_BYTES_MAX: usize = 16 * 1024 * 1024;

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
    node: RawNode<EnclaveStorage>,
    /// Sizes of the entries in storage.
    sizes: EntrySizes,
    /// Bytes proposed since the last `ready` (not yet in storage).
    unstable_bytes: u64,
    log_bytes_max: u64,
    /// The commit index this leader last sent followers an append for, only to announce it.
    commit_announced: u64,
}

impl Replication {
    /// Start a new group with `raft_id` as its only voter, and campaign at once.
    pub fn create(raft_id: u64, group: &GroupConfig) -> Result<Self, Error> {
        let storage = EnclaveStorage::new(ConfState::from((vec![raft_id], vec![])));
        let mut replication = Self::with_storage(raft_id, group, storage, 0)?;
        replication
            .node
            .campaign()
            .map_err(|error| Error::Internal(format!("campaign: {error}")))?;
        Ok(replication)
    }

    /// A replica that loaded the group's committed state up to `applied_index` (at
    /// `applied_term`) from a peer, with membership `conf_state`.
    pub fn load(
        raft_id: u64,
        group: &GroupConfig,
        applied_index: u64,
        applied_term: u64,
        conf_state: ConfState,
    ) -> Result<Self, Error> {
        let storage = EnclaveStorage::starting_after(applied_index, applied_term, conf_state);
        Self::with_storage(raft_id, group, storage, applied_index)
    }

    fn with_storage(
        raft_id: u64,
        group: &GroupConfig,
        storage: EnclaveStorage,
        applied: u64,
    ) -> Result<Self, Error> {
        // raft-rs randomizes each election timeout with the OS's RNG, which would make the core
        // nondeterministic. A range of one value makes that draw a constant; spreading the
        // constant by raft id keeps replicas from timing out together (no endless split votes).
        let election = group.election_ticks as usize;
        let election_timeout =
            election + (raft_id % u64::from(group.election_ticks.max(1))) as usize;
        let config = raft::Config {
            id: raft_id,
            election_tick: election,
            min_election_tick: election_timeout,
            max_election_tick: election_timeout + 1,
            heartbeat_tick: group.heartbeat_ticks as usize,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            // One append per follower per `ready`, however many entries a host batch proposed.
            batch_append: true,
            // Commit is announced by `announce_commit`, not by an extra append per commit.
            skip_bcast_commit: true,
            applied,
            ..Default::default()
        };
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let node = RawNode::new(&config, storage, &logger)
            .map_err(|error| Error::InvalidArgument(format!("raft configuration: {error}")))?;
        Ok(Self {
            node,
            sizes: EntrySizes::default(),
            unstable_bytes: 0,
            log_bytes_max: group.log_bytes_max,
            commit_announced: 0,
        })
    }

    /// Append `data` to the log if this replica leads and the log has room.
    /// Returns the (index, term) the entry will commit at, if it commits.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(u64, u64), Error> {
        if self.node.raft.state != StateRole::Leader {
            return Err(Error::Unavailable("this replica is not the leader".into()));
        }
        let bytes = data.len() as u64;
        let held = self.sizes.total() + self.unstable_bytes;
        if held.saturating_add(bytes) > self.log_bytes_max {
            return Err(Error::Unavailable(format!(
                "the log holds {held} bytes of a {} byte cap",
                self.log_bytes_max
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
        self.unstable_bytes += bytes;
        Ok((index, self.node.raft.term))
    }

    /// One Raft clock tick.
    pub fn tick(&mut self) {
        self.node.tick();
    }

    /// Tell followers a commit index that nothing else is about to carry.
    ///
    /// raft-rs would send every follower one more append each time the leader's commit
    /// advances (`skip_bcast_commit` is set to stop that): under load that doubled the peer
    /// messages per write. Every append carries the commit index, so while entries are in
    /// flight the next one announces it; only when the leader's whole log is committed does
    /// it send the appends that say so, once. Followers answer forwarded writes when they
    /// apply them, so they must learn each commit within a round trip, not a heartbeat.
    /// Call before [`Self::has_ready`], after a batch of messages was stepped.
    pub fn announce_commit(&mut self) {
        if !self.is_leader() {
            self.commit_announced = 0;
            return;
        }
        let committed = self.node.raft.raft_log.committed;
        if committed > self.commit_announced && committed == self.node.raft.raft_log.last_index() {
            // Followers with a message already queued get the commit merged into it
            // (`batch_append`); the others get one append with no entries.
            self.node.raft.bcast_append();
            self.commit_announced = committed;
        }
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
        self.unstable_bytes = 0;
        {
            let storage = self.node.store().memory().clone();
            let mut core = storage.wl();
            // Raft snapshots never happen: our storage refuses to make one and `step` refuses
            // MsgSnapshot from peers. State moves between replicas only by ReplicateState.
            assert!(ready.snapshot().is_empty(), "no raft snapshots");
            if !ready.entries().is_empty() {
                // Appending follows Raft's own index continuity; errors are invariant breaks.
                assert!(
                    core.append(ready.entries()).is_ok(),
                    "raft entries are contiguous"
                );
                self.sizes.appended(ready.entries());
            }
            if let Some(hard_state) = ready.hs() {
                core.set_hardstate(hard_state.clone());
            }
        }
        progress.messages.extend(ready.take_persisted_messages());
        let mut light = self.node.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.node
                .store()
                .memory()
                .wl()
                .mut_hard_state()
                .set_commit(commit);
        }
        progress.messages.extend(light.take_messages());
        committed.extend(light.take_committed_entries());
        progress.committed = committed.into_iter().map(to_committed).collect();
        progress
    }

    /// Mark everything returned by [`Self::ready`] applied, and drop entries nobody needs.
    ///
    /// Every replica keeps its applied entries within half the log cap, oldest dropped first,
    /// so that whichever replica leads next can still catch up a lagging follower from its
    /// log. A leader also drops entries every member already holds, but keeps the slowest
    /// member's last entry: the next append to it names that entry's term. A follower that
    /// falls behind what its leader keeps is removed by healing and rejoins by streaming. The
    /// last applied entry always stays: Raft needs its term.
    pub fn advance_apply(&mut self) {
        self.node.advance_apply();
        let applied = self.node.raft.raft_log.applied;
        // raft-rs's MemStorage drops a prefix by moving every entry it keeps, so trimming one
        // entry per apply would copy the whole tail each time: on a follower holding a few
        // hundred thousand entries, that alone saturated a core at a few hundred writes/s.
        // So the tail is trimmed in chunks: once it outgrows half the cap, down to three
        // eighths of it; and entries every member holds, [`COMPACT_ENTRIES_MIN`] at a time.
        let half = self.log_bytes_max / 2;
        let budget_point = if self.sizes.total() > half {
            self.sizes.index_to_fit(half - half / 4).unwrap_or(0)
        } else {
            0
        };
        let held_by_all = if self.is_leader() {
            let progress = self.node.raft.prs();
            // Not `matched + 1`: the next append to the slowest member (say, after a lost
            // message made it reject one) names the term of its last entry, and without
            // that term raft-rs can only ask for a snapshot, which this storage never gives.
            progress.iter().map(|(_, p)| p.matched).min().unwrap_or(0)
        } else {
            0
        };
        let first = self.first_index();
        let held_by_all = if held_by_all >= first + COMPACT_ENTRIES_MIN {
            held_by_all
        } else {
            0
        };
        self.compact(budget_point.max(held_by_all).min(applied));
    }

    /// The first index still in the log.
    pub fn first_index(&self) -> u64 {
        raft::Storage::first_index(self.node.store()).unwrap_or(0)
    }

    fn compact(&mut self, index: u64) {
        let storage = self.node.store().memory();
        // MemStorage::compact keeps entries at and after `index`; it ignores indexes at or
        // below its first index.
        assert!(
            storage.wl().compact(index).is_ok(),
            "compacting applied entries"
        );
        self.sizes.compacted(index);
    }

    /// Step a raft message from a peer. Only messages peers legitimately send are accepted;
    /// local-only message types and messages for another replica are refused, unchanged.
    pub fn step(&mut self, from: u64, bytes: &[u8]) -> Result<(), Error> {
        if bytes.len() > RAFT_MESSAGE_BYTES_MAX {
            return Err(Error::InvalidArgument("raft message too large".into()));
        }
        let message = Message::parse_from_bytes(bytes)
            .map_err(|_| Error::InvalidArgument("raft message does not decode".into()))?;
        if message.to != self.node.raft.id {
            return Err(Error::InvalidArgument(format!(
                "raft message for {} delivered to {}",
                message.to, self.node.raft.id
            )));
        }
        if message.from != from {
            return Err(Error::InvalidArgument(format!(
                "raft message claims to be from {} but came from {from}",
                message.from
            )));
        }
        if !peer_message_type(message.get_msg_type()) {
            return Err(Error::InvalidArgument(format!(
                "raft message type {:?} is not sent between replicas",
                message.get_msg_type()
            )));
        }
        self.node
            .step(message)
            .map_err(|error| Error::InvalidArgument(format!("raft refused a message: {error}")))
    }

    /// Serialize a raft message for a peer.
    pub fn encode_message(message: &Message) -> Vec<u8> {
        // Encoding an in-memory message cannot fail; an empty vector would be refused by the
        // receiving replica's `step`.
        message.write_to_bytes().unwrap_or_default()
    }

    /// Propose a membership change; it takes effect when its entry is applied.
    pub fn propose_conf_change(&mut self, change: ConfChangeV2) -> Result<(u64, u64), Error> {
        if !self.is_leader() {
            return Err(Error::Unavailable("this replica is not the leader".into()));
        }
        let last_before = self.node.raft.raft_log.last_index();
        self.node
            .propose_conf_change(Vec::new(), change)
            .map_err(|error| Error::Unavailable(format!("membership change refused: {error}")))?;
        let index = self.node.raft.raft_log.last_index();
        assert_eq!(
            index,
            last_before + 1,
            "a proposal appends exactly one entry"
        );
        Ok((index, self.node.raft.term))
    }

    /// Apply a committed membership change entry.
    pub fn apply_conf_change(&mut self, data: &[u8]) -> Result<ConfChangeV2, Error> {
        let change = ConfChangeV2::parse_from_bytes(data)
            .map_err(|_| Error::Internal("committed membership change does not decode".into()))?;
        let conf_state = self
            .node
            .apply_conf_change(&change)
            .map_err(|error| Error::Internal(format!("applying a membership change: {error}")))?;
        self.node.store().memory().wl().set_conf_state(conf_state);
        Ok(change)
    }

    /// Committed entries in `[low, high)`, at most about `bytes_max` (at least one).
    /// Fails if the log no longer holds `low`: the caller fell too far behind.
    pub fn committed_entries(
        &self,
        low: u64,
        high: u64,
        bytes_max: u64,
    ) -> Result<Vec<Entry>, Error> {
        let high = high.min(self.commit_index() + 1);
        if low >= high {
            return Ok(Vec::new());
        }
        let context = raft::GetEntriesContext::empty(false);
        raft::Storage::entries(self.node.store(), low, high, bytes_max, context).map_err(|_| {
            Error::Unavailable(format!("the log no longer holds entry {low}; start again"))
        })
    }

    /// The term of the entry at `index` (which must still be held, or be the last compacted).
    pub fn term_of(&self, index: u64) -> Result<u64, Error> {
        raft::Storage::term(self.node.store(), index)
            .map_err(|_| Error::Unavailable(format!("the log no longer holds entry {index}")))
    }

    /// True while a membership change is proposed but not yet applied.
    pub fn conf_change_pending(&self) -> bool {
        self.node.raft.pending_conf_index > self.node.raft.raft_log.applied
    }

    /// Hand leadership to `raft_id` (a voter).
    pub fn transfer_leader(&mut self, raft_id: u64) {
        self.node.transfer_leader(raft_id);
    }

    /// The current membership.
    #[cfg(test)]
    pub fn conf_state(&self) -> ConfState {
        self.node.raft.prs().conf().to_conf_state()
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

    /// Bytes of entries held in memory.
    pub fn log_bytes(&self) -> u64 {
        self.sizes.total() + self.unstable_bytes
    }

    /// Entries currently held in storage.
    pub fn log_entries(&self) -> u64 {
        let storage = self.node.store().memory();
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

/// Message types replicas send each other. Everything else (local ticks, proposals, status
/// reports) must never arrive from a peer: proposals from followers travel as `RaftWrite`.
fn peer_message_type(message_type: MessageType) -> bool {
    matches!(
        message_type,
        MessageType::MsgAppend
            | MessageType::MsgAppendResponse
            | MessageType::MsgRequestVote
            | MessageType::MsgRequestVoteResponse
            | MessageType::MsgRequestPreVote
            | MessageType::MsgRequestPreVoteResponse
            | MessageType::MsgHeartbeat
            | MessageType::MsgHeartbeatResponse
            | MessageType::MsgTimeoutNow
    )
}

#[cfg(test)]
mod tests;

fn to_committed(mut entry: Entry) -> Committed {
    Committed {
        index: entry.index,
        term: entry.term,
        is_normal: entry.get_entry_type() == EntryType::EntryNormal,
        data: entry.take_data().to_vec(),
    }
}
