//! Simulated SVR2 clients: each opens Noise sessions to random replicas through their
//! hosts, checks the enclave's evidence the way a real client does, and runs Backup,
//! Expose, Restore (right and wrong PINs), Delete and Tries, retrying after errors and
//! timeouts as an SVR2 client would. Every attempt goes into the [`History`].
//!
//! ```text
//!  Idle ──NewClient──▶ Connecting ──evidence ok, Noise msg 1──▶ Handshaking ──msg 2──▶ Ready
//!  Ready ──encrypted request──▶ Waiting ──answer──▶ Ready (next operation)
//!  any error or a silence past ANSWER_TIMEOUT_MS ──▶ Idle (the attempt stays ambiguous)
//! ```

use cloister_attest::{Policy, sim, verify};
use cloister_enclave::CLIENT_NOISE_PATTERN;
use cloister_proto::enclave::{
    ExistingClientRequest, NewClientRequest, host_to_enclave_response::Inner as Answer,
};
use cloister_proto::svr2::client::{ClientHandshakeStart, Response};
use prost::Message;

mod workload;

use crate::history::{BackupId, Op};
use crate::node::Waiter;

use crate::world::{Event, START_UNIX_SECS, Sim};
pub(crate) use workload::Keys;
use workload::op_name;
pub(crate) use workload::{outcome_of, request_for};

/// A client gives up on an answer after this long (and on its session).
const ANSWER_TIMEOUT_MS: u64 = 10_000;
/// Attempts at one operation before the client moves on.
const ATTEMPTS_MAX: u32 = 3;
/// Client-to-host latency.
const CLIENT_LATENCY_MAX_MS: u64 = 5;

/// What a client asks a host.
#[derive(Debug, Clone)]
pub(crate) enum ClientCall {
    NewClient { backup_id: BackupId },
    Existing { client_id: u64, data: Vec<u8> },
}

/// What a host answers a client.
#[derive(Debug, Clone)]
pub(crate) enum HostAnswer {
    NewClient {
        client_id: u64,
        start: ClientHandshakeStart,
    },
    Existing {
        data: Vec<u8>,
    },
    Error {
        message: String,
        /// ERROR_CODE_UNAVAILABLE: the door promises nothing changed.
        unavailable: bool,
    },
}

enum Phase {
    Idle,
    Connecting {
        backup_id: BackupId,
    },
    Handshaking {
        backup_id: BackupId,
        client_id: u64,
        handshake: Box<snow::HandshakeState>,
    },
    Ready {
        backup_id: BackupId,
        client_id: u64,
        transport: Box<snow::TransportState>,
    },
    Waiting {
        backup_id: BackupId,
        client_id: u64,
        transport: Box<snow::TransportState>,
        attempt: usize,
    },
}

pub(super) struct Pending {
    pub(super) backup_id: BackupId,
    pub(super) op: Op,
    pub(super) attempts: u32,
}

/// One simulated client.
pub(crate) struct Client {
    index: usize,
    phase: Phase,
    pending: Option<Pending>,
    /// Bumped for every new session: late answers to an old one are ignored.
    session: u64,
    node: usize,
    /// When the current wait ends.
    deadline_ms: u64,
    stopping: bool,
    pub(crate) operations_done: u64,
}

impl Client {
    pub(crate) fn new(index: usize) -> Client {
        Client {
            index,
            phase: Phase::Idle,
            pending: None,
            session: 0,
            node: 0,
            deadline_ms: 0,
            stopping: false,
            operations_done: 0,
        }
    }

    /// Finish the operation under way, then start no other.
    pub(crate) fn stop_after_current(&mut self) {
        self.stopping = true;
    }

    /// True once a stopping client has nothing under way.
    pub(crate) fn finished(&self) -> bool {
        self.stopping && self.pending.is_none()
    }

    /// For a liveness failure: what this client waits for.
    pub(crate) fn describe(&self) -> String {
        let phase = match self.phase {
            Phase::Idle => "between sessions",
            Phase::Connecting { .. } => "waiting for NewClient",
            Phase::Handshaking { .. } => "handshaking",
            Phase::Ready { .. } => "ready",
            Phase::Waiting { .. } => "waiting for an answer",
        };
        match &self.pending {
            Some(pending) => format!(
                "client {} {:?} on {} attempt {} via r{} ({phase})",
                self.index,
                op_name(&pending.op),
                hex::encode(&pending.backup_id[..4]),
                pending.attempts + 1,
                self.node
            ),
            None => format!("client {} idle ({phase})", self.index),
        }
    }
}

impl Sim {
    pub(crate) fn on_client_wake(&mut self, index: usize) {
        let client = &self.clients[index];
        let waiting = matches!(
            client.phase,
            Phase::Connecting { .. } | Phase::Handshaking { .. } | Phase::Waiting { .. }
        );
        if waiting {
            if self.now_ms >= client.deadline_ms {
                self.client_gives_up(index, "no answer in time");
            }
            return;
        }
        if self.clients[index].pending.is_none() {
            if self.clients[index].stopping {
                return;
            }
            let pending = self.choose_operation();
            self.clients[index].pending = Some(pending);
        }
        self.client_proceed(index);
    }

