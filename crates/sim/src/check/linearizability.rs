//! Linearizability of each backup id's attempts against [`model`] (Wing & Gong's search
//! with Lowe's memo, "WGL").
//!
//! The search builds an order one attempt at a time, depth first. An attempt may come next
//! when no pending answered attempt was answered before it was invoked; the model's answer
//! must equal the recorded one. An ambiguous attempt (no answer) may be placed at any point
//! after its invocation, with whatever answer, or left out. The search stops at a step
//! budget and says [`Verdict::Inconclusive`] rather than hang: that is counted, not a
//! failure.
//!
//! Reductions, each keeping the search complete:
//! - memo: a node is skipped when one with the same placed answered attempts, the same row
//!   and a subset of its placed ambiguous attempts was explored (it had every option this
//!   one has);
//! - reads first: a pending read ([`model::is_read`]) that the row answers as recorded is
//!   the only move tried (moved to the front, any order stays valid);
//! - of pending ambiguous attempts with equal operations only the first is tried (they are
//!   interchangeable), and one that would change nothing is not placed.

use std::collections::BTreeMap;

use super::bits::Bits;
use super::model::{self, Row};
use super::{
    Indexed, LINEARIZABILITY, Tally, Violation, answered_ms, describe, describe_outcome, outcome,
    per_backup, short_hex,
};
use crate::history::{History, Op};

/// The search's answer for one backup id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Some order fits.
    Linearizable {
        /// Model steps the search took to find it.
        steps: u64,
    },
    /// The budget ran out first.
    Inconclusive {
        /// The budget.
        steps: u64,
    },
    /// No order fits, or an attempt is malformed.
    NotLinearizable {
        /// Why, naming the attempts.
        detail: String,
    },
}

/// Check every backup id of `history`, each with at most `steps_max` model steps.
pub fn check(history: &History, steps_max: u64) -> Tally {
    let mut tally = Tally::default();
    for (backup_id, attempts) in per_backup(history) {
        match check_backup(&attempts, steps_max) {
            Verdict::Linearizable { .. } => tally.passed += 1,
            Verdict::Inconclusive { .. } => tally.inconclusive += 1,
            Verdict::NotLinearizable { detail } => tally.violations.push(Violation {
                invariant: LINEARIZABILITY,
                backup_id: Some(backup_id),
                detail,
            }),
        }
    }
    tally
}

