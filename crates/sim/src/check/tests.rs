//! Randomized tests of the checkers together, on concurrent histories with ambiguous
//! attempts:
//! - histories a correct group produces (the real database, each attempt applied at one
//!   instant between its invocation and its answer, lost attempts applied late or never)
//!   never fail any checker;
//! - histories with one answer changed fail linearizability often, and whenever the
//!   guess-limit or durability checker fails one, linearizability fails it too (they are
//!   sound with respect to the model, not only on the cases their unit tests show);
//! - groups with the enclave's injectable bugs are caught in many runs;
//! - the search's verdict equals a brute-force search's on small histories.

use generate::{Bug, buggy_history, buggy_history_of, plan, plan_lossy, run};

use super::*;
use crate::history::{Attempt, History, Outcome};
use crate::rng::SimRng;

mod generate;

fn correct_history(seed: u64) -> History {
    let mut rng = SimRng::new(seed);
    let ids = [[1; 16], [2; 16]];
    let planned = plan(&mut rng, &ids, 4, 12);
    run(&planned)
}

#[test]
fn correct_concurrent_histories_pass_every_checker() {
    let mut totals = CheckReport::default();
    for seed in 0..300 {
        let history = correct_history(seed);
        let report = check_history(&history);
        assert!(report.is_ok(), "seed {seed}: {report}\n{history:#?}");
        totals.guess_limit_passed += report.guess_limit_passed;
        totals.durability_passed += report.durability_passed;
        totals.linearizability_passed += report.linearizability_passed;
        totals.linearizability_inconclusive += report.linearizability_inconclusive;
    }
    // The histories exercised every checker, and the search almost always concluded.
    assert!(totals.guess_limit_passed > 300, "{totals}");
    assert!(totals.durability_passed > 100, "{totals}");
    assert!(
        totals.linearizability_inconclusive * 50 < totals.linearizability_passed,
        "{totals}"
    );
}

#[test]
fn a_crowded_backup_id_linearizes_within_the_budget() {
    // Eight clients on one id, 64 attempts, every attempt overlapping several others: the
    // search's reductions (reads first, equal lost attempts once, memo) keep it complete
    // and within budget.
    let (mut passed, mut inconclusive) = (0, 0);
    for seed in 0..40 {
        let mut rng = SimRng::new(seed);
        let history = run(&plan_lossy(&mut rng, &[[1; 16]], 8, 8, 20));
        let report = check_history(&history);
        assert!(report.is_ok(), "seed {seed}: {report}");
        passed += report.linearizability_passed;
        inconclusive += report.linearizability_inconclusive;
    }
    assert!(
        inconclusive * 10 <= passed,
        "{passed} passed, {inconclusive} inconclusive"
    );
}

/// Another answer `op` could get, different from `outcome`.
fn mutate(outcome: &Outcome, rng: &mut SimRng) -> Option<Outcome> {
    let tries = 1 + rng.below(3) as u32;
    let mutated = match outcome {
        Outcome::Backup | Outcome::Deleted => return None,
        Outcome::Expose { ok } => Outcome::Expose { ok: !ok },
        Outcome::Restored { data, tries: left } => match rng.below(3) {
            0 => Outcome::RestoreMissing,
            1 => Outcome::Restored {
                data: vec![data[0] ^ 3; data.len()],
                tries: *left,
            },
            _ => Outcome::PinMismatch { tries },
        },
        Outcome::PinMismatch { tries: left } => match rng.below(2) {
            0 => Outcome::PinMismatch { tries: left + 1 },
            _ => Outcome::RestoreMissing,
        },
        Outcome::RestoreMissing => Outcome::PinMismatch { tries },
        Outcome::Tries {
            tries: left,
            exposed,
        } => match rng.below(2) {
            0 => Outcome::Tries {
                tries: left + 1,
                exposed: *exposed,
            },
            _ => Outcome::TriesMissing,
        },
        Outcome::TriesMissing => Outcome::Tries {
            tries,
            exposed: true,
        },
    };
    (mutated != *outcome).then_some(mutated)
}

