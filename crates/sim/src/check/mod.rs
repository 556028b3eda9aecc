//! The checkers: pure functions that judge a run on what its clients saw.
//!
//! ```text
//!   History (every attempt: invoked, answered or not)
//!      │  split per backup id (ids are independent keys)
//!      ├──▶ guess_limit       wrong guesses since a Backup never exceed its max_tries
//!      ├──▶ durability        an acknowledged Backup + Expose stays restorable
//!      └──▶ linearizability   some order of the attempts fits the SVR2 model (WGL search)
//!                 │
//!                 ▼
//!            CheckReport { passed counts, inconclusive count, violations }
//! ```
//!
//! ```
//! use cloister_sim::check::check_history;
//! use cloister_sim::history::{History, Op, Outcome};
//!
//! let mut history = History::default();
//! let id = [7; 16];
//! let op = Op::Backup { data: vec![1; 16], pin: vec![2; 32], max_tries: 3 };
//! let backup = history.invoke(0, id, op, 10);
//! history.answer(backup, Outcome::Backup, 20);
//! let restore = history.invoke(0, id, Op::Restore { pin: vec![2; 32] }, 30);
//! history.answer(restore, Outcome::RestoreMissing, 40); // not exposed yet
//! let report = check_history(&history);
//! assert!(report.is_ok(), "{report}");
//! ```
//!
//! Time is the clients' simulated milliseconds. Attempt `a` is known to come before `b` only
//! when `a` was answered at a time strictly before `b` was invoked: two events in the same
//! millisecond may have happened in either order, so the checkers treat them as concurrent.
//! Every rule is conservative in the same way: an ambiguous attempt (no answer) may have
//! applied at any instant after its invocation, or never, and the guess-limit and durability
//! checkers skip a window whenever some attempt could have changed what it sees. They never
//! flag a correct group; the linearizability search is the complete (and costlier) check.

use std::collections::BTreeMap;
use std::fmt;

use crate::history::{Attempt, BackupId, History, Op, Outcome};

mod bits;
pub mod durability;
pub mod guess_limit;
pub mod linearizability;
pub mod model;

#[cfg(test)]
mod testing;

/// [`Violation::invariant`] of the guess-limit checker.
pub const GUESS_LIMIT: &str = "guess-limit";
/// [`Violation::invariant`] of the durability checker.
pub const DURABILITY: &str = "durability";
/// [`Violation::invariant`] of the linearizability checker.
pub const LINEARIZABILITY: &str = "linearizability";

/// A broken invariant, with what a person needs to find it in the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// [`GUESS_LIMIT`], [`DURABILITY`] or [`LINEARIZABILITY`].
    pub invariant: &'static str,
    /// The backup the violation is about, when it is about one.
    pub backup_id: Option<BackupId>,
    /// What went wrong, naming the attempts involved (`#index` into `History::attempts`).
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.backup_id {
            Some(id) => write!(
                f,
                "[{}] backup {}: {}",
                self.invariant,
                hex::encode(id),
                self.detail
            ),
            None => write!(f, "[{}] {}", self.invariant, self.detail),
        }
    }
}

/// What one checker found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Checks that passed (their unit is the checker's: backups, windows, backup ids).
    pub passed: u64,
    /// Checks given up without a verdict (the linearizability search hit its step budget).
    pub inconclusive: u64,
    /// Checks that failed.
    pub violations: Vec<Violation>,
}

/// The verdict on a whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Acknowledged Backups whose wrong guesses stayed within `max_tries`.
    pub guess_limit_passed: u64,
    /// Acknowledged Backup + Expose pairs that stayed restorable.
    pub durability_passed: u64,
    /// Backup ids whose attempts linearize against the model.
    pub linearizability_passed: u64,
    /// Backup ids whose linearizability search ran out of steps (not a failure).
    pub linearizability_inconclusive: u64,
    /// Every violation, guess-limit first, then durability, then linearizability.
    pub violations: Vec<Violation>,
}

