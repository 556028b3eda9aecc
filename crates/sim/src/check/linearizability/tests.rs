//! Linearizability search: correct sequential, concurrent and ambiguous histories pass;
//! each known bug is caught with a message naming the attempts; the budget bounds the work.

use super::*;
use crate::check::testing::*;
use crate::check::{LINEARIZABILITY_STEPS_MAX, per_backup};
use crate::history::{Op, Outcome};

fn verdict(script: &Script) -> Verdict {
    verdict_within(script, LINEARIZABILITY_STEPS_MAX)
}

fn verdict_within(script: &Script, steps_max: u64) -> Verdict {
    let split = per_backup(&script.history);
    check_backup(&split[&ID], steps_max)
}

fn assert_linearizable(script: &Script) {
    let verdict = verdict(script);
    assert!(
        matches!(verdict, Verdict::Linearizable { .. }),
        "{verdict:?}"
    );
}

/// The failure message, asserting there is one.
fn failure(script: &Script) -> String {
    match verdict(script) {
        Verdict::NotLinearizable { detail } => detail,
        other => panic!("expected a violation, got {other:?}"),
    }
}

// SVR2 client protocol, "Semantics": every rule in one sequential run.
#[test]
fn a_sequential_history_linearizes() {
    let mut script = Script::default();
    script.sequence(
        0,
        vec![
            (restore(1), Outcome::RestoreMissing),
            (backup(1, 1, 2), Outcome::Backup),
            (restore(1), Outcome::RestoreMissing),
            (expose(2), NOT_EXPOSED),
            (
                Op::Tries,
                Outcome::Tries {
                    tries: 2,
                    exposed: false,
                },
            ),
            (expose(1), EXPOSED),
            (restore(1), restored(1, 2)),
            (restore(9), Outcome::PinMismatch { tries: 1 }),
            (restore(1), restored(1, 1)),
            (restore(9), Outcome::RestoreMissing),
            (restore(1), Outcome::RestoreMissing),
            (Op::Tries, Outcome::TriesMissing),
            (backup(3, 3, 4), Outcome::Backup),
            (expose(3), EXPOSED),
            (Op::Delete, Outcome::Deleted),
            (restore(3), Outcome::RestoreMissing),
            (Op::Delete, Outcome::Deleted),
        ],
    );
    assert_linearizable(&script);
    let tally = check(&script.history, LINEARIZABILITY_STEPS_MAX);
    assert_eq!(
        (tally.passed, tally.inconclusive, tally.violations),
        (1, 0, vec![])
    );
}

#[test]
fn concurrent_backups_linearize_in_either_order() {
    // The later-invoked Backup may have applied first.
    let mut script = Script::default();
    script
        .call(backup(1, 1, 3), 0, 30, Outcome::Backup)
        .call_by(1, backup(2, 2, 3), 10, 20, Outcome::Backup)
        .call(expose(1), 40, 45, EXPOSED)
        .call(restore(1), 50, 55, restored(1, 3));
    assert_linearizable(&script);
}

#[test]
fn concurrent_guesses_linearize_in_the_order_their_answers_imply() {
    let mut script = Script::default();
    script
        .sequence(
            0,
            vec![(backup(1, 1, 4), Outcome::Backup), (expose(1), EXPOSED)],
        )
        .call(restore(9), 30, 60, Outcome::PinMismatch { tries: 1 })
        .call_by(1, restore(8), 31, 61, Outcome::PinMismatch { tries: 3 })
        .call_by(2, restore(7), 32, 62, Outcome::PinMismatch { tries: 2 })
        .call_by(3, restore(1), 33, 63, restored(1, 2));
    assert_linearizable(&script);
}

#[test]
fn ambiguous_attempts_may_apply_or_not() {
    // Applied: the lost Backup's data is exposed later.
    let mut applied = Script::default();
    applied
        .sequence(0, vec![(backup(1, 1, 3), Outcome::Backup)])
        .lost(backup(2, 2, 3), 20)
        .call(expose(2), 40, 45, EXPOSED)
        .call(restore(2), 50, 55, restored(2, 3));
    assert_linearizable(&applied);

    // Not applied: the old row is still there.
    let mut not_applied = Script::default();
    not_applied
        .sequence(
            0,
            vec![(backup(1, 1, 3), Outcome::Backup), (expose(1), EXPOSED)],
        )
        .lost(backup(2, 2, 3), 20)
        .call(restore(1), 40, 45, restored(1, 3));
    assert_linearizable(&not_applied);

    // Applied late: after one read, before the next.
    let mut late = Script::default();
    late.sequence(
        0,
        vec![(backup(1, 1, 3), Outcome::Backup), (expose(1), EXPOSED)],
    )
    .lost(restore(9), 20)
    .call(restore(1), 40, 45, restored(1, 3))
    .call(restore(1), 50, 55, restored(1, 2));
    assert_linearizable(&late);
}