/// Search for an order of the attempts on one backup id (in any order; the search sorts
/// them by invocation).
pub fn check_backup(attempts: &[Indexed<'_>], steps_max: u64) -> Verdict {
    if let Some(detail) = malformed(attempts) {
        return Verdict::NotLinearizable { detail };
    }
    let mut ops = attempts.to_vec();
    ops.sort_by_key(|indexed| indexed.attempt.invoked_ms);
    Search::new(&ops, steps_max).run()
}

/// An attempt no order can explain: answered before it was sent, or with another
/// operation's answer.
fn malformed(attempts: &[Indexed<'_>]) -> Option<String> {
    attempts.iter().find_map(|indexed| {
        let (answered, outcome) = indexed.attempt.answered.as_ref()?;
        if *answered < indexed.attempt.invoked_ms {
            Some(format!(
                "answered before it was invoked: {}",
                describe(*indexed)
            ))
        } else if !model::answers(&indexed.attempt.op, outcome) {
            Some(format!(
                "answer of another operation: {}",
                describe(*indexed)
            ))
        } else {
            None
        }
    })
}

/// One level of the depth-first search: what is placed, the row it leaves, and the attempts
/// that may come next (tried in turn).
struct Frame<'a> {
    placed: Placed,
    state: Option<Row<'a>>,
    candidates: Vec<usize>,
    next: usize,
}

/// The attempts placed so far, answered and ambiguous apart (the memo compares them apart).
#[derive(Clone)]
struct Placed {
    answered: Bits,
    ambiguous: Bits,
}

impl Placed {
    fn contains(&self, position: usize) -> bool {
        self.answered.contains(position) || self.ambiguous.contains(position)
    }
}

struct Search<'h, 'a> {
    ops: &'h [Indexed<'a>],
    /// The attempts that must be placed (the answered ones).
    answered: Bits,
    steps_max: u64,
    steps: u64,
    /// Per (answered placed, row): the sets of ambiguous attempts placed with it. A node
    /// whose ambiguous set contains one of these has no more ways to go on than that one
    /// (every option it has, the other had too), so it need not be explored.
    visited: BTreeMap<(Bits, Option<Row<'a>>), Vec<Bits>>,
    /// The longest order found, for the failure message.
    deepest: Vec<usize>,
}

impl<'h, 'a> Search<'h, 'a> {
    fn new(ops: &'h [Indexed<'a>], steps_max: u64) -> Self {
        let mut answered = Bits::new(ops.len());
        for (position, op) in ops.iter().enumerate() {
            if op.attempt.answered.is_some() {
                answered.insert(position);
            }
        }
        Self {
            ops,
            answered,
            steps_max,
            steps: 0,
            visited: BTreeMap::new(),
            deepest: Vec::new(),
        }
    }

    /// The unplaced attempts that may come next: invoked no later than the earliest answer
    /// among the unplaced answered ones. Answered first: ambiguous ones are optional, so
    /// trying without them first finds most orders sooner. Of several ambiguous candidates
    /// with the same operation only the first: they are interchangeable from here on.
    fn candidates(&self, placed: &Placed) -> Vec<usize> {
        let unplaced = (0..self.ops.len()).filter(|position| !placed.contains(*position));
        let horizon = unplaced
            .clone()
            .filter_map(|position| answered_ms(self.ops[position].attempt))
            .min()
            .unwrap_or(u64::MAX);
        let (mut answered, ambiguous): (Vec<usize>, Vec<usize>) = unplaced
            .filter(|position| self.ops[*position].attempt.invoked_ms <= horizon)
            .partition(|position| self.answered.contains(*position));
        let mut distinct: Vec<&Op> = Vec::new();
        for position in ambiguous {
            let op = &self.ops[position].attempt.op;
            if !distinct.contains(&op) {
                distinct.push(op);
                answered.push(position);
            }
        }
        answered
    }

    fn frame(&self, placed: Placed, state: Option<Row<'a>>) -> Frame<'a> {
        let mut candidates = self.candidates(&placed);
        // A candidate whose recorded answer means it changed nothing (a read), and which the
        // row gives that answer now, can go first in any order that works from here: nothing
        // pending must precede it, and wherever that order placed it, it changed nothing
        // there either. So it is the only move worth trying.
        let read = candidates.iter().copied().find(|position| {
            let attempt = self.ops[*position].attempt;
            outcome(attempt).is_some_and(|recorded| {
                model::is_read(&attempt.op, recorded)
                    && model::step(state, &attempt.op).1 == *recorded
            })
        });
        if let Some(read) = read {
            candidates = vec![read];
        }
        Frame {
            placed,
            state,
            candidates,
            next: 0,
        }
    }

    /// Record a node; false when an equal or better one was seen before.
    fn visit(&mut self, placed: &Placed, state: Option<Row<'a>>) -> bool {
        let seen = self
            .visited
            .entry((placed.answered.clone(), state))
            .or_default();
        if seen
            .iter()
            .any(|fewer| placed.ambiguous.contains_all(fewer))
        {
            return false;
        }
        seen.retain(|more| !more.contains_all(&placed.ambiguous));
        seen.push(placed.ambiguous.clone());
        true
    }

    fn run(mut self) -> Verdict {
        let empty = Placed {
            answered: Bits::new(self.ops.len()),
            ambiguous: Bits::new(self.ops.len()),
        };
        if empty.answered.contains_all(&self.answered) {
            return Verdict::Linearizable { steps: 0 };
        }
        let mut stack = vec![self.frame(empty, None)];
        // path[i] is the attempt placed to go from stack[i] to stack[i + 1].
        let mut path: Vec<usize> = Vec::new();
        while let Some(top) = stack.last_mut() {
            let Some(&position) = top.candidates.get(top.next) else {
                stack.pop();
                path.pop();
                continue;
            };
            top.next += 1;
            self.steps += 1;
            if self.steps > self.steps_max {
                return Verdict::Inconclusive {
                    steps: self.steps_max,
                };
            }
            let attempt = self.ops[position].attempt;
            let (state, answer) = model::step(top.state, &attempt.op);
            let recorded = outcome(attempt);
            match recorded {
                Some(recorded) if *recorded != answer => continue,
                // An ambiguous attempt that changes nothing is as good as left out.
                None if state == top.state => continue,
                _ => {}
            }
            let mut placed = top.placed.clone();
            if recorded.is_some() {
                placed.answered.insert(position);
            } else {
                placed.ambiguous.insert(position);
            }
            if !self.visit(&placed, state) {
                continue;
            }
            path.push(position);
            if placed.answered.contains_all(&self.answered) {
                return Verdict::Linearizable { steps: self.steps };
            }
            if path.len() > self.deepest.len() {
                self.deepest.clone_from(&path);
            }
            let frame = self.frame(placed, state);
            stack.push(frame);
        }
        Verdict::NotLinearizable {
            detail: self.explain(),
        }
    }

    /// Why the longest order found could not go on.
    fn explain(&self) -> String {
        let mut placed = Placed {
            answered: Bits::new(self.ops.len()),
            ambiguous: Bits::new(self.ops.len()),
        };
        let mut state = None;
        for &position in &self.deepest {
            placed.answered.insert(position);
            state = model::step(state, &self.ops[position].attempt.op).0;
        }
        let order: Vec<String> = self
            .deepest
            .iter()
            .map(|position| format!("#{}", self.ops[*position].index))
            .collect();
        let row = match state {
            Some(row) => format!(
                "a row (data {}, pin {}) with {} tries, {}",
                short_hex(row.data),
                short_hex(row.pin),
                row.tries,
                if row.exposed {
                    "exposed"
                } else {
                    "not exposed"
                }
            ),
            None => "no row".into(),
        };
        let mut detail = format!(
            "no order of the {} attempts fits the SVR2 model; the longest order that does \
             ([{}]) leaves {row}, and then",
            self.ops.len(),
            order.join(", ")
        );
        const SHOWN_MAX: usize = 6;
        let blocked: Vec<String> = self
            .candidates(&placed)
            .into_iter()
            .filter_map(|position| {
                let op = self.ops[position];
                let recorded = outcome(op.attempt)?;
                let (_, answer) = model::step(state, &op.attempt.op);
                (answer != *recorded).then(|| {
                    format!(
                        " {} (the model answers {})",
                        describe(op),
                        describe_outcome(&answer)
                    )
                })
            })
            .take(SHOWN_MAX)
            .collect();
        if blocked.is_empty() {
            detail.push_str(" every way on leads to a dead end");
        }
        detail.push_str(&blocked.join(";"));
        detail
    }
}

#[cfg(test)]
mod tests;