impl CheckReport {
    /// True when no invariant was broken (inconclusive searches do not count against it).
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "guess-limit {} passed, durability {} passed, linearizability {} passed \
             ({} inconclusive), {} violation(s)",
            self.guess_limit_passed,
            self.durability_passed,
            self.linearizability_passed,
            self.linearizability_inconclusive,
            self.violations.len()
        )?;
        for violation in &self.violations {
            write!(f, "\n  {violation}")?;
        }
        Ok(())
    }
}

/// Bounds on the checkers' work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckLimits {
    /// Most model steps the linearizability search may take for one backup id before it
    /// answers inconclusive. Its memo holds at most this many states.
    pub linearizability_steps_max: u64,
}

/// Default [`CheckLimits::linearizability_steps_max`]: ample for a few dozen attempts with
/// a few ambiguous ones, and a memo of at most a few tens of megabytes.
pub const LINEARIZABILITY_STEPS_MAX: u64 = 200_000;

impl Default for CheckLimits {
    fn default() -> Self {
        Self {
            linearizability_steps_max: LINEARIZABILITY_STEPS_MAX,
        }
    }
}

/// Run every checker over `history` with the default limits.
pub fn check_history(history: &History) -> CheckReport {
    check_history_with(history, &CheckLimits::default())
}

/// Run every checker over `history`.
pub fn check_history_with(history: &History, limits: &CheckLimits) -> CheckReport {
    let guess_limit = guess_limit::check(history);
    let durability = durability::check(history);
    let linearizability = linearizability::check(history, limits.linearizability_steps_max);
    let mut violations = guess_limit.violations;
    violations.extend(durability.violations);
    violations.extend(linearizability.violations);
    CheckReport {
        guess_limit_passed: guess_limit.passed,
        durability_passed: durability.passed,
        linearizability_passed: linearizability.passed,
        linearizability_inconclusive: linearizability.inconclusive,
        violations,
    }
}

/// An attempt with its position in `History::attempts`, which messages call `#index`.
#[derive(Debug, Clone, Copy)]
pub struct Indexed<'a> {
    /// Position in `History::attempts`.
    pub index: usize,
    /// The attempt.
    pub attempt: &'a Attempt,
}

/// The attempts on each backup id, in the order they were invoked.
pub fn per_backup(history: &History) -> BTreeMap<BackupId, Vec<Indexed<'_>>> {
    let mut split: BTreeMap<BackupId, Vec<Indexed<'_>>> = BTreeMap::new();
    for (index, attempt) in history.attempts.iter().enumerate() {
        split
            .entry(attempt.backup_id)
            .or_default()
            .push(Indexed { index, attempt });
    }
    for attempts in split.values_mut() {
        // Stable: equal invocation times keep their recorded order.
        attempts.sort_by_key(|indexed| indexed.attempt.invoked_ms);
    }
    split
}

/// When `attempt` was answered, if it was.
pub(crate) fn answered_ms(attempt: &Attempt) -> Option<u64> {
    attempt.answered.as_ref().map(|(at_ms, _)| *at_ms)
}

/// The answer `attempt` got, if any.
pub(crate) fn outcome(attempt: &Attempt) -> Option<&Outcome> {
    attempt.answered.as_ref().map(|(_, outcome)| outcome)
}

/// True when `first` surely took effect before `second`: answered strictly before `second`
/// was invoked.
pub(crate) fn definitely_before(first: &Attempt, second: &Attempt) -> bool {
    answered_ms(first).is_some_and(|answered| answered < second.invoked_ms)
}

/// True when `middle` may have taken effect after `first` and before `last`.
pub(crate) fn possibly_between(middle: &Attempt, first: &Attempt, last: &Attempt) -> bool {
    !definitely_before(middle, first) && !definitely_before(last, middle)
}

