//! Proposing entries, driving Raft, and applying what commits.

use cloister_proto::enclave::{
    EnclaveLogLevel, ExistingClientReply, host_to_enclave_response::Inner as Answer,
};
use cloister_proto::log::{LogEntry, log_entry};
use cloister_proto::svr2::client::{Response, response, restore_response};
use prost::Message;

use crate::Error;
use crate::client::Session;
use crate::core::{Enclave, Origin, Pending};
use crate::db::BackupId;
use crate::host_calls::done;
use crate::replication::Committed;
use crate::transactions::Purpose;
use cloister_proto::e2e::transaction_response::Inner as Reply;

impl Enclave {
    /// Propose `entry`; `origin` is answered when it commits (or is cancelled).
    pub(crate) fn propose(&mut self, entry: Vec<u8>, origin: Origin) -> Result<(), Error> {
        if self.pending.len() >= self.config.pending_requests_max as usize {
            return Err(Error::ResourceExhausted(format!(
                "{} requests already wait for the log",
                self.pending.len()
            )));
        }
        let Some(group) = &mut self.group else {
            return Err(Error::Unavailable("no group yet".into()));
        };
        let (index, term) = group.replication.propose(entry)?;
        self.add_pending(index, term, origin);
        Ok(())
    }

    /// Wait for the entry at `index` to commit at `term`, then answer `origin`.
    pub(crate) fn add_pending(&mut self, index: u64, term: u64, origin: Origin) {
        if let Some(previous) = self.pending.insert(index, Pending { term, origin }) {
            // Only possible across a change of leader: the older wait can never complete.
            self.answer(
                previous.origin,
                Err(Error::Unavailable(
                    "transaction cancelled by a leader change".into(),
                )),
            );
        }
    }

    /// Run Raft until it has nothing ready, applying every committed entry.
    pub(crate) fn drive_replication(&mut self) {
        loop {
            let Some(group) = &mut self.group else { return };
            group.replication.announce_commit();
            if !group.replication.has_ready() {
                return;
            }
            let progress = group.replication.ready();
            self.send_raft_messages(progress.messages);
            for committed in progress.committed {
                self.apply_committed(committed);
            }
            if let Some(group) = &mut self.group {
                group.replication.advance_apply();
            }
            if self.removed {
                self.leave_group();
                return;
            }
        }
    }

    fn apply_committed(&mut self, committed: Committed) {
        let outcome = if !committed.is_normal {
            self.apply_membership(&committed.data)
        } else if committed.data.is_empty() {
            Ok(None) // a new leader's no-op entry
        } else {
            self.apply_entry(&committed.data)
        };
        self.cancel_stale_forwards(committed.term);
        let Some(pending) = self.pending.remove(&committed.index) else {
            return;
        };
        if pending.term != committed.term {
            // Another leader's entry took this index: ours never committed, nothing changed.
            self.counters.transactions_cancelled += 1;
            self.answer(
                pending.origin,
                Err(Error::Unavailable(
                    "transaction cancelled by a leader change".into(),
                )),
            );
            return;
        }
        self.answer(pending.origin, outcome);
    }

    /// This replica was removed: forget the group and its data (zeroized on drop).
    ///
    /// Requests still waiting for their entries are answered as undecided, never as
    /// UNAVAILABLE (which promises nothing changed): the group holds those entries and may
    /// well commit them after this replica stopped hearing of it. (Found by the simulator:
    /// a client retried a Restore answered "left the group" and both guesses counted.)
    pub(crate) fn leave_group(&mut self) {
        self.removed = false;
        self.group = None;
        self.db = crate::db::Database::default();
        let pending = std::mem::take(&mut self.pending);
        for (_, waiting) in pending {
            self.answer(
                waiting.origin,
                Err(Error::Internal(
                    "this replica left the group before it saw the request commit; it may or \
                     may not apply"
                        .into(),
                )),
            );
        }
        // A failure is logged; peers see "no group" evidence at the next refresh that works.
        let _ = self.attest_peer_key();
        self.log(
            EnclaveLogLevel::Warning,
            "removed from the group; serving nothing until it joins again".into(),
        );
    }

    /// Apply a committed membership change.
    fn apply_membership(&mut self, data: &[u8]) -> Result<Option<Response>, Error> {
        let Some(group) = &mut self.group else {
            return Err(Error::Internal("membership change without a group".into()));
        };
        // Raft's view first (it must apply every committed change), then the peer ids.
        let change = group.replication.apply_conf_change(data)?;
        group.members.apply(&change)?;
        if !group.members.contains(&self.peer_id) {
            self.removed = true;
        }
        self.log(EnclaveLogLevel::Info, "membership changed".into());
        Ok(None)
    }

