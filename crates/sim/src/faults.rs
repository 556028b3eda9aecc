//! Faults outside the network: partitions, crashes, clocks, slow replicas, garbage from a
//! host, leadership transfer and attestation refresh, each drawn at every fault tick with
//! the rate the seed's [`FaultPlan`](crate::config::FaultPlan) gave it.

use cloister_proto::enclave::{
    GetEnclaveStatusRequest, HostToEnclaveRequest, UntrustedMessage,
    host_to_enclave_request::Inner as Call, untrusted_message,
};
use prost::Message;

use crate::world::{Event, FAULT_TICK_MS, Sim};

impl Sim {
    pub(crate) fn on_fault_tick(&mut self) {
        if !self.faults_on {
            return;
        }
        self.schedule(FAULT_TICK_MS, Event::FaultTick);
        let plan = self.plan.clone();
        let replicas = self.nodes.len();
        if self.rng.chance(plan.partition) {
            self.random_partition();
        }
        if self.rng.chance(plan.crash) {
            self.random_crash();
        }
        if self.rng.chance(plan.clock) {
            let node = self.rng.index(replicas);
            let step = self.rng.between(0, 20_000) as i64 - 10_000;
            self.nodes[node].skew_ms += step;
            self.stats.faults += 1;
            let skew = self.nodes[node].skew_ms;
            self.trace.line(
                self.now_ms,
                format!("fault: r{node}'s clock steps {step} ms (skew now {skew} ms)"),
            );
        }
        if self.rng.chance(plan.slow) {
            let node = self.rng.index(replicas);
            let extra = self.rng.between(100, 3_000);
            let lasting = self.rng.between(1_000, 20_000);
            self.nodes[node].slow_extra_ms = extra;
            self.stats.faults += 1;
            self.trace.line(
                self.now_ms,
                format!("fault: r{node} slow (+{extra} ms) for {lasting} ms"),
            );
            self.schedule(lasting, Event::Unslow { node });
        }
        if self.rng.chance(plan.replay) {
            self.replay_old_frame();
        }
        if self.rng.chance(plan.garbage) {
            self.hand_garbage();
        }
        if self.rng.chance(plan.relinquish) {
            if let Some(leader) = self.nodes.iter().position(|node| node.leader) {
                self.stats.faults += 1;
                self.trace
                    .line(self.now_ms, format!("fault: r{leader} asked to relinquish"));
                self.relinquish(leader);
            }
        }
        if self.rng.chance(plan.leave) {
            self.random_leave();
        }
        if self.rng.chance(plan.refresh) {
            let node = self.rng.index(replicas);
            self.stats.faults += 1;
            self.trace.line(
                self.now_ms,
                format!("fault: r{node} refreshes its attestation"),
            );
            self.refresh(node);
        }
    }

    fn random_partition(&mut self) {
        let replicas = self.nodes.len();
        let duration = if self.rng.chance(100_000) {
            // Now and then one long enough for the transport to give up.
            self.rng.between(60_000, 90_000)
        } else {
            self.rng.between(200, 15_000)
        };
        match self.rng.below(3) {
            0 => {
                // Symmetric: a random minority or majority cut off from the rest.
                let size = self.rng.between(1, (replicas - 1) as u64) as usize;
                let mut side: Vec<usize> = (0..replicas).collect();
                for index in 0..side.len() {
                    let other = index + self.rng.index(side.len() - index);
                    side.swap(index, other);
                }
                side.truncate(size);
                let mut links = Vec::new();
                for a in 0..replicas {
                    for b in 0..replicas {
                        if side.contains(&a) != side.contains(&b) {
                            links.push((a, b));
                        }
                    }
                }
                self.partition(links, duration, "symmetric");
            }
            1 => {
                // One-way: `a` hears nothing from `b`.
                let a = self.rng.index(replicas);
                let b = (a + 1 + self.rng.index(replicas - 1)) % replicas;
                self.partition(vec![(b, a)], duration, "one-way");
            }
            _ => {
                let Some(leader) = self.nodes.iter().position(|node| node.leader) else {
                    return;
                };
                let links = (0..replicas)
                    .filter(|other| *other != leader)
                    .flat_map(|other| [(leader, other), (other, leader)])
                    .collect();
                self.partition(links, duration, "leader-isolating");
            }
        }
    }

