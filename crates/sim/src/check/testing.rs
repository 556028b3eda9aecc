//! Test helpers: short ways to write histories on one backup id.

use cloister_enclave::Database;

use crate::client::{outcome_of, request_for};
use crate::history::{BackupId, History, Op, Outcome};

pub(crate) const ID: BackupId = [0xab; 16];

pub(crate) fn data(value: u8) -> Vec<u8> {
    vec![value; 16]
}

pub(crate) fn pin(value: u8) -> Vec<u8> {
    vec![value; 32]
}

pub(crate) fn backup(value: u8, pin_value: u8, max_tries: u32) -> Op {
    Op::Backup {
        data: data(value),
        pin: pin(pin_value),
        max_tries,
    }
}

pub(crate) fn expose(value: u8) -> Op {
    Op::Expose { data: data(value) }
}

pub(crate) fn restore(pin_value: u8) -> Op {
    Op::Restore {
        pin: pin(pin_value),
    }
}

pub(crate) fn restored(value: u8, tries: u32) -> Outcome {
    Outcome::Restored {
        data: data(value),
        tries,
    }
}

pub(crate) const EXPOSED: Outcome = Outcome::Expose { ok: true };
pub(crate) const NOT_EXPOSED: Outcome = Outcome::Expose { ok: false };

/// Builds a history on [`ID`] (client 0 unless said otherwise).
#[derive(Default)]
pub(crate) struct Script {
    pub(crate) history: History,
}

impl Script {
    /// An attempt invoked at `invoked_ms` and answered `outcome` at `answered_ms`.
    pub(crate) fn call(
        &mut self,
        op: Op,
        invoked_ms: u64,
        answered_ms: u64,
        outcome: Outcome,
    ) -> &mut Self {
        self.call_by(0, op, invoked_ms, answered_ms, outcome)
    }

    pub(crate) fn call_by(
        &mut self,
        client: u32,
        op: Op,
        invoked_ms: u64,
        answered_ms: u64,
        outcome: Outcome,
    ) -> &mut Self {
        let index = self.history.invoke(client, ID, op, invoked_ms);
        self.history.answer(index, outcome, answered_ms);
        self
    }

    /// An attempt invoked at `invoked_ms` and never answered.
    pub(crate) fn lost(&mut self, op: Op, invoked_ms: u64) -> &mut Self {
        self.history.invoke(0, ID, op, invoked_ms);
        self
    }

    /// Sequential calls one after another, 10 ms each, from `start_ms`.
    pub(crate) fn sequence(&mut self, start_ms: u64, calls: Vec<(Op, Outcome)>) -> &mut Self {
        for (step, (op, outcome)) in calls.into_iter().enumerate() {
            let invoked_ms = start_ms + 10 * step as u64;
            self.call(op, invoked_ms, invoked_ms + 5, outcome);
        }
        self
    }
}

/// What the real database answers to `op` on `id`.
pub(crate) fn database_answer(database: &mut Database, id: &BackupId, op: &Op) -> Outcome {
    let response = database.apply(id, &request_for(op)).unwrap();
    outcome_of(op, &response).unwrap()
}