    /// Send the pending operation, opening a session for its backup id first if needed.
    fn client_proceed(&mut self, index: usize) {
        let Some(backup_id) = self.clients[index].pending.as_ref().map(|p| p.backup_id) else {
            return;
        };
        let phase = std::mem::replace(&mut self.clients[index].phase, Phase::Idle);
        match phase {
            Phase::Ready {
                backup_id: session_id,
                client_id,
                mut transport,
            } if session_id == backup_id => {
                let Some(pending) = self.clients[index].pending.as_mut() else {
                    return;
                };
                pending.attempts += 1;
                let op = pending.op.clone();
                let request = request_for(&op);
                let mut frame = vec![0; 1024];
                let Ok(length) = transport.write_message(&request.encode_to_vec(), &mut frame)
                else {
                    self.fail("protocol", format!("client {index} could not encrypt"));
                    return;
                };
                frame.truncate(length);
                let attempt = self
                    .history
                    .invoke(index as u32, backup_id, op, self.now_ms);
                if let Some(key) = self.keys.active.iter_mut().find(|key| key.id == backup_id) {
                    key.attempts += 1;
                }
                self.clients[index].phase = Phase::Waiting {
                    backup_id,
                    client_id,
                    transport,
                    attempt,
                };
                self.client_send(
                    index,
                    ClientCall::Existing {
                        client_id,
                        data: frame,
                    },
                );
            }
            _ => {
                // A new session, with a replica chosen at random.
                let client = &mut self.clients[index];
                client.session += 1;
                client.node = self.rng.index(self.nodes.len());
                client.phase = Phase::Connecting { backup_id };
                self.client_send(index, ClientCall::NewClient { backup_id });
            }
        }
    }

    fn client_send(&mut self, index: usize, call: ClientCall) {
        let node = self.clients[index].node;
        let latency = self.rng.between(1, CLIENT_LATENCY_MAX_MS) + self.nodes[node].slow_extra_ms;
        let deadline = self.now_ms + ANSWER_TIMEOUT_MS;
        self.clients[index].deadline_ms = deadline;
        self.schedule_at(deadline, Event::ClientWake { client: index });
        let generation = self.nodes[node].generation;
        let session = self.clients[index].session;
        self.schedule(
            latency,
            Event::ToHost {
                node,
                generation,
                client: index,
                session,
                call,
            },
        );
    }

    /// A client's call reaches the host of `node`.
    pub(crate) fn on_client_call(
        &mut self,
        node: usize,
        generation: u32,
        client: usize,
        session: u64,
        call: ClientCall,
    ) {
        if self.nodes[node].generation != generation || self.nodes[node].core.is_none() {
            return; // the machine died: the client hears nothing
        }
        let waiter = Waiter::Client { client, session };
        let call = match call {
            ClientCall::NewClient { backup_id } => {
                cloister_proto::enclave::host_to_enclave_request::Inner::NewClient(
                    NewClientRequest {
                        client_authenticated_id: backup_id.to_vec(),
                    },
                )
            }
            ClientCall::Existing { client_id, data } => {
                cloister_proto::enclave::host_to_enclave_request::Inner::ExistingClient(
                    ExistingClientRequest { client_id, data },
                )
            }
        };
        self.call(node, call, waiter);
    }

    /// The core of `node` answered a client's call: the host sends it on.
    pub(crate) fn answer_client(
        &mut self,
        node: usize,
        client: usize,
        session: u64,
        answer: Answer,
    ) {
        let answer = match answer {
            Answer::NewClient(reply) => match reply.handshake_start {
                Some(start) => HostAnswer::NewClient {
                    client_id: reply.client_id,
                    start,
                },
                None => HostAnswer::Error {
                    message: "NewClient without a handshake start".into(),
                    unavailable: false,
                },
            },
            Answer::ExistingClient(reply) => HostAnswer::Existing { data: reply.data },
            Answer::Error(error) => HostAnswer::Error {
                unavailable: error.code == cloister_proto::enclave::ErrorCode::Unavailable as i32,
                message: error.message,
            },
            other => HostAnswer::Error {
                message: format!("unexpected answer {other:?}"),
                unavailable: false,
            },
        };
        let latency = self.rng.between(1, CLIENT_LATENCY_MAX_MS) + self.nodes[node].slow_extra_ms;
        self.schedule(
            latency,
            Event::ToClient {
                client,
                session,
                answer,
            },
        );
    }

