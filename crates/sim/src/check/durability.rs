//! Durability: an acknowledged backup stays restorable with the right PIN until it is
//! deleted, replaced, or its tries run out.
//!
//! A backup is acknowledged when a Backup `B` was answered OK and then an Expose of the same
//! data, invoked after that answer, was answered OK with no other Backup attempt possibly
//! between them (so the Expose surely exposed `B`'s row). From the Expose's answer on, every
//! answered attempt that no other Backup and no Delete (answered or not) could precede sees
//! `B`'s exposed row, unless wrong guesses took all its tries. So:
//! - a right-PIN Restore must not answer MISSING, nor a Tries answer MISSING, unless the
//!   wrong-PIN Restores that could have come after `B` (answered or not) number at least
//!   `max_tries`;
//! - a right-PIN Restore must not answer PIN_MISMATCH;
//! - a Restore that answers OK must return `B`'s data (a stale or foreign row otherwise);
//! - a Tries that answers OK must say exposed.

use super::{
    DURABILITY, Indexed, Tally, Violation, answered_ms, definitely_before, describe, in_window,
    outcome, per_backup, possibly_between, window_end_ms,
};
use crate::history::{History, Op, Outcome};

/// Check every acknowledged Backup + Expose in `history`; one unit per acknowledged pair.
pub fn check(history: &History) -> Tally {
    let mut tally = Tally::default();
    for (backup_id, attempts) in per_backup(history) {
        for backup in &attempts {
            if !matches!(outcome(backup.attempt), Some(Outcome::Backup)) {
                continue;
            }
            let Some(expose) = acknowledging_expose(&attempts, *backup) else {
                continue;
            };
            let findings = check_window(&attempts, *backup, expose);
            if findings.is_empty() {
                tally.passed += 1;
            } else {
                tally.violations.push(Violation {
                    invariant: DURABILITY,
                    backup_id: Some(backup_id),
                    detail: format!(
                        "acknowledged by {} then {}: {}",
                        describe(*backup),
                        describe(expose),
                        findings.join("; ")
                    ),
                });
            }
        }
    }
    tally
}

/// The earliest-answered Expose that surely exposed `backup`'s row, if any.
fn acknowledging_expose<'a>(attempts: &[Indexed<'a>], backup: Indexed<'a>) -> Option<Indexed<'a>> {
    let Op::Backup { data, .. } = &backup.attempt.op else {
        return None;
    };
    let end_ms = window_end_ms(attempts, backup, |op| matches!(op, Op::Backup { .. }));
    attempts
        .iter()
        .copied()
        .filter(|expose| {
            matches!(&expose.attempt.op, Op::Expose { data: exposed } if exposed == data)
                && matches!(outcome(expose.attempt), Some(Outcome::Expose { ok: true }))
                && in_window(backup.attempt, expose.attempt, end_ms)
        })
        .min_by_key(|expose| answered_ms(expose.attempt))
}

/// What is wrong in the window of `backup` acknowledged by `expose`, if anything.
fn check_window(attempts: &[Indexed<'_>], backup: Indexed<'_>, expose: Indexed<'_>) -> Vec<String> {
    let Op::Backup {
        data,
        pin,
        max_tries,
    } = &backup.attempt.op
    else {
        return Vec::new();
    };
    let end_ms = window_end_ms(attempts, backup, |op| {
        matches!(op, Op::Backup { .. } | Op::Delete)
    });
    // Wrong guesses that may have been charged to the row before `read`.
    let wrong_guesses = |read: &Indexed<'_>| {
        attempts
            .iter()
            .filter(|guess| {
                guess.index != read.index
                    && matches!(&guess.attempt.op, Op::Restore { pin: guessed } if guessed != pin)
                    && possibly_between(guess.attempt, backup.attempt, read.attempt)
            })
            .count()
    };
    // Gone, though wrong guesses cannot have taken every try.
    let lost = |read: &Indexed<'_>| {
        let guesses = wrong_guesses(read);
        (guesses < *max_tries as usize).then(|| {
            format!(
                "backup lost: {} though at most {guesses} of its {max_tries} tries could have \
                 been used",
                describe(*read)
            )
        })
    };
    let mut findings = Vec::new();
    for read in attempts {
        if !definitely_before(expose.attempt, read.attempt)
            || !in_window(backup.attempt, read.attempt, end_ms)
        {
            continue;
        }
        let Some(answer) = outcome(read.attempt) else {
            continue;
        };
        let right_pin = matches!(&read.attempt.op, Op::Restore { pin: guessed } if guessed == pin);
        let finding = match (&read.attempt.op, answer) {
            (Op::Restore { .. }, Outcome::RestoreMissing) if right_pin => lost(read),
            (Op::Tries, Outcome::TriesMissing) => lost(read),
            (Op::Restore { .. }, Outcome::PinMismatch { .. }) if right_pin => {
                Some(format!("right PIN refused: {}", describe(*read)))
            }
            (Op::Restore { .. }, Outcome::Restored { data: got, .. }) if got != data => {
                Some(format!("restored other data: {}", describe(*read)))
            }
            (Op::Tries, Outcome::Tries { exposed: false, .. }) => Some(format!(
                "exposed backup reported not exposed: {}",
                describe(*read)
            )),
            _ => None,
        };
        findings.extend(finding);
    }
    findings
}

#[cfg(test)]
mod tests;
