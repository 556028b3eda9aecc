//! Raft storage: raft-rs's `MemStorage`, with two changes that matter for safety.
//!
//! - It never hands Raft a snapshot. raft-rs's `MemStorage` answers a snapshot request with
//!   metadata only (no state), which a lagging follower would install and then skip entries
//!   it never applied. Cloister moves state only through `ReplicateState`, which streams the
//!   committed log and the database rows; a follower that falls behind the retained log is
//!   cut off and rejoins that way.
//! - It counts the bytes of the entries it holds, so the log can be capped.

use std::collections::VecDeque;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

/// In-memory Raft storage that refuses snapshots and counts its bytes.
#[derive(Clone, Default)]
pub struct EnclaveStorage {
    inner: MemStorage,
}

/// (index, bytes) of every entry held, oldest first.
#[derive(Default)]
pub struct EntrySizes {
    sizes: VecDeque<(u64, u64)>,
    total: u64,
}

impl EntrySizes {
    /// Record entries appended at their indexes, dropping any overwritten suffix first.
    pub fn appended(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        while self
            .sizes
            .back()
            .is_some_and(|&(index, _)| index >= first.index)
        {
            if let Some((_, bytes)) = self.sizes.pop_back() {
                self.total -= bytes;
            }
        }
        for entry in entries {
            let bytes = entry.data.len() as u64 + entry.context.len() as u64;
            self.sizes.push_back((entry.index, bytes));
            self.total += bytes;
        }
    }

    /// Forget entries before `index`.
    pub fn compacted(&mut self, index: u64) {
        while self.sizes.front().is_some_and(|&(front, _)| front < index) {
            if let Some((_, bytes)) = self.sizes.pop_front() {
                self.total -= bytes;
            }
        }
    }

    /// The first index to keep so that the entries kept take at most `budget` bytes
    /// (`None` when everything fits).
    pub fn index_to_fit(&self, budget: u64) -> Option<u64> {
        let mut total = self.total;
        for &(index, bytes) in &self.sizes {
            if total <= budget {
                return Some(index);
            }
            total -= bytes;
        }
        self.sizes.back().map(|&(index, _)| index + 1)
    }

    /// Bytes of entries held.
    pub fn total(&self) -> u64 {
        self.total
    }
}

impl EnclaveStorage {
    /// Storage for a group whose membership is `conf_state`, starting at index 0.
    pub fn new(conf_state: ConfState) -> Self {
        Self {
            inner: MemStorage::new_with_conf_state(conf_state),
        }
    }

    /// Storage that starts after `index` (at `term`), with `conf_state`: for a replica that
    /// loaded committed state from a peer instead of replaying the log from the start.
    pub fn starting_after(index: u64, term: u64, conf_state: ConfState) -> Self {
        let storage = MemStorage::new();
        let mut snapshot = Snapshot::default();
        snapshot.mut_metadata().index = index;
        snapshot.mut_metadata().term = term;
        snapshot.mut_metadata().set_conf_state(conf_state);
        {
            let mut core = storage.wl();
            // A fresh MemStorage accepts any snapshot newer than index 0.
            assert!(
                core.apply_snapshot(snapshot).is_ok(),
                "a fresh storage takes a snapshot"
            );
            core.set_hardstate(HardState {
                term,
                commit: index,
                ..Default::default()
            });
        }
        Self { inner: storage }
    }

    /// The wrapped storage, for appending and compacting.
    pub fn memory(&self) -> &MemStorage {
        &self.inner
    }
}

impl Storage for EnclaveStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.inner.initial_state()
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.inner.entries(low, high, max_size, context)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        self.inner.term(index)
    }

    fn first_index(&self) -> raft::Result<u64> {
        self.inner.first_index()
    }

    fn last_index(&self) -> raft::Result<u64> {
        self.inner.last_index()
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        // Never: see the module docs. Raft keeps probing; the leader's healing removes a
        // follower that cannot catch up from the retained log, and it rejoins by streaming.
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable,
        ))
    }
}
