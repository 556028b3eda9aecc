//! A replica: its real enclave core, and the simulated host around it. The host does what
//! `cloister node` does: ticks the core with its own (possibly skewed) clock, relays peer
//! frames and client calls, tells the core `ResetPeer` when frames were lost, refreshes its
//! attestation, and, as an operator would, creates the group, joins it, and asks to vote.

use std::collections::BTreeMap;

use cloister_enclave::Enclave;
use cloister_proto::enclave::{
    CreateNewRaftGroupRequest, EnclaveMessage, GetEnclaveStatusRequest, HashesRequest,
    HostToEnclaveRequest, JoinRaftRequest, PeerMessage, RefreshAttestationRequest,
    RelinquishLeadershipRequest, RequestVotingRequest, ResetPeer, TimerTick, UntrustedMessage,
    enclave_message, host_to_enclave_request::Inner as Call,
    host_to_enclave_response::Inner as Answer, untrusted_message,
};
use prost::Message;

use crate::world::{Event, OBSERVE_INTERVAL_MS, START_UNIX_SECS, Sim, TICK_INTERVAL_MS};

/// Who waits for a host call's answer.
#[derive(Debug, Clone)]
pub(crate) enum Waiter {
    Client { client: usize, session: u64 },
    Create,
    Join,
    RequestVoting,
    Status,
    Hashes,
    Relinquish,
    Refresh,
    Removal,
}

/// A replica and its host.
pub(crate) struct Node {
    pub(crate) index: usize,
    /// `None` while the machine is down.
    pub(crate) core: Option<Enclave>,
    /// Bumped at every restart: frames and calls for an older core are dropped.
    pub(crate) generation: u32,
    pub(crate) peer_id: [u8; 32],
    /// The host clock's offset from true time.
    pub(crate) skew_ms: i64,
    /// Extra latency on everything this replica sends and receives.
    pub(crate) slow_extra_ms: u64,
    next_request_id: u64,
    pub(crate) waiting: BTreeMap<u64, Waiter>,
    /// What the last status said.
    pub(crate) in_group: bool,
    pub(crate) voting: bool,
    pub(crate) leader: bool,
    pub(crate) applied_index: u64,
    /// A membership call (create, join, request voting) is under way.
    membership_busy: bool,
    /// Not before this time will the host try a membership call again.
    membership_retry_at_ms: u64,
}

impl Node {
    /// A machine with a fresh core.
    pub(crate) fn start(sim: &mut Sim, index: usize, generation: u32) -> Result<Node, String> {
        let core = sim.new_core(index)?;
        let peer_id = *core.peer_id();
        sim.trace.line(
            sim.now_ms,
            format!(
                "r{index} starts (generation {generation}) as {}",
                short(&peer_id)
            ),
        );
        Ok(Node {
            index,
            core: Some(core),
            generation,
            peer_id,
            skew_ms: 0,
            slow_extra_ms: 0,
            next_request_id: 1,
            waiting: BTreeMap::new(),
            in_group: false,
            voting: false,
            leader: false,
            applied_index: 0,
            membership_busy: false,
            membership_retry_at_ms: 0,
        })
    }

    /// The host clock, in unix seconds.
    pub(crate) fn clock_unix_secs(&self, now_ms: u64) -> u64 {
        let ms = (START_UNIX_SECS * 1000 + now_ms) as i64 + self.skew_ms;
        (ms.max(0) as u64) / 1000
    }
}

/// The first bytes of a peer id, for traces.
pub(crate) fn short(peer: &[u8; 32]) -> String {
    hex::encode(&peer[..4])
}

impl Sim {
    /// Hand `message` to replica `node`'s core, then route whatever it says.
    pub(crate) fn feed(&mut self, node: usize, message: &UntrustedMessage) -> bool {
        let bytes = message.encode_to_vec();
        self.feed_bytes(node, &bytes)
    }

