//! Enclave-to-enclave transactions: requests this replica sends and answers it waits for,
//! and the requests it serves.
//!
//! ```text
//!  start(peer, request, purpose) ─▶ TransactionRequest{id} ─▶ peer
//!  peer ─▶ TransactionResponse{id} ─▶ finish(purpose, answer)
//!  peer disconnects / deadline passes ─▶ finish(purpose, error)
//! ```

use std::collections::BTreeMap;

use cloister_proto::e2e::{
    EnclaveToEnclave, GetRaftResponse, RaftWriteCommitted, TransactionRequest, TransactionResponse,
    enclave_to_enclave, transaction_request::Inner as Ask, transaction_response::Inner as Reply,
};
use cloister_proto::enclave::Done;
use cloister_proto::log::LogEntry;
use prost::Message;
use raft::eraftpb::ConfChangeType;

use crate::Error;
use crate::core::{Enclave, Origin};
use crate::db::validate_request;
use crate::host_calls::done;
use crate::join::JoinStep;
use crate::membership::{Members, PeerId, raft_id_of};

/// Bound on transactions this replica waits for at once.
pub const TRANSACTIONS_MAX: usize = 4_096;
/// How long a peer has to answer a transaction, in seconds of the core's time.
pub const TRANSACTION_TIMEOUT_SECS: u64 = 30;

/// Why this replica sent a transaction: whom to answer when it completes.
pub(crate) enum Purpose {
    /// A host call (PingPeer, RequestVoting, RequestRemoval): answer `Done` or the error.
    Host { request_id: u64 },
    /// A client's entry forwarded to the leader (RaftWrite) in `term`.
    Forwarded {
        client_id: u64,
        request_id: u64,
        term: u64,
    },
    /// A step of joining a group.
    Join(JoinStep),
}

pub(crate) struct Outgoing {
    peer: PeerId,
    purpose: Purpose,
    deadline_unix_secs: u64,
}

/// Transactions in flight.
#[derive(Default)]
pub(crate) struct Transactions {
    outgoing: BTreeMap<u64, Outgoing>,
    id_next: u64,
    /// The newest term of an applied entry.
    applied_term: u64,
}

impl Transactions {
    /// Forget a transaction (its answer, if it ever comes, finds nobody).
    pub(crate) fn take(&mut self, id: u64) -> Option<Purpose> {
        self.outgoing.remove(&id).map(|outgoing| outgoing.purpose)
    }

    /// Every transaction in flight (tests look into them).
    #[cfg(test)]
    pub(crate) fn purposes(&self) -> impl Iterator<Item = (u64, &Purpose)> {
        self.outgoing
            .iter()
            .map(|(id, outgoing)| (*id, &outgoing.purpose))
    }
}

impl Enclave {
    /// Send `ask` to `peer`; `purpose` is finished when the answer (or a failure) arrives.
    pub(crate) fn start_transaction(
        &mut self,
        peer: PeerId,
        ask: Ask,
        purpose: Purpose,
    ) -> Result<u64, Error> {
        self.start_transaction_with(peer, |_| ask, purpose)
    }

    /// As [`Self::start_transaction`], for a request that names its own transaction id.
    pub(crate) fn start_transaction_with(
        &mut self,
        peer: PeerId,
        ask: impl FnOnce(u64) -> Ask,
        purpose: Purpose,
    ) -> Result<u64, Error> {
        if self.transactions.outgoing.len() >= TRANSACTIONS_MAX {
            return Err(Error::ResourceExhausted(
                "too many peer transactions in flight".into(),
            ));
        }
        let id = self.transactions.id_next + 1;
        let ask = ask(id);
        let deadline_unix_secs = self.now_unix_secs + TRANSACTION_TIMEOUT_SECS;
        let request = TransactionRequest {
            transaction_id: id,
            inner: Some(ask),
        };
        let message = EnclaveToEnclave {
            inner: Some(enclave_to_enclave::Inner::TransactionRequest(request)),
        };
        self.send_peer(peer, message)?;
        self.transactions.id_next = id;
        self.transactions.outgoing.insert(
            id,
            Outgoing {
                peer,
                purpose,
                deadline_unix_secs,
            },
        );
        Ok(id)
    }

    /// Wait again for transaction `id`, answered but not finished: a ReplicateState stream
    /// is one transaction answered by many pushes. Its deadline starts over.
    pub(crate) fn resume_transaction(&mut self, id: u64, peer: PeerId, purpose: Purpose) {
        let deadline_unix_secs = self.now_unix_secs + TRANSACTION_TIMEOUT_SECS;
        let outgoing = Outgoing {
            peer,
            purpose,
            deadline_unix_secs,
        };
        // Taken out when its answer arrived, so this puts back, never adds.
        let previous = self.transactions.outgoing.insert(id, outgoing);
        assert!(previous.is_none(), "a transaction resumes once per answer");
    }