#[test]
fn one_changed_answer_is_caught_and_the_cheap_checkers_never_overreach() {
    let (mut mutated_runs, mut caught, mut cheap_caught) = (0, 0, 0);
    for seed in 0..300 {
        let mut history = correct_history(seed);
        let mut rng = SimRng::new(seed ^ 0x5eed);
        let answered: Vec<usize> = (0..history.attempts.len())
            .filter(|index| history.attempts[*index].answered.is_some())
            .collect();
        let Some(&target) = answered.get(rng.below(answered.len() as u64) as usize) else {
            continue;
        };
        let Some((_, outcome)) = history.attempts[target].answered.as_mut() else {
            continue;
        };
        let Some(changed) = mutate(outcome, &mut rng) else {
            continue;
        };
        *outcome = changed;
        mutated_runs += 1;
        let report = check_history(&history);
        let by = |invariant: &str| report.violations.iter().any(|v| v.invariant == invariant);
        if by(LINEARIZABILITY) {
            caught += 1;
        }
        if by(GUESS_LIMIT) || by(DURABILITY) {
            cheap_caught += 1;
            assert!(
                by(LINEARIZABILITY) || report.linearizability_inconclusive > 0,
                "seed {seed}: a cheap checker failed a linearizable history: {report}"
            );
        }
    }
    // Concurrency and lost attempts can explain some changed answers, not most.
    assert!(
        caught * 2 > mutated_runs,
        "caught {caught} of {mutated_runs}"
    );
    assert!(
        cheap_caught > 0,
        "the guess-limit and durability checkers never bit"
    );
}

#[test]
fn buggy_groups_are_caught() {
    // (bug, fewest runs caught of those where the bug changed an answer, in percent)
    for (bug, caught_percent_min) in [
        (Bug::TriesNotDecremented, 80),
        (Bug::EntryAppliedTwice, 15),
        (Bug::CancelledAnsweredAsSuccess, 5),
    ] {
        let (mut manifested, mut caught, mut by_guess_limit) = (0, 0, 0);
        for seed in 0..300 {
            let history = buggy_history(seed, bug);
            let mut rng = SimRng::new(seed);
            let correct = run(&plan_lossy(&mut rng, &[[1; 16]], 3, 12, 12));
            if history.attempts == correct.attempts {
                continue;
            }
            manifested += 1;
            let report = check_history(&history);
            caught += u32::from(!report.is_ok());
            let by = |invariant: &str| report.violations.iter().any(|v| v.invariant == invariant);
            by_guess_limit += u32::from(by(GUESS_LIMIT));
        }
        // Many changed answers are explained by concurrency or a lost attempt (the search
        // agrees with brute force on that, below); the rest must be caught.
        assert!(
            caught * 100 >= caught_percent_min * manifested && caught > 0,
            "{bug:?}: caught {caught} of {manifested}"
        );
        if let Bug::TriesNotDecremented = bug {
            assert!(by_guess_limit > 0, "the guess-limit checker never bit");
        }
    }
}

/// Linearizable by brute force: every order that respects real time, every subset of lost
/// attempts; no memo, no reductions. Only for a handful of attempts.
fn brute_force(attempts: &[&Attempt], placed: u32, state: Option<model::Row<'_>>) -> bool {
    let pending = |index: usize| placed & (1 << index) == 0;
    if (0..attempts.len()).all(|index| !pending(index) || attempts[index].answered.is_none()) {
        return true;
    }
    (0..attempts.len()).any(|index| {
        let attempt = attempts[index];
        let blocked = (0..attempts.len())
            .any(|other| pending(other) && definitely_before(attempts[other], attempt));
        if !pending(index) || blocked {
            return false;
        }
        let (next, answer) = model::step(state, &attempt.op);
        outcome(attempt).is_none_or(|recorded| *recorded == answer)
            && brute_force(attempts, placed | (1 << index), next)
    })
}

#[test]
fn the_search_agrees_with_brute_force() {
    let bugs = [
        None,
        Some(Bug::TriesNotDecremented),
        Some(Bug::EntryAppliedTwice),
        Some(Bug::CancelledAnsweredAsSuccess),
    ];
    let (mut linearizable, mut not) = (0, 0);
    for seed in 0..300 {
        let bug = bugs[seed as usize % bugs.len()];
        let mut rng = SimRng::new(seed);
        let planned = plan_lossy(&mut rng, &[[1; 16]], 3, 4, 4);
        let mut history = match bug {
            Some(bug) => buggy_history_of(planned, bug),
            None => run(&planned),
        };
        // And one changed answer in every other history.
        if seed % 2 == 1 {
            let index = rng.below(history.attempts.len() as u64) as usize;
            if let Some((_, outcome)) = history.attempts[index].answered.as_mut() {
                if let Some(changed) = mutate(outcome, &mut rng) {
                    *outcome = changed;
                }
            }
        }
        let attempts: Vec<&Attempt> = history.attempts.iter().collect();
        let expected = brute_force(&attempts, 0, None);
        let split = per_backup(&history);
        let verdict = linearizability::check_backup(&split[&[1; 16]], LINEARIZABILITY_STEPS_MAX);
        match verdict {
            linearizability::Verdict::Linearizable { .. } if expected => linearizable += 1,
            linearizability::Verdict::NotLinearizable { .. } if !expected => not += 1,
            other => panic!("seed {seed}: brute force says {expected}, search {other:?}"),
        }
    }
    assert!(
        linearizable > 100 && not > 50,
        "{linearizable} linearizable, {not} not"
    );
}