    /// As [`Sim::feed`], with raw bytes (a garbage-handing host uses this directly).
    pub(crate) fn feed_bytes(&mut self, node: usize, bytes: &[u8]) -> bool {
        let Some(core) = self.nodes[node].core.as_mut() else {
            return false;
        };
        let accepted = core.handle(bytes).is_ok();
        if !accepted {
            self.stats.refused_by_cores += 1;
        }
        self.drain(node);
        accepted
    }

    /// Route everything replica `node`'s core has to say.
    fn drain(&mut self, node: usize) {
        loop {
            let Some(core) = self.nodes[node].core.as_mut() else {
                return;
            };
            let Some(bytes) = core.poll_message() else {
                return;
            };
            self.trace.absorb(&bytes);
            let Ok(message) = EnclaveMessage::decode(bytes.as_slice()) else {
                self.fail(
                    "protocol",
                    format!("r{node}'s core emitted bytes that are not an EnclaveMessage"),
                );
                return;
            };
            match message.inner {
                Some(enclave_message::Inner::PeerMessage(frame)) => self.send_frame(node, frame),
                Some(enclave_message::Inner::H2eResponse(response)) => {
                    let Some(waiter) = self.nodes[node].waiting.remove(&response.request_id) else {
                        continue;
                    };
                    match response.inner {
                        Some(answer) => self.on_host_answer(node, waiter, answer),
                        None => self.fail(
                            "protocol",
                            format!(
                                "r{node} answered request {} with nothing",
                                response.request_id
                            ),
                        ),
                    }
                }
                Some(enclave_message::Inner::Log(record)) => {
                    self.stats.core_log_lines += 1;
                    if record.level <= cloister_proto::enclave::EnclaveLogLevel::Error as i32 {
                        let line = format!("r{node} log: {}", record.message);
                        self.trace.line(self.now_ms, line);
                    }
                }
                None => {}
            }
        }
    }

    /// Send a host call to replica `node`'s core on behalf of `waiter`.
    pub(crate) fn call(&mut self, node: usize, call: Call, waiter: Waiter) {
        let state = &mut self.nodes[node];
        if state.core.is_none() {
            return;
        }
        let request_id = state.next_request_id;
        state.next_request_id += 1;
        state.waiting.insert(request_id, waiter);
        let message = UntrustedMessage {
            inner: Some(untrusted_message::Inner::H2eRequest(HostToEnclaveRequest {
                request_id,
                inner: Some(call),
            })),
        };
        self.feed(node, &message);
    }

    pub(crate) fn on_tick(&mut self, node: usize) {
        self.schedule(TICK_INTERVAL_MS, Event::Tick { node });
        if self.nodes[node].core.is_none() {
            return;
        }
        let now = self.nodes[node].clock_unix_secs(self.now_ms);
        let tick = UntrustedMessage {
            inner: Some(untrusted_message::Inner::TimerTick(TimerTick {
                new_timestamp_unix_secs: now,
            })),
        };
        self.feed(node, &tick);
    }

    /// The host's periodic look at its core: status, hash, and membership duties.
    pub(crate) fn on_observe(&mut self, node: usize) {
        self.schedule(OBSERVE_INTERVAL_MS, Event::Observe { node });
        if self.nodes[node].core.is_none() {
            return;
        }
        self.call(
            node,
            Call::GetEnclaveStatus(GetEnclaveStatusRequest {}),
            Waiter::Status,
        );
        self.call(node, Call::Hashes(HashesRequest {}), Waiter::Hashes);
        self.membership_duties(node);
    }