    /// Apply one entry's data to the database. Deterministic.
    fn apply_entry(&mut self, data: &[u8]) -> Result<Option<Response>, Error> {
        self.counters.entries_applied += 1;
        let entry = LogEntry::decode(data).map_err(|_| {
            self.counters.entries_rejected += 1;
            Error::Internal("committed entry does not decode".into())
        })?;
        let forwarded = entry.forwarded_by.filter(|by| by.raft_id == self.raft_id);
        let outcome = self.apply_operation(entry.inner);
        if let Some(by) = forwarded {
            // Our own forwarded write: answer its client now, whatever we heard from the leader.
            if let Some(Purpose::Forwarded {
                client_id,
                request_id,
                ..
            }) = self.transactions.take(by.transaction_id)
            {
                self.answer(
                    Origin::Client {
                        client_id,
                        request_id,
                    },
                    outcome.clone(),
                );
            }
        }
        outcome
    }

    fn apply_operation(
        &mut self,
        inner: Option<log_entry::Inner>,
    ) -> Result<Option<Response>, Error> {
        match inner {
            Some(log_entry::Inner::Client(operation)) => {
                let backup_id = self.entry_backup_id(&operation.backup_id)?;
                let request = operation.request.unwrap_or_default();
                let backups_before = self.db.len();
                #[cfg(feature = "bug-injection")]
                if self.bugs.has(crate::bugs::InjectedBug::EntryAppliedTwice) {
                    let _ = self.db.apply(&backup_id, &request);
                }
                let response = self.db.apply(&backup_id, &request).inspect_err(|_| {
                    self.counters.entries_rejected += 1;
                })?;
                #[cfg(feature = "bug-injection")]
                if self.bugs.has(crate::bugs::InjectedBug::TriesNotDecremented)
                    && matches!(
                        &response.inner,
                        Some(cloister_proto::svr2::client::response::Inner::Restore(restore))
                            if restore.status
                                == cloister_proto::svr2::client::restore_response::Status::PinMismatch as i32
                    )
                {
                    self.db.refund_try(&backup_id);
                }
                self.count_outcome(&response, backups_before);
                Ok(Some(response))
            }
            Some(log_entry::Inner::HostDelete(delete)) => {
                let backup_id = self.entry_backup_id(&delete.backup_id)?;
                self.db.delete(&backup_id);
                Ok(None)
            }
            Some(log_entry::Inner::UpdateMinimums(update)) => {
                self.apply_update_minimums(&update)?;
                Ok(None)
            }
            None => {
                self.counters.entries_rejected += 1;
                Err(Error::Internal("committed entry has no content".into()))
            }
        }
    }

    fn entry_backup_id(&mut self, bytes: &[u8]) -> Result<BackupId, Error> {
        bytes.try_into().map_err(|_| {
            self.counters.entries_rejected += 1;
            Error::Internal("committed entry has a malformed backup id".into())
        })
    }

    fn count_outcome(&mut self, response: &Response, backups_before: usize) {
        if let Some(response::Inner::Restore(restore)) = &response.inner {
            match restore.status() {
                restore_response::Status::Ok => self.counters.restores_ok += 1,
                restore_response::Status::PinMismatch => self.counters.restores_pin_mismatch += 1,
                _ if self.db.len() < backups_before => {
                    self.counters.backups_deleted_out_of_tries += 1;
                }
                _ => self.counters.restores_missing += 1,
            }
        }
    }

    pub(crate) fn answer(&mut self, origin: Origin, outcome: Result<Option<Response>, Error>) {
        #[cfg(feature = "bug-injection")]
        let outcome = self.bugs.outcome(&origin, outcome);
        match origin {
            Origin::Host { request_id } => match outcome {
                Ok(_) => self.respond(request_id, done()),
                Err(error) => self.respond_error(request_id, &error),
            },
            Origin::Peer {
                peer,
                transaction_id,
            } => {
                let reply = outcome.map(|_| Reply::Done(cloister_proto::enclave::Done {}));
                self.reply(peer, transaction_id, reply);
            }
            Origin::Client {
                client_id,
                request_id,
            } => {
                let reply = outcome.and_then(|response| {
                    let response = response
                        .ok_or_else(|| Error::Internal("client entry gave no response".into()))?;
                    match self.sessions.get_mut(client_id) {
                        Some(Session::Established(session)) => session.encrypt_response(&response),
                        // The client left; the entry still applied, as it would have anyway.
                        _ => Err(Error::NotFound(format!(
                            "client session {client_id} closed"
                        ))),
                    }
                });
                match reply {
                    Ok(data) => {
                        self.respond(
                            request_id,
                            Answer::ExistingClient(ExistingClientReply { data }),
                        );
                    }
                    Err(error) => {
                        if self.sessions.close(client_id) {
                            self.counters.client_sessions_closed += 1;
                        }
                        self.respond_error(request_id, &error);
                    }
                }
            }
        }
    }
}