    pub(crate) fn on_transaction_response(&mut self, peer: PeerId, response: TransactionResponse) {
        let id = response.transaction_id;
        match self.transactions.outgoing.get(&id) {
            Some(outgoing) if outgoing.peer == peer => {}
            _ => {
                self.counters.peer_frames_refused += 1; // unknown, or answered by someone else
                return;
            }
        }
        let Some(purpose) = self.transactions.take(id) else {
            return;
        };
        let reply = match response.inner {
            Some(Reply::Error(error)) => Err(Error::Unavailable(format!(
                "peer refused: {}",
                error.message
            ))),
            Some(reply) => Ok(reply),
            None => Err(Error::Internal("empty transaction response".into())),
        };
        self.finish(id, purpose, reply, true);
    }

    /// `definite` is false when the peer never answered: whatever it was asked may or may
    /// not have happened.
    fn finish(&mut self, id: u64, purpose: Purpose, reply: Result<Reply, Error>, definite: bool) {
        match purpose {
            Purpose::Host { request_id } => match reply {
                Ok(_) => self.respond(request_id, done()),
                Err(error) => self.respond_error(request_id, &error),
            },
            Purpose::Forwarded {
                client_id,
                request_id,
                ..
            } => {
                let reply = match reply {
                    Err(_) if !definite => Err(Error::Internal(
                        "the leader did not confirm the write; it may or may not apply".into(),
                    )),
                    other => other,
                };
                self.on_forward_reply(client_id, request_id, reply);
            }
            Purpose::Join(step) => self.on_join_reply(id, step, reply),
        }
    }