    /// Crash a replica, unless that could leave a majority without its memory (the
    /// durability promise holds only while a quorum never loses its memory at once).
    fn random_crash(&mut self) {
        let replicas = self.nodes.len();
        let tolerated = (replicas - 1) / 2;
        if self.amnesiac.len() >= tolerated {
            return;
        }
        let candidates: Vec<usize> = (0..replicas)
            .filter(|node| self.nodes[*node].core.is_some() && !self.amnesiac.contains(node))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let node = candidates[self.rng.index(candidates.len())];
        self.crash(node);
        self.stats.faults += 1;
        let down_for = self.rng.between(500, 20_000);
        self.schedule(down_for, Event::Restart { node });
    }

    /// A voter asks to leave (a membership change under load); it drops its state once
    /// removed, and its operator has it join again. Counted like a crash for durability.
    fn random_leave(&mut self) {
        let tolerated = (self.nodes.len() - 1) / 2;
        if self.amnesiac.len() >= tolerated {
            return;
        }
        let candidates: Vec<usize> = (0..self.nodes.len())
            .filter(|node| {
                self.nodes[*node].voting
                    && self.nodes[*node].core.is_some()
                    && !self.amnesiac.contains(node)
            })
            .collect();
        if candidates.is_empty() {
            return;
        }
        let node = candidates[self.rng.index(candidates.len())];
        self.amnesiac.insert(node);
        self.stats.faults += 1;
        self.trace.line(
            self.now_ms,
            format!("fault: r{node} asks to leave the group"),
        );
        self.request_removal(node);
    }

    /// A host hands its core bytes that are not an honest door message.
    fn hand_garbage(&mut self) {
        let node = self.rng.index(self.nodes.len());
        let bytes = match self.rng.below(3) {
            0 => {
                let length = self.rng.between(0, 256) as usize;
                self.rng.bytes(length)
            }
            1 => {
                // A real request with bytes flipped.
                let mut bytes = UntrustedMessage {
                    inner: Some(untrusted_message::Inner::H2eRequest(HostToEnclaveRequest {
                        request_id: u64::MAX - self.rng.below(1000),
                        inner: Some(Call::GetEnclaveStatus(GetEnclaveStatusRequest {})),
                    })),
                }
                .encode_to_vec();
                let flips = self.rng.between(1, 4);
                for _ in 0..flips {
                    let at = self.rng.index(bytes.len());
                    bytes[at] ^= 1 << self.rng.below(8);
                }
                // Flips that still decode could make another valid call: that is a host
                // choosing a call, not garbage. Only what no longer decodes is handed over.
                if UntrustedMessage::decode(bytes.as_slice()).is_ok() {
                    return;
                }
                bytes
            }
            _ => {
                // An old peer frame, corrupted.
                if self.recent_frames.is_empty() {
                    return;
                }
                let pick = self.rng.index(self.recent_frames.len());
                let (from, _, mut data) = self.recent_frames[pick].clone();
                if !data.is_empty() {
                    let at = self.rng.index(data.len());
                    data[at] ^= 0x5a;
                }
                UntrustedMessage {
                    inner: Some(untrusted_message::Inner::PeerMessage(
                        cloister_proto::enclave::PeerMessage {
                            peer_id: from.to_vec(),
                            data,
                        },
                    )),
                }
                .encode_to_vec()
            }
        };
        self.stats.faults += 1;
        self.trace.line(
            self.now_ms,
            format!(
                "fault: r{node}'s host hands its core {} bytes of garbage",
                bytes.len()
            ),
        );
        self.trace.absorb(&bytes);
        self.feed_bytes(node, &bytes);
    }

    /// Faults stop: partitions heal, slow replicas recover, crashed machines come back.
    pub(crate) fn heal_everything(&mut self) {
        let ids: Vec<u64> = self.partitions.keys().copied().collect();
        for id in ids {
            self.heal_partition(id);
        }
        for node in 0..self.nodes.len() {
            self.nodes[node].slow_extra_ms = 0;
            if self.nodes[node].core.is_none() {
                self.schedule(0, Event::Restart { node });
            }
        }
    }
}
