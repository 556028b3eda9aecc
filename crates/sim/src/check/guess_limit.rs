//! Guess limit: after a Backup with `max_tries = T`, at most `T - 1` wrong guesses answer
//! PIN_MISMATCH (the `T`-th takes the last try, deletes the row and answers MISSING), and the
//! tries each answer reports only go down.
//!
//! For each Backup `B` answered OK, the checker looks at the attempts that surely follow `B`
//! (invoked after `B` was answered) and that no other Backup attempt (answered or not) could
//! precede. Any row such an attempt sees is `B`'s: rows come only from Backups. On that row:
//! - wrong-PIN Restores answered PIN_MISMATCH number at most `T - 1`, and report distinct tries
//!   (each took a try);
//! - every tries count it reports (PIN_MISMATCH, OK restore, Tries) is at most `T` (1 to
//!   `T - 1` for a PIN_MISMATCH), and when one answer surely precedes another the later
//!   reports no more tries, and strictly fewer when it is a PIN_MISMATCH.
//!
//! Ambiguous wrong guesses can only take tries, which none of these rules forbids, so the
//! checker holds whatever the faults. A Backup whose window another Backup could cut is
//! judged only on the attempts before the cut.

use std::collections::BTreeMap;

use super::{
    GUESS_LIMIT, Indexed, Tally, Violation, definitely_before, describe, describe_all, in_window,
    outcome, per_backup, window_end_ms,
};
use crate::history::{History, Op, Outcome};

/// Check every Backup answered OK in `history`; one unit per such Backup.
pub fn check(history: &History) -> Tally {
    let mut tally = Tally::default();
    for (backup_id, attempts) in per_backup(history) {
        for backup in &attempts {
            let acknowledged = matches!(backup.attempt.op, Op::Backup { .. })
                && matches!(outcome(backup.attempt), Some(Outcome::Backup));
            if !acknowledged {
                continue;
            }
            let findings = check_backup(&attempts, *backup);
            if findings.is_empty() {
                tally.passed += 1;
            } else {
                tally.violations.push(Violation {
                    invariant: GUESS_LIMIT,
                    backup_id: Some(backup_id),
                    detail: format!("after {}: {}", describe(*backup), findings.join("; ")),
                });
            }
        }
    }
    tally
}

/// A tries count some answer reported on the backup's row.
#[derive(Clone, Copy)]
struct Observation<'a> {
    at: Indexed<'a>,
    tries: u32,
    /// A wrong guess answered PIN_MISMATCH (it took a try).
    wrong_guess: bool,
}

/// What is wrong after the acknowledged `backup`, if anything.
fn check_backup(attempts: &[Indexed<'_>], backup: Indexed<'_>) -> Vec<String> {
    let Op::Backup { pin, max_tries, .. } = &backup.attempt.op else {
        return Vec::new();
    };
    let observations = observations(attempts, backup, pin);
    let wrong: Vec<Observation<'_>> = observations
        .iter()
        .copied()
        .filter(|observation| observation.wrong_guess)
        .collect();
    let mut findings = Vec::new();
    if wrong.len() as u64 >= u64::from(*max_tries) {
        let involved: Vec<Indexed<'_>> = wrong.iter().map(|observation| observation.at).collect();
        findings.push(format!(
            "{} wrong guesses answered PIN_MISMATCH, but max_tries {max_tries} allows {} \
             (the last try answers MISSING): {}",
            wrong.len(),
            max_tries.saturating_sub(1),
            describe_all(&involved)
        ));
    }
    let mut by_tries: BTreeMap<u32, Vec<Indexed<'_>>> = BTreeMap::new();
    for observation in &wrong {
        by_tries
            .entry(observation.tries)
            .or_default()
            .push(observation.at);
    }
    if let Some((tries, repeated)) = by_tries.iter().find(|(_, at)| at.len() > 1) {
        findings.push(format!(
            "{} wrong guesses all left {tries} tries (a wrong guess was not charged): {}",
            repeated.len(),
            describe_all(repeated)
        ));
    }
    // A wrong guess leaves 1..=T-1 tries; any other answer at most T.
    let out_of_range = |observation: &&Observation<'_>| {
        observation.tries > *max_tries
            || (observation.wrong_guess
                && (observation.tries == 0 || observation.tries >= *max_tries))
    };
    if let Some(outside) = observations.iter().find(out_of_range) {
        findings.push(format!(
            "{} reports tries out of range for max_tries {max_tries}",
            describe(outside.at)
        ));
    }
    if let Some(finding) = first_increase(&observations) {
        findings.push(finding);
    }
    findings
}

