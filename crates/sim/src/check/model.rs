//! The SVR2 database of one backup id, as a pure function: the specification the
//! linearizability search holds the group to.
//!
//! It must match `cloister_enclave::Database` exactly (SVR2 client protocol, "Semantics"):
//! Backup replaces the row (tries = max_tries, not exposed); Expose exposes a row whose data
//! is equal, else ERROR; Restore answers MISSING without an exposed row, the data and the
//! unchanged tries for the right PIN, and for a wrong PIN takes a try, deleting the row
//! (MISSING) when none is left, else PIN_MISMATCH; Delete is idempotent; Tries reports.
//! The tests below run both side by side on the same requests.

use crate::history::{Op, Outcome};

/// The stored row. It borrows its data and PIN from the Backup that wrote it, so model
/// states are small and cheap to compare (the search memoizes them). Two Backups with equal
/// fields write equal rows: the search need not tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row<'a> {
    /// Wrong guesses left.
    pub tries: u32,
    /// Whether Restore may answer it.
    pub exposed: bool,
    /// The secret.
    pub data: &'a [u8],
    /// The PIN (hash) that opens it.
    pub pin: &'a [u8],
}

/// Apply `op` to the row `state`: the next state and the answer the database gives.
pub fn step<'a>(state: Option<Row<'a>>, op: &'a Op) -> (Option<Row<'a>>, Outcome) {
    match op {
        Op::Backup {
            data,
            pin,
            max_tries,
        } => {
            let row = Row {
                tries: *max_tries,
                exposed: false,
                data,
                pin,
            };
            (Some(row), Outcome::Backup)
        }
        Op::Expose { data } => match state {
            Some(row) if row.data == data.as_slice() => {
                let exposed = Row {
                    exposed: true,
                    ..row
                };
                (Some(exposed), Outcome::Expose { ok: true })
            }
            _ => (state, Outcome::Expose { ok: false }),
        },
        Op::Restore { pin } => restore(state, pin),
        Op::Delete => (None, Outcome::Deleted),
        Op::Tries => match state {
            Some(row) => (
                state,
                Outcome::Tries {
                    tries: row.tries,
                    exposed: row.exposed,
                },
            ),
            None => (None, Outcome::TriesMissing),
        },
    }
}

fn restore<'a>(state: Option<Row<'a>>, pin: &[u8]) -> (Option<Row<'a>>, Outcome) {
    let Some(row) = state.filter(|row| row.exposed) else {
        return (state, Outcome::RestoreMissing);
    };
    if row.pin == pin {
        let restored = Outcome::Restored {
            data: row.data.to_vec(),
            tries: row.tries,
        };
        return (state, restored);
    }
    // The database stores at least one try (max_tries >= 1 is validated); saturating keeps a
    // malformed zero from wrapping.
    let tries = row.tries.saturating_sub(1);
    if tries == 0 {
        return (None, Outcome::RestoreMissing);
    }
    (Some(Row { tries, ..row }), Outcome::PinMismatch { tries })
}

/// True when `outcome` is an answer `op` can get at all (a Backup is never answered
/// PIN_MISMATCH): the search rejects other pairs before it starts.
pub fn answers(op: &Op, outcome: &Outcome) -> bool {
    matches!(
        (op, outcome),
        (Op::Backup { .. }, Outcome::Backup)
            | (Op::Expose { .. }, Outcome::Expose { .. })
            | (
                Op::Restore { .. },
                Outcome::Restored { .. } | Outcome::PinMismatch { .. } | Outcome::RestoreMissing
            )
            | (Op::Delete, Outcome::Deleted)
            | (Op::Tries, Outcome::Tries { .. } | Outcome::TriesMissing)
    )
}

/// True when `op` answered `outcome` changes no row, whatever the row was: Tries, a failed
/// Expose, a successful Restore. (A MISSING Restore may have taken the last try.)
pub fn is_read(op: &Op, outcome: &Outcome) -> bool {
    matches!(
        (op, outcome),
        (Op::Tries, _)
            | (Op::Expose { .. }, Outcome::Expose { ok: false })
            | (Op::Restore { .. }, Outcome::Restored { .. })
    )
}

#[cfg(test)]
mod tests {
    use cloister_enclave::Database;

    use super::*;
    use crate::check::testing::database_answer;
    use crate::rng::SimRng;

    const ID: [u8; 16] = [9; 16];

    /// A fixed pseudo-random op sequence over two data values, two PINs and small tries.
    fn ops(seed: u64, count: usize) -> Vec<Op> {
        let mut rng = SimRng::new(seed);
        let mut next = move || rng.next_u64();
        (0..count)
            .map(|_| {
                let value = next();
                let byte = (value >> 8) as u8 % 2;
                match value % 6 {
                    0 => Op::Backup {
                        data: vec![byte; 16],
                        pin: vec![byte; 32],
                        max_tries: 1 + (value >> 16) as u32 % 4,
                    },
                    1 => Op::Expose {
                        data: vec![byte; 16],
                    },
                    2 | 3 => Op::Restore {
                        pin: vec![byte; 32],
                    },
                    4 => Op::Delete,
                    _ => Op::Tries,
                }
            })
            .collect()
    }

    // SVR2 client protocol, "Semantics": the model answers as the real database does.
    #[test]
    fn model_matches_the_database() {
        let mut statuses = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let ops = ops(seed, 40);
            let mut database = Database::default();
            let mut state = None;
            for (position, op) in ops.iter().enumerate() {
                let real = database_answer(&mut database, &ID, op);
                let (next, answer) = step(state, op);
                assert_eq!(answer, real, "seed {seed} op {position} {op:?}");
                assert!(answers(op, &answer));
                if is_read(op, &answer) {
                    assert_eq!(
                        next, state,
                        "seed {seed} op {position}: a read changed the row"
                    );
                }
                statuses.insert(format!("{answer:?}").chars().take(8).collect::<String>());
                state = next;
            }
        }
        // Every kind of answer came up, so the comparison covered every rule.
        for kind in [
            "Backup", "Expose {", "Restored", "PinMisma", "RestoreM", "Deleted",
        ] {
            assert!(
                statuses.contains(kind),
                "{kind} never answered: {statuses:?}"
            );
        }
        assert!(statuses.contains("Tries { ") && statuses.contains("TriesMis"));
    }

    #[test]
    fn wrong_pin_on_last_try_deletes_the_row() {
        let backup = Op::Backup {
            data: vec![1; 16],
            pin: vec![1; 32],
            max_tries: 1,
        };
        let (state, _) = step(None, &backup);
        let expose = Op::Expose { data: vec![1; 16] };
        let (state, answer) = step(state, &expose);
        assert_eq!(answer, Outcome::Expose { ok: true });
        let wrong = Op::Restore { pin: vec![2; 32] };
        let (state, answer) = step(state, &wrong);
        assert_eq!((state, answer), (None, Outcome::RestoreMissing));
    }

    #[test]
    fn answers_rejects_outcomes_of_another_operation() {
        assert!(!answers(&Op::Delete, &Outcome::Backup));
        assert!(!answers(&Op::Tries, &Outcome::RestoreMissing));
        assert!(answers(&Op::Tries, &Outcome::TriesMissing));
    }
}