    pub(crate) fn on_client_answer(&mut self, index: usize, session: u64, answer: HostAnswer) {
        if self.clients[index].session != session {
            return;
        }
        let phase = std::mem::replace(&mut self.clients[index].phase, Phase::Idle);
        match (phase, answer) {
            (
                phase,
                HostAnswer::Error {
                    message,
                    unavailable,
                },
            ) => {
                if let (Phase::Waiting { attempt, .. }, true) = (&phase, unavailable) {
                    // The door's promise: nothing changed. The checkers hold it to that.
                    self.refused.insert(*attempt);
                }
                self.clients[index].phase = phase;
                self.client_gives_up(index, &message);
            }
            (Phase::Connecting { backup_id }, HostAnswer::NewClient { client_id, start }) => {
                match self.client_handshake(&start) {
                    Ok((handshake, message)) => {
                        self.clients[index].phase = Phase::Handshaking {
                            backup_id,
                            client_id,
                            handshake,
                        };
                        self.client_send(
                            index,
                            ClientCall::Existing {
                                client_id,
                                data: message,
                            },
                        );
                    }
                    Err(reason) => self.fail("attestation", format!("client {index}: {reason}")),
                }
            }
            (
                Phase::Handshaking {
                    backup_id,
                    client_id,
                    mut handshake,
                },
                HostAnswer::Existing { data },
            ) => {
                let mut payload = vec![0; 1024];
                let finished = handshake
                    .read_message(&data, &mut payload)
                    .ok()
                    .and_then(|_| handshake.into_transport_mode().ok());
                match finished {
                    Some(transport) => {
                        self.clients[index].phase = Phase::Ready {
                            backup_id,
                            client_id,
                            transport: Box::new(transport),
                        };
                        self.client_proceed(index);
                    }
                    None => self.fail(
                        "protocol",
                        format!("client {index}: the enclave's handshake answer does not verify"),
                    ),
                }
            }
            (
                Phase::Waiting {
                    backup_id,
                    client_id,
                    mut transport,
                    attempt,
                },
                HostAnswer::Existing { data },
            ) => {
                let mut plaintext = vec![0; 1024];
                let response = transport
                    .read_message(&data, &mut plaintext)
                    .ok()
                    .and_then(|length| Response::decode(&plaintext[..length]).ok());
                let Some(response) = response else {
                    self.fail(
                        "protocol",
                        format!("client {index}: an answer that does not decrypt or decode"),
                    );
                    return;
                };
                let op = self.history.attempts[attempt].op.clone();
                match outcome_of(&op, &response) {
                    Ok(outcome) => {
                        self.history.answer(attempt, outcome, self.now_ms);
                        self.stats.operations += 1;
                        let client = &mut self.clients[index];
                        client.operations_done += 1;
                        client.pending = None;
                        client.phase = Phase::Ready {
                            backup_id,
                            client_id,
                            transport,
                        };
                        let think = self.rng.between(1, 200);
                        self.schedule(think, Event::ClientWake { client: index });
                    }
                    Err(reason) => self.fail("protocol", format!("client {index}: {reason}")),
                }
            }
            (phase, _) => {
                // An answer that fits no state: a late one for a call the client gave up on.
                self.clients[index].phase = phase;
            }
        }
    }

    /// Verify the enclave's evidence as a client does, and write Noise message 1.
    fn client_handshake(
        &mut self,
        start: &ClientHandshakeStart,
    ) -> Result<(Box<snow::HandshakeState>, Vec<u8>), String> {
        let policy = Policy::insecure_allow_simulated(vec![sim::measurement()])
            .with_evidence_age_max_secs(u64::MAX / 4);
        let now = START_UNIX_SECS + self.now_ms / 1000;
        let verified = verify(&start.evidence, &start.endorsement, &policy, now)
            .map_err(|error| format!("the enclave's evidence does not verify: {error}"))?;
        if verified.public_key().as_slice() != start.test_only_pubkey.as_slice() {
            return Err("the attested key differs from the key the enclave sent".into());
        }
        let params = CLIENT_NOISE_PATTERN
            .parse()
            .map_err(|error| format!("noise pattern: {error:?}"))?;
        let resolver = cloister_noise::Resolver::seeded(self.rng.seed32());
        let mut handshake = snow::Builder::with_resolver(params, Box::new(resolver))
            .remote_public_key(verified.public_key())
            .and_then(|builder| builder.build_initiator())
            .map_err(|error| format!("noise: {error}"))?;
        let mut message = vec![0; 1024];
        let length = handshake
            .write_message(&[], &mut message)
            .map_err(|error| format!("noise: {error}"))?;
        message.truncate(length);
        Ok((Box::new(handshake), message))
    }

    /// The attempt under way (if any) stays ambiguous; the session is dropped; the client
    /// tries again after a pause, or moves on after [`ATTEMPTS_MAX`].
    fn client_gives_up(&mut self, index: usize, why: &str) {
        self.stats.client_errors += 1;
        let client = &mut self.clients[index];
        let line = format!(
            "client {index} drops its session via r{}: {why}",
            client.node
        );
        client.phase = Phase::Idle;
        client.session += 1;
        if let Some(pending) = &client.pending {
            if pending.attempts >= ATTEMPTS_MAX {
                client.pending = None;
                self.stats.operations_abandoned += 1;
            }
        }
        self.trace.line(self.now_ms, line);
        let backoff = self.rng.between(100, 2_000);
        self.schedule(backoff, Event::ClientWake { client: index });
    }
}