/// The tries reported on `backup`'s row by attempts no other Backup could precede.
fn observations<'a>(
    attempts: &[Indexed<'a>],
    backup: Indexed<'a>,
    backup_pin: &[u8],
) -> Vec<Observation<'a>> {
    let end_ms = window_end_ms(attempts, backup, |op| matches!(op, Op::Backup { .. }));
    let on_row = |at: &Indexed<'_>| in_window(backup.attempt, at.attempt, end_ms);
    attempts
        .iter()
        .filter(|at| on_row(at))
        .filter_map(|at| {
            let (tries, wrong_guess) = match (&at.attempt.op, outcome(at.attempt)?) {
                (Op::Restore { pin }, Outcome::PinMismatch { tries }) if pin != backup_pin => {
                    (*tries, true)
                }
                (Op::Restore { .. }, Outcome::Restored { tries, .. }) => (*tries, false),
                (Op::Tries, Outcome::Tries { tries, .. }) => (*tries, false),
                _ => return None,
            };
            Some(Observation {
                at: *at,
                tries,
                wrong_guess,
            })
        })
        .collect()
}

/// Two answers in a known order where the later reports more tries (or as many, after a
/// wrong guess took one).
fn first_increase(observations: &[Observation<'_>]) -> Option<String> {
    observations.iter().find_map(|later| {
        observations.iter().find_map(|earlier| {
            if !definitely_before(earlier.at.attempt, later.at.attempt) {
                return None;
            }
            let rose = later.tries > earlier.tries;
            let not_charged = later.wrong_guess && later.tries == earlier.tries;
            (rose || not_charged).then(|| {
                format!(
                    "tries went from {} to {}{}: {} then {}",
                    earlier.tries,
                    later.tries,
                    if rose { "" } else { " on a wrong guess" },
                    describe(earlier.at),
                    describe(later.at)
                )
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testing::*;

    fn violations(script: &Script) -> Vec<Violation> {
        check(&script.history).violations
    }

    // SVR2 client protocol, "Semantics": max_tries wrong guesses, the last one deletes.
    #[test]
    fn exhausting_the_tries_passes() {
        let mut script = Script::default();
        script.sequence(
            0,
            vec![
                (backup(1, 1, 3), Outcome::Backup),
                (expose(1), EXPOSED),
                (restore(9), Outcome::PinMismatch { tries: 2 }),
                (
                    Op::Tries,
                    Outcome::Tries {
                        tries: 2,
                        exposed: true,
                    },
                ),
                (restore(9), Outcome::PinMismatch { tries: 1 }),
                (restore(9), Outcome::RestoreMissing),
                (restore(1), Outcome::RestoreMissing),
                // A new Backup starts a new count.
                (backup(2, 2, 2), Outcome::Backup),
                (expose(2), EXPOSED),
                (restore(9), Outcome::PinMismatch { tries: 1 }),
                (restore(2), restored(2, 1)),
            ],
        );
        let tally = check(&script.history);
        assert_eq!(tally.violations, vec![]);
        assert_eq!(tally.passed, 2);
    }

    #[test]
    fn a_concurrent_backup_with_more_tries_is_not_blamed_on_the_first() {
        // B1 (2 tries) and B2 (5 tries) overlap; B2 applied last, so four wrong guesses may
        // all be charged to B2's row.
        let mut script = Script::default();
        script
            .call(backup(1, 1, 2), 0, 20, Outcome::Backup)
            .call_by(1, backup(2, 2, 5), 5, 25, Outcome::Backup)
            .call(expose(2), 30, 35, EXPOSED);
        for (step, tries) in (1..=4).rev().enumerate() {
            let at = 40 + 10 * step as u64;
            script.call(restore(9), at, at + 5, Outcome::PinMismatch { tries });
        }
        assert_eq!(violations(&script), vec![]);
    }

    #[test]
    fn an_ambiguous_backup_may_have_reset_the_tries() {
        let mut script = Script::default();
        script
            .sequence(
                0,
                vec![(backup(1, 1, 2), Outcome::Backup), (expose(1), EXPOSED)],
            )
            .lost(backup(1, 1, 2), 30)
            .sequence(
                40,
                vec![
                    (restore(9), Outcome::PinMismatch { tries: 1 }),
                    (restore(9), Outcome::PinMismatch { tries: 1 }),
                ],
            );
        // The ambiguous Backup may have applied between the two guesses.
        assert_eq!(violations(&script), vec![]);
    }

    #[test]
    fn more_mismatches_than_max_tries_allow_are_caught() {
        let mut script = Script::default();
        script.sequence(
            0,
            vec![
                (backup(1, 1, 2), Outcome::Backup),
                (expose(1), EXPOSED),
                (restore(9), Outcome::PinMismatch { tries: 1 }),
                (restore(8), Outcome::PinMismatch { tries: 1 }),
                (restore(7), Outcome::PinMismatch { tries: 1 }),
            ],
        );
        let found = violations(&script);
        assert_eq!(found.len(), 1, "{found:?}");
        let violation = &found[0];
        assert_eq!(violation.invariant, GUESS_LIMIT);
        assert_eq!(violation.backup_id, Some(ID));
        let text = violation.to_string();
        assert!(text.contains(&hex::encode(ID)), "{text}");
        assert!(
            text.contains("3 wrong guesses answered PIN_MISMATCH"),
            "{text}"
        );
        assert!(text.contains("max_tries 2 allows 1"), "{text}");
        assert!(text.contains("all left 1 tries"), "{text}");
        assert!(
            text.contains("#2") && text.contains("#3") && text.contains("#4"),
            "{text}"
        );
    }

    #[test]
    fn a_repeated_tries_value_is_caught_even_among_concurrent_guesses() {
        // Two overlapping wrong guesses cannot both leave 4 tries.
        let mut script = Script::default();
        script
            .sequence(
                0,
                vec![(backup(1, 1, 5), Outcome::Backup), (expose(1), EXPOSED)],
            )
            .call(restore(9), 30, 50, Outcome::PinMismatch { tries: 4 })
            .call_by(1, restore(8), 31, 49, Outcome::PinMismatch { tries: 4 });
        let found = violations(&script);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].detail.contains("2 wrong guesses all left 4 tries"),
            "{found:?}"
        );
    }

    #[test]
    fn tries_going_back_up_is_caught() {
        let mut script = Script::default();
        script.sequence(
            0,
            vec![
                (backup(1, 1, 5), Outcome::Backup),
                (expose(1), EXPOSED),
                (restore(9), Outcome::PinMismatch { tries: 4 }),
                (
                    Op::Tries,
                    Outcome::Tries {
                        tries: 5,
                        exposed: true,
                    },
                ),
            ],
        );
        let found = violations(&script);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].detail.contains("tries went from 4 to 5"),
            "{found:?}"
        );
    }

    #[test]
    fn more_tries_than_the_backup_allowed_is_caught() {
        let mut script = Script::default();
        script.sequence(
            0,
            vec![
                (backup(1, 1, 3), Outcome::Backup),
                (
                    Op::Tries,
                    Outcome::Tries {
                        tries: 7,
                        exposed: false,
                    },
                ),
            ],
        );
        let found = violations(&script);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].detail.contains("#1 client 0 Tries"), "{found:?}");
        assert!(
            found[0].detail.contains("out of range for max_tries 3"),
            "{found:?}"
        );
    }

    #[test]
    fn a_mismatch_that_took_no_try_is_caught() {
        let mut script = Script::default();
        script.sequence(
            0,
            vec![
                (backup(1, 1, 4), Outcome::Backup),
                (expose(1), EXPOSED),
                (restore(9), Outcome::PinMismatch { tries: 4 }),
            ],
        );
        let found = violations(&script);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].detail.contains("#2 client 0 Restore"), "{found:?}");
        assert!(
            found[0].detail.contains("out of range for max_tries 4"),
            "{found:?}"
        );
    }

    #[test]
    fn a_skipped_tries_value_is_left_to_linearizability() {
        // One wrong guess charged twice (5 -> 3) breaks no guess-limit rule: an ambiguous
        // guess could do the same. The linearizability checker catches it (its tests).
        let mut script = Script::default();
        script.sequence(
            0,
            vec![
                (backup(1, 1, 5), Outcome::Backup),
                (expose(1), EXPOSED),
                (restore(9), Outcome::PinMismatch { tries: 3 }),
            ],
        );
        assert_eq!(violations(&script), vec![]);
    }
}
