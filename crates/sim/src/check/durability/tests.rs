//! Durability checker: correct histories pass (conservatively), lost and stale backups fail.

use super::*;
use crate::check::testing::*;

fn violations(script: &Script) -> Vec<Violation> {
    check(&script.history).violations
}

// SVR2 client protocol, "Semantics": Backup then Expose makes the secret restorable.
#[test]
fn an_acknowledged_backup_restores_until_deleted() {
    let mut script = Script::default();
    script.sequence(
        0,
        vec![
            (backup(1, 1, 3), Outcome::Backup),
            (expose(1), EXPOSED),
            (restore(1), restored(1, 3)),
            (restore(9), Outcome::PinMismatch { tries: 2 }),
            (
                Op::Tries,
                Outcome::Tries {
                    tries: 2,
                    exposed: true,
                },
            ),
            (restore(1), restored(1, 2)),
            (Op::Delete, Outcome::Deleted),
            (restore(1), Outcome::RestoreMissing),
            (Op::Tries, Outcome::TriesMissing),
        ],
    );
    let tally = check(&script.history);
    assert_eq!(tally.violations, vec![]);
    assert_eq!(tally.passed, 1);
}

#[test]
fn used_up_tries_excuse_missing() {
    let mut script = Script::default();
    script.sequence(
        0,
        vec![
            (backup(1, 1, 2), Outcome::Backup),
            (expose(1), EXPOSED),
            (restore(9), Outcome::PinMismatch { tries: 1 }),
            (restore(9), Outcome::RestoreMissing),
            (restore(1), Outcome::RestoreMissing),
        ],
    );
    assert_eq!(violations(&script), vec![]);
}

#[test]
fn an_ambiguous_wrong_guess_may_have_used_the_last_try() {
    let mut script = Script::default();
    script
        .sequence(
            0,
            vec![(backup(1, 1, 1), Outcome::Backup), (expose(1), EXPOSED)],
        )
        .lost(restore(9), 30)
        .call(restore(1), 40, 45, Outcome::RestoreMissing);
    assert_eq!(violations(&script), vec![]);
}

#[test]
fn an_ambiguous_delete_or_backup_may_explain_what_follows() {
    let mut deleted = Script::default();
    deleted
        .sequence(
            0,
            vec![(backup(1, 1, 3), Outcome::Backup), (expose(1), EXPOSED)],
        )
        .lost(Op::Delete, 30)
        .call(restore(1), 40, 45, Outcome::RestoreMissing);
    assert_eq!(violations(&deleted), vec![]);

    let mut replaced = Script::default();
    replaced
        .sequence(
            0,
            vec![(backup(1, 1, 3), Outcome::Backup), (expose(1), EXPOSED)],
        )
        .lost(backup(2, 1, 3), 30)
        .call(restore(1), 40, 45, Outcome::RestoreMissing)
        .call(
            Op::Tries,
            50,
            55,
            Outcome::Tries {
                tries: 3,
                exposed: false,
            },
        );
    assert_eq!(violations(&replaced), vec![]);
}

#[test]
fn concurrent_backups_are_not_acknowledged() {
    // The Expose may have exposed either row; the later Backup leaves its row unexposed.
    let mut script = Script::default();
    script
        .call(backup(1, 1, 3), 0, 20, Outcome::Backup)
        .call_by(1, backup(1, 2, 3), 5, 25, Outcome::Backup)
        .call(expose(1), 30, 35, EXPOSED)
        .call(restore(1), 40, 45, Outcome::PinMismatch { tries: 2 });
    let tally = check(&script.history);
    assert_eq!(tally.violations, vec![]);
    assert_eq!(tally.passed, 0);
}

#[test]
fn a_lost_acknowledged_backup_is_caught() {
    let mut script = Script::default();
    script.sequence(
        0,
        vec![
            (backup(1, 1, 3), Outcome::Backup),
            (expose(1), EXPOSED),
            (restore(9), Outcome::PinMismatch { tries: 2 }),
            (restore(1), Outcome::RestoreMissing),
        ],
    );
    let found = violations(&script);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].invariant, DURABILITY);
    let text = found[0].to_string();
    assert!(text.contains("backup lost: #3"), "{text}");
    assert!(text.contains("at most 1 of its 3 tries"), "{text}");
}

#[test]
fn tries_missing_after_acknowledgement_is_caught() {
    let mut script = Script::default();
    script.sequence(
        0,
        vec![
            (backup(1, 1, 3), Outcome::Backup),
            (expose(1), EXPOSED),
            (Op::Tries, Outcome::TriesMissing),
        ],
    );
    let found = violations(&script);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].detail.contains("backup lost: #2"), "{found:?}");
}

#[test]
fn a_stale_read_is_caught() {
    // The newer backup was acknowledged; the restore returns the overwritten data.
    let mut script = Script::default();
    script.sequence(
        0,
        vec![
            (backup(1, 1, 3), Outcome::Backup),
            (expose(1), EXPOSED),
            (backup(2, 1, 3), Outcome::Backup),
            (expose(2), EXPOSED),
            (restore(1), restored(1, 3)),
        ],
    );
    let found = violations(&script);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].detail.contains("restored other data: #4"),
        "{found:?}"
    );
    assert!(found[0].detail.contains("acknowledged by #2"), "{found:?}");
}

#[test]
fn a_refused_right_pin_and_an_unexposed_report_are_caught() {
    let mut script = Script::default();
    script.sequence(
        0,
        vec![
            (backup(1, 1, 3), Outcome::Backup),
            (expose(1), EXPOSED),
            (restore(1), Outcome::PinMismatch { tries: 2 }),
            (
                Op::Tries,
                Outcome::Tries {
                    tries: 2,
                    exposed: false,
                },
            ),
        ],
    );
    let found = violations(&script);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].detail.contains("right PIN refused: #2"),
        "{found:?}"
    );
    assert!(
        found[0].detail.contains("reported not exposed: #3"),
        "{found:?}"
    );
}
