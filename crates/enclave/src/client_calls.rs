//! Client requests relayed by the host: new sessions, Noise frames, closes.

use cloister_proto::e2e::transaction_request::Inner as Ask;
use cloister_proto::e2e::transaction_response::Inner as Reply;
use cloister_proto::enclave::{
    CloseClientRequest, ExistingClientReply, ExistingClientRequest, NewClientReply,
    NewClientRequest, host_to_enclave_response::Inner as Answer,
};
use cloister_proto::log::{ClientOperation, ForwardedBy, LogEntry, log_entry};
use cloister_proto::svr2::client::{Request, request};
use prost::Message;

use crate::Error;
use crate::client::{ClientHandshake, ExpectHandshake, NOISE_MESSAGE_BYTES_MAX, Session};
use crate::core::{Enclave, Origin};
use crate::db::{BACKUP_ID_BYTES, BackupId, validate_request};
use crate::host_calls::done;
use crate::transactions::Purpose;

impl Enclave {
    pub(crate) fn on_new_client(&mut self, request: NewClientRequest) -> Result<Answer, Error> {
        let backup_id: BackupId = request
            .client_authenticated_id
            .as_slice()
            .try_into()
            .map_err(|_| {
                Error::InvalidArgument(format!(
                    "client_authenticated_id is {} bytes; it must be {BACKUP_ID_BYTES}",
                    request.client_authenticated_id.len()
                ))
            })?;
        let Some(group) = &self.group else {
            return Err(Error::Unavailable(
                "no group yet: the node is not serving".into(),
            ));
        };
        let mut seed = [0u8; 32];
        self.env.fill_random(&mut seed);
        let pattern = ClientHandshake::for_group(group.config.client_pq);
        let state = ExpectHandshake::new(backup_id, group.client_key.private(), pattern, seed)?;
        let handshake_start = group.client_key.handshake_start().clone();
        let client_id = self.sessions.open(state, self.now_unix_secs)?;
        self.counters.client_sessions_opened += 1;
        Ok(Answer::NewClient(NewClientReply {
            client_id,
            handshake_start: Some(handshake_start),
        }))
    }

    /// Advance a session by one frame. Any error closes the session (the host then closes the
    /// client's socket with the error's close code).
    pub(crate) fn on_existing_client(
        &mut self,
        request_id: u64,
        request: ExistingClientRequest,
    ) -> Result<Option<Answer>, Error> {
        let client_id = request.client_id;
        let session = self.sessions.take(client_id)?;
        let result = self.advance_session(client_id, request_id, session, &request.data);
        if result.is_err() {
            // advance_session put the session back only on success.
            self.sessions.close(client_id);
            self.counters.client_sessions_closed += 1;
        }
        result
    }

    fn advance_session(
        &mut self,
        client_id: u64,
        request_id: u64,
        session: Session,
        frame: &[u8],
    ) -> Result<Option<Answer>, Error> {
        if frame.len() > NOISE_MESSAGE_BYTES_MAX {
            return Err(Error::InvalidArgument(
                "frame larger than one Noise message".into(),
            ));
        }
        match session {
            Session::ExpectHandshake(state) => match state.on_handshake(frame) {
                Ok((established, reply)) => {
                    let now = self.now_unix_secs;
                    self.sessions
                        .restore(client_id, Session::Established(established), now);
                    self.counters.client_handshakes_completed += 1;
                    Ok(Some(Answer::ExistingClient(ExistingClientReply {
                        data: reply,
                    })))
                }
                Err(error) => {
                    self.counters.client_handshakes_failed += 1;
                    Err(error)
                }
            },
            Session::Established(mut state) => {
                let request = state.decrypt_request(frame).and_then(|request| {
                    validate_request(&request)?;
                    Ok(request)
                });
                let request = match request {
                    Ok(request) => request,
                    Err(error) => {
                        self.counters.client_requests_invalid += 1;
                        return Err(error);
                    }
                };
                let backup_id = *state.backup_id();
                let now = self.now_unix_secs;
                self.sessions
                    .restore(client_id, Session::Established(state), now);
                self.count_request(&request);
                #[cfg(feature = "bug-injection")]
                self.bugs.note_request(client_id, request_id, &request);
                self.propose_client(backup_id, request, client_id, request_id)?;
                Ok(None)
            }
        }
    }

