//! What the simulated clients saw: every attempt at an operation, when it started, and the
//! answer it got (if any). The checkers judge the group on this alone.
//!
//! Times are simulated milliseconds since the run began. An attempt without an answer (its
//! session died, its host crashed, the run ended) is *ambiguous*: it may have taken effect at
//! any instant after it started, or never. An attempt answered with an error is ambiguous
//! too: SVR2's errors (unavailable, cancelled) do not promise that nothing was applied.

use std::collections::BTreeMap;

/// A backup's id (SVR2's client-authenticated id).
pub type BackupId = [u8; 16];

/// One request a client sent, with the fields that matter to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Store `data` guarded by `pin`, with `max_tries` wrong guesses allowed (replaces any
    /// existing backup; not restorable until exposed).
    Backup {
        /// The secret (16 to 48 bytes).
        data: Vec<u8>,
        /// The PIN hash (32 bytes).
        pin: Vec<u8>,
        /// Wrong guesses allowed (1 to 255).
        max_tries: u32,
    },
    /// Make the stored backup restorable, if its data equals `data`.
    Expose {
        /// Must equal the stored data.
        data: Vec<u8>,
    },
    /// Guess `pin`.
    Restore {
        /// The guess.
        pin: Vec<u8>,
    },
    /// Forget the backup.
    Delete,
    /// Ask how many guesses are left.
    Tries,
}

/// A definitive answer from the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Backup answered OK.
    Backup,
    /// Expose answered OK (`true`) or ERROR (`false`: no backup with that data).
    Expose {
        /// OK rather than ERROR.
        ok: bool,
    },
    /// Restore answered OK: the data, and the tries left (unchanged by a right guess).
    Restored {
        /// The secret.
        data: Vec<u8>,
        /// Guesses left.
        tries: u32,
    },
    /// Restore answered PIN_MISMATCH with the tries left after this guess (at least 1).
    PinMismatch {
        /// Guesses left.
        tries: u32,
    },
    /// Restore answered MISSING: no exposed backup, or this guess used the last try (which
    /// deletes the backup).
    RestoreMissing,
    /// Delete answered.
    Deleted,
    /// Tries answered OK.
    Tries {
        /// Guesses left.
        tries: u32,
        /// Whether the backup was exposed.
        exposed: bool,
    },
    /// Tries answered MISSING.
    TriesMissing,
}

/// One attempt, as its client recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Which simulated client.
    pub client: u32,
    /// The backup it is about.
    pub backup_id: BackupId,
    /// What it asked.
    pub op: Op,
    /// When the client sent it.
    pub invoked_ms: u64,
    /// When and how it was answered; `None` for an ambiguous attempt.
    pub answered: Option<(u64, Outcome)>,
}

/// Every attempt of a run, in the order they were invoked.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Every attempt; an attempt's index is its name in checker messages (`#index`).
    pub attempts: Vec<Attempt>,
}

impl History {
    /// Start an attempt; returns its index, to [`History::answer`] later.
    pub fn invoke(&mut self, client: u32, backup_id: BackupId, op: Op, now_ms: u64) -> usize {
        self.attempts.push(Attempt {
            client,
            backup_id,
            op,
            invoked_ms: now_ms,
            answered: None,
        });
        self.attempts.len() - 1
    }

    /// Record the definitive answer to attempt `index`.
    pub fn answer(&mut self, index: usize, outcome: Outcome, now_ms: u64) {
        if let Some(attempt) = self.attempts.get_mut(index) {
            attempt.answered = Some((now_ms, outcome));
        }
    }

    /// The attempts on each backup, in invocation order.
    pub fn by_backup(&self) -> BTreeMap<BackupId, Vec<&Attempt>> {
        let mut split: BTreeMap<BackupId, Vec<&Attempt>> = BTreeMap::new();
        for attempt in &self.attempts {
            split.entry(attempt.backup_id).or_default().push(attempt);
        }
        split
    }
}