#[test]
fn tries_not_decremented_is_caught() {
    let mut script = Script::default();
    script.sequence(
        0,
        vec![
            (backup(1, 1, 3), Outcome::Backup),
            (expose(1), EXPOSED),
            (restore(9), Outcome::PinMismatch { tries: 2 }),
            (restore(9), Outcome::PinMismatch { tries: 2 }),
        ],
    );
    let detail = failure(&script);
    assert!(detail.contains("[#0, #1, #2]"), "{detail}");
    assert!(detail.contains("#3 client 0 Restore"), "{detail}");
    assert!(
        detail.contains("the model answers PIN_MISMATCH(tries 1)"),
        "{detail}"
    );
}

#[test]
fn an_entry_applied_twice_is_caught() {
    // One wrong guess took two tries: 5 -> 3.
    let mut script = Script::default();
    script.sequence(
        0,
        vec![
            (backup(1, 1, 5), Outcome::Backup),
            (expose(1), EXPOSED),
            (restore(9), Outcome::PinMismatch { tries: 3 }),
        ],
    );
    let detail = failure(&script);
    assert!(
        detail.contains("the model answers PIN_MISMATCH(tries 4)"),
        "{detail}"
    );

    // With an ambiguous guess in flight, the skip is explained.
    script.lost(restore(8), 15);
    assert_linearizable(&script);
}

#[test]
fn a_backup_acknowledged_but_never_applied_is_caught() {
    let mut script = Script::default();
    script.sequence(
        0,
        vec![(backup(1, 1, 3), Outcome::Backup), (expose(1), NOT_EXPOSED)],
    );
    let detail = failure(&script);
    assert!(detail.contains("the model answers OK"), "{detail}");
}

#[test]
fn a_lost_backup_and_a_stale_read_are_caught() {
    let mut lost = Script::default();
    lost.sequence(
        0,
        vec![
            (backup(1, 1, 3), Outcome::Backup),
            (expose(1), EXPOSED),
            (restore(1), Outcome::RestoreMissing),
        ],
    );
    assert!(failure(&lost).contains("#2 client 0 Restore"));

    // Stale: the newer Backup (not yet exposed) was acknowledged before the restore.
    let mut stale = Script::default();
    stale.sequence(
        0,
        vec![
            (backup(1, 1, 3), Outcome::Backup),
            (expose(1), EXPOSED),
            (backup(2, 1, 3), Outcome::Backup),
            (restore(1), restored(1, 3)),
        ],
    );
    let detail = failure(&stale);
    assert!(detail.contains("the model answers MISSING"), "{detail}");
}

#[test]
fn delete_then_restore_is_missing_and_not_otherwise() {
    let mut script = Script::default();
    script.sequence(
        0,
        vec![
            (backup(1, 1, 3), Outcome::Backup),
            (expose(1), EXPOSED),
            (Op::Delete, Outcome::Deleted),
            (restore(1), restored(1, 3)),
        ],
    );
    assert!(failure(&script).contains("the model answers MISSING"));
}

#[test]
fn malformed_attempts_are_reported() {
    let mut wrong_kind = Script::default();
    wrong_kind.call(Op::Delete, 0, 5, Outcome::Backup);
    assert!(failure(&wrong_kind).contains("answer of another operation: #0"));

    let mut backwards = Script::default();
    backwards.call(Op::Tries, 10, 5, Outcome::TriesMissing);
    assert!(failure(&backwards).contains("answered before it was invoked: #0"));
}

#[test]
fn the_budget_makes_a_pathological_history_inconclusive() {
    // Thirty concurrent ambiguous Backups, then an answer no subset and order of them can
    // explain: without the budget the search would visit about 2^30 placed sets.
    let mut script = Script::default();
    for value in 0..30u8 {
        script.lost(backup(value, value, 1 + u32::from(value)), u64::from(value));
    }
    script.call(
        Op::Tries,
        100,
        105,
        Outcome::Tries {
            tries: 99,
            exposed: true,
        },
    );
    assert_eq!(
        verdict_within(&script, 10_000),
        Verdict::Inconclusive { steps: 10_000 }
    );
    let tally = check(&script.history, 10_000);
    assert_eq!(
        (tally.passed, tally.inconclusive, tally.violations),
        (0, 1, vec![])
    );
}
