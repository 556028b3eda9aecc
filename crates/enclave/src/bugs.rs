//! Known bugs, injected on purpose (feature `bug-injection`, never in a release): the
//! simulator (`cloister-sim`) switches them on to prove its checkers catch each one.
//!
//! Each bug is one a real implementation could plausibly ship: a database that forgets to
//! charge a wrong guess, a replica that applies an entry twice, a leader change that answers
//! a cancelled write as if it had committed.

use std::collections::BTreeSet;

use cloister_proto::svr2::client::response::Inner as ResponseInner;
use cloister_proto::svr2::client::{BackupResponse, Request, Response, backup_response, request};

use crate::Error;
use crate::core::Origin;

/// A bug the core can be told to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum InjectedBug {
    /// A wrong PIN does not use up a try on this replica.
    TriesNotDecremented,
    /// This replica applies every client entry twice.
    EntryAppliedTwice,
    /// A Backup cancelled by a leader change is answered OK instead of 4014.
    CancelledAnsweredAsSuccess,
}

/// The bugs this core has, and what they need to remember.
#[derive(Debug, Default)]
pub(crate) struct Bugs {
    active: BTreeSet<InjectedBug>,
    /// Client Backups waiting for their entry: (client id, request id).
    backups: BTreeSet<(u64, u64)>,
}

/// Bound on remembered Backups (the bug forgets the oldest beyond it).
const BACKUPS_REMEMBERED_MAX: usize = 4096;

impl Bugs {
    pub(crate) fn inject(&mut self, bug: InjectedBug) {
        self.active.insert(bug);
    }

    pub(crate) fn has(&self, bug: InjectedBug) -> bool {
        self.active.contains(&bug)
    }

    /// A client request is on its way to the log.
    pub(crate) fn note_request(&mut self, client_id: u64, request_id: u64, request: &Request) {
        if self.has(InjectedBug::CancelledAnsweredAsSuccess)
            && matches!(request.inner, Some(request::Inner::Backup(_)))
        {
            if self.backups.len() >= BACKUPS_REMEMBERED_MAX {
                self.backups.pop_first();
            }
            self.backups.insert((client_id, request_id));
        }
    }

    /// The outcome `origin` is about to get, with the bug applied.
    pub(crate) fn outcome(
        &mut self,
        origin: &Origin,
        outcome: Result<Option<Response>, Error>,
    ) -> Result<Option<Response>, Error> {
        let Origin::Client {
            client_id,
            request_id,
        } = origin
        else {
            return outcome;
        };
        let was_backup = self.backups.remove(&(*client_id, *request_id));
        match outcome {
            Err(Error::Unavailable(reason)) if was_backup && reason.contains("cancelled") => {
                Ok(Some(Response {
                    inner: Some(ResponseInner::Backup(BackupResponse {
                        status: backup_response::Status::Ok as i32,
                    })),
                }))
            }
            other => other,
        }
    }
}
