//! A generator of histories: clients' attempts planned on a timeline, each applied at one
//! instant between its invocation and its answer (lost ones late or never), to the real
//! database or to the model with a bug.

use std::collections::BTreeMap;

use cloister_enclave::Database;

use crate::check::model;
use crate::check::testing::{backup, database_answer, expose, restore};
use crate::history::{BackupId, History, Op, Outcome};
use crate::rng::SimRng;

/// One attempt of a simulated correct run.
pub(super) struct Planned {
    client: u32,
    backup_id: BackupId,
    op: Op,
    invoked_ms: u64,
    /// When it took effect, if it did.
    applied_ms: Option<u64>,
    /// When it was answered; `None` for a lost attempt.
    answered_ms: Option<u64>,
    tie: u64,
    /// The answer a buggy group gives without applying it.
    forged: Option<Outcome>,
}

fn random_op(rng: &mut SimRng) -> Op {
    let data = 1 + rng.below(2) as u8;
    let pin = 1 + rng.below(3) as u8;
    match rng.below(10) {
        0 | 1 => backup(data, pin.min(2), 1 + rng.below(3) as u32),
        2 | 3 => expose(data),
        4..=7 => restore(pin),
        8 => Op::Delete,
        _ => Op::Tries,
    }
}

/// Plan each client's attempts one after another; gaps may be zero (same millisecond).
pub(super) fn plan(
    rng: &mut SimRng,
    ids: &[BackupId],
    clients: u32,
    per_client: usize,
) -> Vec<Planned> {
    plan_lossy(rng, ids, clients, per_client, 6)
}

pub(super) fn plan_lossy(
    rng: &mut SimRng,
    ids: &[BackupId],
    clients: u32,
    per_client: usize,
    lost_one_in: u64,
) -> Vec<Planned> {
    let mut planned = Vec::new();
    for client in 0..clients {
        let mut now_ms = rng.below(20);
        for _ in 0..per_client {
            let op = random_op(rng);
            let backup_id = ids[rng.below(ids.len() as u64) as usize];
            let invoked_ms = now_ms;
            let lost = rng.below(lost_one_in) == 0;
            let (applied_ms, answered_ms) = if lost {
                // Lost: applied never, or at any later instant (even long after).
                let applied = (rng.below(2) == 0).then(|| invoked_ms + rng.below(120));
                (applied, None)
            } else {
                let applied = invoked_ms + rng.below(15);
                (Some(applied), Some(applied + rng.below(15)))
            };
            now_ms = answered_ms.unwrap_or(invoked_ms + rng.below(30)) + rng.below(8);
            let tie = rng.next_u64();
            planned.push(Planned {
                client,
                backup_id,
                op,
                invoked_ms,
                applied_ms,
                answered_ms,
                tie,
                forged: None,
            });
        }
    }
    planned
}

/// Apply the planned attempts to the real database in effect order; record what clients saw.
pub(super) fn run(planned: &[Planned]) -> History {
    let mut database = Database::default();
    run_with(planned, |backup_id, op| {
        database_answer(&mut database, backup_id, op)
    })
}

/// Apply the planned attempts with `apply` in effect order; record what clients saw.
fn run_with<'a>(
    planned: &'a [Planned],
    mut apply: impl FnMut(&BackupId, &'a Op) -> Outcome,
) -> History {
    let mut by_effect: Vec<usize> = (0..planned.len())
        .filter(|index| planned[*index].applied_ms.is_some())
        .collect();
    by_effect.sort_by_key(|index| (planned[*index].applied_ms, planned[*index].tie));
    let mut answers: Vec<Option<Outcome>> = vec![None; planned.len()];
    for index in by_effect {
        let attempt = &planned[index];
        answers[index] = Some(apply(&attempt.backup_id, &attempt.op));
    }
    let mut by_invocation: Vec<usize> = (0..planned.len()).collect();
    by_invocation.sort_by_key(|index| (planned[*index].invoked_ms, planned[*index].client));
    let mut history = History::default();
    for index in by_invocation {
        let attempt = &planned[index];
        let slot = history.invoke(
            attempt.client,
            attempt.backup_id,
            attempt.op.clone(),
            attempt.invoked_ms,
        );
        let outcome = answers[index].take().or_else(|| attempt.forged.clone());
        if let (Some(answered_ms), Some(outcome)) = (attempt.answered_ms, outcome) {
            history.answer(slot, outcome, answered_ms);
        }
    }
    history
}

/// Bugs a group could have (as the enclave's `InjectedBug`s), played on the model.
#[derive(Debug, Clone, Copy)]
pub(super) enum Bug {
    /// A wrong guess answers PIN_MISMATCH but its try is given back.
    TriesNotDecremented,
    /// Every operation applies twice; the second answer is given.
    EntryAppliedTwice,
    /// A Backup that never applied is answered OK.
    CancelledAnsweredAsSuccess,
}

pub(super) fn buggy_history(seed: u64, bug: Bug) -> History {
    let mut rng = SimRng::new(seed);
    buggy_history_of(plan_lossy(&mut rng, &[[1; 16]], 3, 12, 12), bug)
}

/// What a group with `bug` answers to `planned`.
pub(super) fn buggy_history_of(mut planned: Vec<Planned>, bug: Bug) -> History {
    if let Bug::CancelledAnsweredAsSuccess = bug {
        for attempt in &mut planned {
            let never_applied = attempt.applied_ms.is_none() && attempt.answered_ms.is_none();
            if never_applied && matches!(attempt.op, Op::Backup { .. }) {
                attempt.answered_ms = Some(attempt.invoked_ms + 10);
                attempt.forged = Some(Outcome::Backup);
            }
        }
    }
    let mut rows: BTreeMap<BackupId, model::Row<'_>> = BTreeMap::new();
    run_with(&planned, |backup_id, op| {
        let state = rows.get(backup_id).copied();
        let (mut next, mut answer) = model::step(state, op);
        match bug {
            Bug::TriesNotDecremented if matches!(answer, Outcome::PinMismatch { .. }) => {
                next = next.map(|row| model::Row {
                    tries: row.tries + 1,
                    ..row
                });
            }
            Bug::EntryAppliedTwice => (next, answer) = model::step(next, op),
            _ => {}
        }
        match next {
            Some(row) => rows.insert(*backup_id, row),
            None => rows.remove(backup_id),
        };
        answer
    })
}
