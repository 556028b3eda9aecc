//! Test helpers: short ways to write histories on one backup id.

use cloister_enclave::Database;
use cloister_proto::svr2::client::{
    BackupRequest, DeleteRequest, ExposeRequest, Request, RestoreRequest, TriesRequest,
    expose_response, request, response, restore_response, tries_response,
};

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

/// SplitMix64: a small deterministic generator for randomized tests.
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound > 0`; the tiny bias does not matter here).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// The request the enclave gets for `op`.
fn request(op: &Op) -> Request {
    let inner = match op.clone() {
        Op::Backup {
            data,
            pin,
            max_tries,
        } => request::Inner::Backup(BackupRequest {
            data,
            pin,
            max_tries,
        }),
        Op::Expose { data } => request::Inner::Expose(ExposeRequest { data }),
        Op::Restore { pin } => request::Inner::Restore(RestoreRequest { pin }),
        Op::Delete => request::Inner::Delete(DeleteRequest {}),
        Op::Tries => request::Inner::Tries(TriesRequest {}),
    };
    Request { inner: Some(inner) }
}

/// The enclave's answer, in the history's terms.
fn outcome(response: response::Inner) -> Outcome {
    match response {
        response::Inner::Backup(_) => Outcome::Backup,
        response::Inner::Expose(expose) => Outcome::Expose {
            ok: expose.status() == expose_response::Status::Ok,
        },
        response::Inner::Restore(restore) => match restore.status() {
            restore_response::Status::Ok => Outcome::Restored {
                data: restore.data,
                tries: restore.tries,
            },
            restore_response::Status::PinMismatch => Outcome::PinMismatch {
                tries: restore.tries,
            },
            restore_response::Status::Missing => Outcome::RestoreMissing,
            other => panic!("unexpected restore status {other:?}"),
        },
        response::Inner::Delete(_) => Outcome::Deleted,
        response::Inner::Tries(tries) => match tries.status() {
            tries_response::Status::Ok => Outcome::Tries {
                tries: tries.tries,
                exposed: tries.exposed,
            },
            _ => Outcome::TriesMissing,
        },
    }
}

/// What the real database answers to `op` on `id`.
pub(crate) fn database_answer(database: &mut Database, id: &BackupId, op: &Op) -> Outcome {
    let response = database.apply(id, &request(op)).unwrap();
    outcome(response.inner.unwrap())
}