    /// Once an entry of term `term` applies, no write forwarded in an earlier term can commit
    /// any more (leaders refuse writes of other terms, and every earlier-term entry that will
    /// ever commit precedes it in the log): answer those clients 4014, nothing changed.
    pub(crate) fn cancel_stale_forwards(&mut self, term: u64) {
        if term <= self.transactions.applied_term {
            return; // nothing new: checked when this term's first entry applied
        }
        self.transactions.applied_term = term;
        let stale: Vec<u64> = self
            .transactions
            .outgoing
            .iter()
            .filter(|(_, outgoing)| matches!(outgoing.purpose, Purpose::Forwarded { term: sent, .. } if sent < term))
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some(Purpose::Forwarded {
                client_id,
                request_id,
                ..
            }) = self.transactions.take(id)
            {
                let cancelled =
                    Error::Unavailable("transaction cancelled by a leader change".into());
                self.answer(
                    Origin::Client {
                        client_id,
                        request_id,
                    },
                    Err(cancelled),
                );
            }
        }
    }

    /// Everything waiting on `peer` fails: it disconnected.
    pub(crate) fn fail_transactions_to(&mut self, peer: &PeerId, reason: &Error) {
        let ids: Vec<u64> = self
            .transactions
            .outgoing
            .iter()
            .filter(|(_, outgoing)| &outgoing.peer == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(purpose) = self.transactions.take(id) {
                let error = Error::Unavailable(format!("peer disconnected: {reason}"));
                self.finish(id, purpose, Err(error), false);
            }
        }
    }

    /// Transactions past their deadline fail.
    pub(crate) fn expire_transactions(&mut self) {
        let now = self.now_unix_secs;
        let ids: Vec<u64> = self
            .transactions
            .outgoing
            .iter()
            .filter(|(_, outgoing)| outgoing.deadline_unix_secs <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(purpose) = self.transactions.take(id) {
                let error = Error::Unavailable("the peer did not answer in time".into());
                self.finish(id, purpose, Err(error), false);
            }
        }
    }

    /// Answer a peer's transaction now.
    pub(crate) fn reply(&mut self, peer: PeerId, id: u64, reply: Result<Reply, Error>) {
        let inner = match reply {
            Ok(reply) => reply,
            Err(error) => Reply::Error(error.to_proto()),
        };
        let response = TransactionResponse {
            transaction_id: id,
            inner: Some(inner),
        };
        let message = EnclaveToEnclave {
            inner: Some(enclave_to_enclave::Inner::TransactionResponse(response)),
        };
        let _ = self.send_peer(peer, message);
    }

    pub(crate) fn on_transaction_request(&mut self, peer: PeerId, request: TransactionRequest) {
        let id = request.transaction_id;
        let outcome = match request.inner {
            Some(Ask::Ping(_)) => Ok(Some(Reply::Done(Done {}))),
            Some(Ask::GetRaft(_)) => self.serve_get_raft().map(Some),
            // Answered by the pushes it sends, each a response to `id`.
            Some(Ask::ReplicateState(ask)) => {
                self.serve_replicate_state(peer, id, &ask).map(|()| None)
            }
            Some(Ask::RaftMembership(true)) => {
                self.serve_membership(peer, id, ConfChangeType::AddLearnerNode)
            }
            Some(Ask::RaftVoting(true)) => self.serve_membership(peer, id, ConfChangeType::AddNode),
            Some(Ask::RaftRemoval(true)) => {
                self.serve_membership(peer, id, ConfChangeType::RemoveNode)
            }
            Some(Ask::RaftWrite(entry)) => self
                .check_min_voters()
                .and_then(|()| self.serve_raft_write(peer, &entry))
                .map(Some),
            Some(Ask::NewTimestampUnixSecs(secs)) => {
                self.peer_times.insert(raft_id_of(&peer), secs);
                Ok(None)
            }
            _ => Err(Error::InvalidArgument(
                "unknown or empty transaction".into(),
            )),
        };
        match outcome {
            Ok(Some(reply)) => self.reply(peer, id, Ok(reply)),
            Ok(None) => {} // answered when a log entry commits, or not at all (notices)
            Err(error) => self.reply(peer, id, Err(error)),
        }
    }

    fn serve_get_raft(&mut self) -> Result<Reply, Error> {
        let status = self.status();
        let group = status
            .group_config
            .ok_or_else(|| Error::FailedPrecondition("no group here".into()))?;
        Ok(Reply::GetRaft(GetRaftResponse {
            group_config: group.encode_to_vec(),
            members: status.members,
            leader_raft_id: status.leader_raft_id,
        }))
    }

    fn serve_membership(
        &mut self,
        peer: PeerId,
        id: u64,
        kind: ConfChangeType,
    ) -> Result<Option<Reply>, Error> {
        let Some(group) = &mut self.group else {
            return Err(Error::FailedPrecondition("no group here".into()));
        };
        let is_member = group.members.contains(&peer);
        let is_voter = group
            .replication
            .members()
            .iter()
            .any(|(raft_id, voting, _)| *voting && *raft_id == raft_id_of(&peer));
        if kind == ConfChangeType::AddNode && is_voter {
            return Ok(Some(Reply::Done(Done {}))); // already voting (healing promoted it)
        }
        match kind {
            // A learner whose join failed while streaming joins again: nothing to change.
            ConfChangeType::AddLearnerNode if is_member && !is_voter => {
                return Ok(Some(Reply::Done(Done {})));
            }
            ConfChangeType::AddLearnerNode if is_member => {
                return Err(Error::FailedPrecondition("already a member".into()));
            }
            ConfChangeType::AddNode | ConfChangeType::RemoveNode if !is_member => {
                return Err(Error::FailedPrecondition("not a member".into()));
            }
            _ => {}
        }
        let (index, term) = group
            .replication
            .propose_conf_change(Members::change(kind, &peer))?;
        self.add_pending(
            index,
            term,
            Origin::Peer {
                peer,
                transaction_id: id,
            },
        );
        Ok(None)
    }

    fn serve_raft_write(&mut self, peer: PeerId, entry: &[u8]) -> Result<Reply, Error> {
        let Some(group) = &mut self.group else {
            return Err(Error::FailedPrecondition("no group here".into()));
        };
        if !group.members.contains(&peer) {
            return Err(Error::FailedPrecondition(
                "RaftWrite from a non-member".into(),
            ));
        }
        let decoded = LogEntry::decode(entry)
            .map_err(|_| Error::InvalidArgument("RaftWrite entry does not decode".into()))?;
        let forwarded = decoded.forwarded_by.ok_or_else(|| {
            Error::InvalidArgument("RaftWrite entry must name its forwarder".into())
        })?;
        if forwarded.raft_id != raft_id_of(&peer) {
            return Err(Error::InvalidArgument(
                "RaftWrite entry names another forwarder".into(),
            ));
        }
        if let Some(cloister_proto::log::log_entry::Inner::Client(operation)) = &decoded.inner {
            validate_request(&operation.request.clone().unwrap_or_default())?;
        }
        let (index, term) = group.replication.propose(entry.to_vec())?;
        Ok(Reply::RaftWrite(RaftWriteCommitted { index, term }))
    }

    /// Group time: the median of the voters' latest clocks (this replica's included).
    pub(crate) fn group_time_unix_secs(&self) -> u64 {
        let Some(group) = &self.group else {
            return self.now_unix_secs;
        };
        let mut times: Vec<u64> = group
            .replication
            .members()
            .into_iter()
            .filter(|(_, voting, _)| *voting)
            // Voters not heard from yet have no clock to count.
            .filter_map(|(raft_id, _, _)| {
                if raft_id == self.raft_id {
                    Some(self.now_unix_secs)
                } else {
                    self.peer_times.get(&raft_id).copied()
                }
            })
            .collect();
        times.sort_unstable();
        times
            .get(times.len() / 2)
            .copied()
            .unwrap_or(self.now_unix_secs)
    }

    /// Tell every other member this replica's clock (NewTimestampUnixSecs).
    pub(crate) fn broadcast_timestamp(&mut self) {
        let Some(group) = &self.group else { return };
        let peers: Vec<PeerId> = group
            .members
            .iter()
            .map(|(_, peer)| *peer)
            .filter(|peer| peer != &self.peer_id)
            .collect();
        let secs = self.now_unix_secs;
        for peer in peers {
            let request = TransactionRequest {
                transaction_id: 0,
                inner: Some(Ask::NewTimestampUnixSecs(secs)),
            };
            let message = EnclaveToEnclave {
                inner: Some(enclave_to_enclave::Inner::TransactionRequest(request)),
            };
            let _ = self.send_peer(peer, message);
        }
    }
}