/// The window after `first` that no attempt matching `cuts` can reach into: an answered
/// attempt `x` invoked after `first` was answered sees nothing such an attempt did exactly
/// when it was answered before this instant (every such attempt not surely before `first`
/// was invoked after `x` was answered). `u64::MAX` when none could.
pub(crate) fn window_end_ms(
    attempts: &[Indexed<'_>],
    first: Indexed<'_>,
    cuts: impl Fn(&Op) -> bool,
) -> u64 {
    attempts
        .iter()
        .filter(|other| {
            other.index != first.index
                && cuts(&other.attempt.op)
                && !definitely_before(other.attempt, first.attempt)
        })
        .map(|other| other.attempt.invoked_ms)
        .min()
        .unwrap_or(u64::MAX)
}

/// True when `attempt` surely follows `first` and was answered before `end_ms` (see
/// [`window_end_ms`]).
pub(crate) fn in_window(first: &Attempt, attempt: &Attempt, end_ms: u64) -> bool {
    definitely_before(first, attempt) && answered_ms(attempt).is_some_and(|at| at < end_ms)
}

/// Short hex of bytes for messages (simulated data and PINs, never real secrets).
pub(crate) fn short_hex(bytes: &[u8]) -> String {
    const SHOWN_BYTES: usize = 4;
    if bytes.len() <= SHOWN_BYTES {
        hex::encode(bytes)
    } else {
        format!("{}..", hex::encode(&bytes[..SHOWN_BYTES]))
    }
}

/// An operation, for messages.
pub(crate) fn describe_op(op: &Op) -> String {
    match op {
        Op::Backup {
            data,
            pin,
            max_tries,
        } => format!(
            "Backup(data {}, pin {}, max_tries {max_tries})",
            short_hex(data),
            short_hex(pin)
        ),
        Op::Expose { data } => format!("Expose(data {})", short_hex(data)),
        Op::Restore { pin } => format!("Restore(pin {})", short_hex(pin)),
        Op::Delete => "Delete".into(),
        Op::Tries => "Tries".into(),
    }
}

/// An answer, for messages.
pub(crate) fn describe_outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Backup => "OK".into(),
        Outcome::Expose { ok: true } => "OK".into(),
        Outcome::Expose { ok: false } => "ERROR".into(),
        Outcome::Restored { data, tries } => {
            format!("OK(data {}, tries {tries})", short_hex(data))
        }
        Outcome::PinMismatch { tries } => format!("PIN_MISMATCH(tries {tries})"),
        Outcome::RestoreMissing => "MISSING".into(),
        Outcome::Deleted => "OK".into(),
        Outcome::Tries { tries, exposed } => format!("OK(tries {tries}, exposed {exposed})"),
        Outcome::TriesMissing => "MISSING".into(),
    }
}

/// One attempt, for messages: `#12 client 3 Restore(pin 0101..) @1500ms -> MISSING @1520ms`.
pub(crate) fn describe(indexed: Indexed<'_>) -> String {
    let attempt = indexed.attempt;
    let answer = match &attempt.answered {
        Some((at_ms, outcome)) => format!("{} @{at_ms}ms", describe_outcome(outcome)),
        None => "no answer".into(),
    };
    format!(
        "#{} client {} {} @{}ms -> {answer}",
        indexed.index,
        attempt.client,
        describe_op(&attempt.op),
        attempt.invoked_ms
    )
}

/// Several attempts, for messages, the first few spelled out.
pub(crate) fn describe_all(attempts: &[Indexed<'_>]) -> String {
    const SHOWN_MAX: usize = 8;
    let mut text: Vec<String> = attempts
        .iter()
        .take(SHOWN_MAX)
        .map(|a| describe(*a))
        .collect();
    if attempts.len() > SHOWN_MAX {
        text.push(format!("and {} more", attempts.len() - SHOWN_MAX));
    }
    text.join("; ")
}

#[cfg(test)]
mod tests;