    fn propose_client(
        &mut self,
        backup_id: BackupId,
        request: Request,
        client_id: u64,
        request_id: u64,
    ) -> Result<(), Error> {
        let inner = Some(log_entry::Inner::Client(ClientOperation {
            backup_id: backup_id.to_vec(),
            request: Some(request),
        }));
        self.check_min_voters()?;
        let origin = Origin::Client {
            client_id,
            request_id,
        };
        let leader = match &self.group {
            Some(group) if !group.replication.is_leader() => group.replication.leader_id(),
            _ => {
                let entry = LogEntry {
                    inner,
                    forwarded_by: None,
                };
                return self.propose(entry.encode_to_vec(), origin);
            }
        };
        self.forward_to_leader(leader, inner, client_id, request_id)
    }

    /// RaftWrite: a follower hands its client's entry to the leader, tagged so that this
    /// replica recognises it when it applies it.
    fn forward_to_leader(
        &mut self,
        leader: u64,
        inner: Option<log_entry::Inner>,
        client_id: u64,
        request_id: u64,
    ) -> Result<(), Error> {
        let peer = self
            .group
            .as_ref()
            .and_then(|group| group.members.peer_id(leader).copied())
            .ok_or_else(|| Error::Unavailable("no leader known right now".into()))?;
        let raft_id = self.raft_id;
        let term = self
            .group
            .as_ref()
            .map_or(0, |group| group.replication.term());
        let ask = |transaction_id| {
            let forwarded_by = Some(ForwardedBy {
                raft_id,
                transaction_id,
                term,
            });
            Ask::RaftWrite(
                LogEntry {
                    inner,
                    forwarded_by,
                }
                .encode_to_vec(),
            )
        };
        self.start_transaction_with(
            peer,
            ask,
            Purpose::Forwarded {
                client_id,
                request_id,
                term,
            },
        )?;
        self.counters.raft_writes_forwarded += 1;
        Ok(())
    }

    /// The leader's answer to a forwarded write: where the entry will commit, if it does.
    pub(crate) fn on_forward_reply(
        &mut self,
        client_id: u64,
        request_id: u64,
        reply: Result<Reply, Error>,
    ) {
        let origin = Origin::Client {
            client_id,
            request_id,
        };
        match reply {
            Ok(Reply::RaftWrite(at)) => {
                let applied = self
                    .group
                    .as_ref()
                    .map_or(0, |group| group.replication.applied_index());
                if at.index <= applied {
                    // Applied already without our tag being seen: a different entry took it.
                    let cancelled =
                        Error::Unavailable("transaction cancelled by a leader change".into());
                    self.answer(origin, Err(cancelled));
                } else {
                    self.add_pending(at.index, at.term, origin);
                }
            }
            Ok(_) => self.answer(
                origin,
                Err(Error::Internal("unexpected answer to RaftWrite".into())),
            ),
            Err(error) => self.answer(origin, Err(error)),
        }
    }

    fn count_request(&mut self, request: &Request) {
        let counter = match request.inner {
            Some(request::Inner::Backup(_)) => &mut self.counters.client_requests_backup,
            Some(request::Inner::Expose(_)) => &mut self.counters.client_requests_expose,
            Some(request::Inner::Restore(_)) => &mut self.counters.client_requests_restore,
            Some(request::Inner::Delete(_)) => &mut self.counters.client_requests_delete,
            Some(request::Inner::Tries(_)) => &mut self.counters.client_requests_tries,
            None => &mut self.counters.client_requests_invalid,
        };
        *counter += 1;
    }

    pub(crate) fn on_close_client(&mut self, client_id: u64) -> Result<Answer, Error> {
        let CloseClientRequest { client_id } = CloseClientRequest { client_id };
        if self.sessions.close(client_id) {
            self.counters.client_sessions_closed += 1;
            Ok(done())
        } else {
            Err(Error::NotFound(format!("no client session {client_id}")))
        }
    }
}
