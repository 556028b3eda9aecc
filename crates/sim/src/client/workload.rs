//! The workload: which operation a client runs next, on which backup id, and how requests
//! and answers translate to the history's terms.

use cloister_proto::svr2::client::{
    BackupRequest, DeleteRequest, ExposeRequest, Request, Response, RestoreRequest, TriesRequest,
    backup_response, expose_response, request, response, restore_response, tries_response,
};

use super::Pending;
use crate::history::{BackupId, Op, Outcome};
use crate::rng::SimRng;
use crate::world::Sim;

/// Attempts on one backup id before it is retired for a fresh one (keeps each id's
/// history small enough for the linearizability search).
const ATTEMPTS_PER_KEY_MAX: u32 = 40;
/// Backup ids in use at once.
const KEYS_ACTIVE: usize = 6;

/// The backup ids clients share, and what the clients last stored under each.
#[derive(Default)]
pub(crate) struct Keys {
    pub(super) active: Vec<Key>,
}

pub(super) struct Key {
    pub(super) id: BackupId,
    pub(super) attempts: u32,
    data: Vec<u8>,
    pin: Vec<u8>,
}

impl Keys {
    fn fresh(&mut self, rng: &mut SimRng) -> Key {
        let mut id = [0; 16];
        id.copy_from_slice(&rng.bytes(16));
        Key {
            id,
            attempts: 0,
            data: Vec::new(),
            pin: rng.bytes(32),
        }
    }

    /// A key for the next operation (retiring one that has had its share).
    fn pick(&mut self, rng: &mut SimRng) -> usize {
        while self.active.len() < KEYS_ACTIVE {
            let key = self.fresh(rng);
            self.active.push(key);
        }
        let index = rng.index(self.active.len());
        if self.active[index].attempts >= ATTEMPTS_PER_KEY_MAX {
            self.active[index] = self.fresh(rng);
        }
        index
    }
}

impl Sim {
    /// Pick the next operation, the way a population of real users would mix them.
    pub(super) fn choose_operation(&mut self) -> Pending {
        let key_index = self.keys.pick(&mut self.rng);
        let roll = self.rng.below(100);
        let key = &self.keys.active[key_index];
        let op = if roll < 25 || key.data.is_empty() {
            let length = self.rng.between(16, 48) as usize;
            let data = self.rng.bytes(length);
            let pin = if self.rng.chance(200_000) {
                self.rng.bytes(32)
            } else {
                key.pin.clone()
            };
            let max_tries = self.rng.between(1, 5) as u32;
            let key = &mut self.keys.active[key_index];
            key.data = data.clone();
            key.pin = pin.clone();
            Op::Backup {
                data,
                pin,
                max_tries,
            }
        } else if roll < 45 {
            let data = if self.rng.chance(850_000) {
                key.data.clone()
            } else {
                self.rng.bytes(32)
            };
            Op::Expose { data }
        } else if roll < 82 {
            let pin = if self.rng.chance(600_000) {
                key.pin.clone()
            } else {
                self.rng.bytes(32)
            };
            Op::Restore { pin }
        } else if roll < 97 {
            Op::Tries
        } else {
            Op::Delete
        };
        Pending {
            backup_id: self.keys.active[key_index].id,
            op,
            attempts: 0,
        }
    }
}

pub(super) fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Backup { .. } => "backup",
        Op::Expose { .. } => "expose",
        Op::Restore { .. } => "restore",
        Op::Delete => "delete",
        Op::Tries => "tries",
    }
}

pub(crate) fn request_for(op: &Op) -> Request {
    let inner = match op {
        Op::Backup {
            data,
            pin,
            max_tries,
        } => request::Inner::Backup(BackupRequest {
            data: data.clone(),
            pin: pin.clone(),
            max_tries: *max_tries,
        }),
        Op::Expose { data } => request::Inner::Expose(ExposeRequest { data: data.clone() }),
        Op::Restore { pin } => request::Inner::Restore(RestoreRequest { pin: pin.clone() }),
        Op::Delete => request::Inner::Delete(DeleteRequest {}),
        Op::Tries => request::Inner::Tries(TriesRequest {}),
    };
    Request { inner: Some(inner) }
}

/// What the answer says, in the model's terms; an answer of the wrong kind is a bug.
pub(crate) fn outcome_of(op: &Op, response: &Response) -> Result<Outcome, String> {
    let mismatch = || format!("a {} answered with {response:?}", op_name(op));
    match (op, &response.inner) {
        (Op::Backup { .. }, Some(response::Inner::Backup(backup)))
            if backup.status == backup_response::Status::Ok as i32 =>
        {
            Ok(Outcome::Backup)
        }
        (Op::Expose { .. }, Some(response::Inner::Expose(expose))) => {
            match expose_response::Status::try_from(expose.status) {
                Ok(expose_response::Status::Ok) => Ok(Outcome::Expose { ok: true }),
                Ok(expose_response::Status::Error) => Ok(Outcome::Expose { ok: false }),
                _ => Err(mismatch()),
            }
        }
        (Op::Restore { .. }, Some(response::Inner::Restore(restore))) => {
            match restore_response::Status::try_from(restore.status) {
                Ok(restore_response::Status::Ok) => Ok(Outcome::Restored {
                    data: restore.data.clone(),
                    tries: restore.tries,
                }),
                Ok(restore_response::Status::Missing) => Ok(Outcome::RestoreMissing),
                Ok(restore_response::Status::PinMismatch) => Ok(Outcome::PinMismatch {
                    tries: restore.tries,
                }),
                _ => Err(mismatch()),
            }
        }
        (Op::Delete, Some(response::Inner::Delete(_))) => Ok(Outcome::Deleted),
        (Op::Tries, Some(response::Inner::Tries(tries))) => {
            match tries_response::Status::try_from(tries.status) {
                Ok(tries_response::Status::Ok) => Ok(Outcome::Tries {
                    tries: tries.tries,
                    exposed: tries.exposed,
                }),
                Ok(tries_response::Status::Missing) => Ok(Outcome::TriesMissing),
                _ => Err(mismatch()),
            }
        }
        _ => Err(mismatch()),
    }
}