    /// What an operator does for a replica that is not a voter yet.
    fn membership_duties(&mut self, node: usize) {
        let state = &self.nodes[node];
        if state.membership_busy || state.voting || self.now_ms < state.membership_retry_at_ms {
            return;
        }
        let founding = self.stats.formed_at_ms == 0 && node == 0 && state.generation == 0;
        let in_group = state.in_group;
        self.nodes[node].membership_busy = true;
        if founding && !in_group {
            let create = CreateNewRaftGroupRequest {
                min_voting_replicas: 1,
                max_voting_replicas: self.config.replicas as u32,
                voting_timeout_secs: 10,
                membership_timeout_secs: 20,
                ..Default::default()
            };
            self.call(node, Call::CreateNewRaftGroup(create), Waiter::Create);
        } else if !in_group {
            // Join through any replica the operator believes is in the group.
            let members: Vec<[u8; 32]> = self
                .nodes
                .iter()
                .filter(|other| other.index != node && other.in_group && other.core.is_some())
                .map(|other| other.peer_id)
                .collect();
            if members.is_empty() {
                self.nodes[node].membership_busy = false;
                return;
            }
            let through = members[self.rng.index(members.len())];
            self.call(
                node,
                Call::JoinRaft(JoinRaftRequest {
                    peer_id: through.to_vec(),
                }),
                Waiter::Join,
            );
        } else {
            self.call(
                node,
                Call::RequestVoting(RequestVotingRequest {}),
                Waiter::RequestVoting,
            );
        }
    }

    fn on_host_answer(&mut self, node: usize, waiter: Waiter, answer: Answer) {
        match waiter {
            Waiter::Client { client, session } => self.answer_client(node, client, session, answer),
            Waiter::Create | Waiter::Join | Waiter::RequestVoting => {
                let what = match waiter {
                    Waiter::Create => "create",
                    Waiter::Join => "join",
                    _ => "request voting",
                };
                let state = &mut self.nodes[node];
                state.membership_busy = false;
                match answer {
                    Answer::Error(error) => {
                        state.membership_retry_at_ms = self.now_ms + 1_000;
                        let line = format!("r{node} {what}: {}", error.message);
                        self.trace.line(self.now_ms, line);
                    }
                    _ => {
                        match waiter {
                            Waiter::Create | Waiter::Join => state.in_group = true,
                            _ => state.voting = true,
                        }
                        self.trace
                            .line(self.now_ms, format!("r{node} {what}: done"));
                    }
                }
            }
            Waiter::Status => {
                if let Answer::Status(status) = answer {
                    self.on_status(node, &status);
                }
            }
            Waiter::Hashes => {
                if let Answer::Hashes(hashes) = answer {
                    self.on_hashes(node, &hashes);
                }
            }
            Waiter::Removal => {
                let line = match answer {
                    Answer::Error(error) => format!("r{node} leave: {}", error.message),
                    _ => format!("r{node} leave: done"),
                };
                self.trace.line(self.now_ms, line);
            }
            Waiter::Relinquish | Waiter::Refresh => {}
        }
    }

    fn on_status(&mut self, node: usize, status: &cloister_proto::enclave::EnclaveStatus) {
        let peer_id = self.nodes[node].peer_id;
        let me = status
            .members
            .iter()
            .find(|member| member.peer_id.as_slice() == peer_id.as_slice());
        let in_group = status.group_config.is_some() && me.is_some();
        let voting = me.is_some_and(|member| member.voting);
        let state = &mut self.nodes[node];
        if state.in_group && !in_group && !state.membership_busy {
            self.trace
                .line(self.now_ms, format!("r{node} is no longer in the group"));
        }
        if !state.membership_busy {
            state.in_group = in_group;
            state.voting = voting;
        }
        let leader = status.role == "leader";
        if leader != state.leader {
            let line = format!(
                "r{node} {} (term {}, applied {}, {} peers connected)",
                if leader { "leads" } else { "no longer leads" },
                status.term,
                status.applied_index,
                status
                    .peers
                    .iter()
                    .filter(|peer| peer.state == "connected")
                    .count()
            );
            self.trace.line(self.now_ms, line);
        }
        let state = &mut self.nodes[node];
        state.leader = leader;
        state.applied_index = status.applied_index;
        if voting && self.amnesiac.remove(&node) {
            self.trace.line(
                self.now_ms,
                format!("r{node} votes again with the group's state"),
            );
        }
    }

    /// Replicas that applied the same index must hold the same database.
    fn on_hashes(&mut self, node: usize, hashes: &cloister_proto::enclave::HashesReply) {
        if hashes.applied_index == 0 || !self.nodes[node].in_group {
            return;
        }
        let Ok(hash) = <[u8; 32]>::try_from(hashes.db_hash.as_slice()) else {
            self.fail(
                "protocol",
                format!("r{node} sent a malformed database hash"),
            );
            return;
        };
        self.stats.hash_checks += 1;
        match self.hashes.get(&hashes.applied_index) {
            Some((seen, by)) if *seen != hash => {
                let detail = format!(
                    "at applied index {} r{node} holds database {} but r{by} held {}",
                    hashes.applied_index,
                    hex::encode(&hash[..8]),
                    hex::encode(&seen[..8])
                );
                self.fail("equal-hashes", detail);
            }
            Some(_) => {}
            None => {
                self.hashes.insert(hashes.applied_index, (hash, node));
                if self.hashes.len() > 100_000 {
                    self.hashes.pop_first();
                }
            }
        }
    }

    /// A peer frame reaches `to`.
    pub(crate) fn on_deliver(&mut self, from: [u8; 32], to: usize, generation: u32, data: Vec<u8>) {
        if self.nodes[to].generation != generation || self.nodes[to].core.is_none() {
            return;
        }
        self.stats.frames_delivered += 1;
        if self.recent_frames.len() == 256 {
            self.recent_frames.pop_front();
        }
        self.recent_frames.push_back((from, to, data.clone()));
        let message = UntrustedMessage {
            inner: Some(untrusted_message::Inner::PeerMessage(PeerMessage {
                peer_id: from.to_vec(),
                data,
            })),
        };
        self.feed(to, &message);
    }

    pub(crate) fn on_reset(&mut self, node: usize, generation: u32, peer: [u8; 32]) {
        if self.nodes[node].generation != generation {
            return;
        }
        let message = UntrustedMessage {
            inner: Some(untrusted_message::Inner::ResetPeer(ResetPeer {
                peer_id: peer.to_vec(),
            })),
        };
        self.stats.resets += 1;
        self.feed(node, &message);
    }

    /// Ask replica `node` to hand over leadership.
    pub(crate) fn relinquish(&mut self, node: usize) {
        self.call(
            node,
            Call::RelinquishLeadership(RelinquishLeadershipRequest {}),
            Waiter::Relinquish,
        );
    }

    /// Replica `node` asks to be removed from the group.
    pub(crate) fn request_removal(&mut self, node: usize) {
        self.call(
            node,
            Call::RequestRemoval(cloister_proto::enclave::RequestRemovalRequest {}),
            Waiter::Removal,
        );
    }

    /// Replica `node` refreshes its attestation (new client key, peers re-attest).
    pub(crate) fn refresh(&mut self, node: usize) {
        self.call(
            node,
            Call::RefreshAttestation(RefreshAttestationRequest {}),
            Waiter::Refresh,
        );
    }

    /// The machine of replica `node` dies: its core's memory is gone.
    pub(crate) fn crash(&mut self, node: usize) {
        let state = &mut self.nodes[node];
        state.core = None;
        state.waiting.clear();
        state.in_group = false;
        state.voting = false;
        state.leader = false;
        state.membership_busy = false;
        self.amnesiac.insert(node);
        self.stats.crashes += 1;
        self.trace.line(self.now_ms, format!("r{node} crashes"));
    }

    /// The machine comes back with a new core (a new identity, no state): it joins again.
    pub(crate) fn on_restart(&mut self, node: usize) {
        if self.nodes[node].core.is_some() {
            return;
        }
        let generation = self.nodes[node].generation + 1;
        let skew = self.nodes[node].skew_ms;
        match Node::start(self, node, generation) {
            Ok(mut fresh) => {
                fresh.skew_ms = skew;
                self.nodes[node] = fresh;
            }
            Err(error) => self.fail("internal", error),
        }
    }
}
