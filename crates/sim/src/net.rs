//! The simulated network between hosts, and the faults that live in it.
//!
//! An honest host transport delivers each frame to a peer exactly once and in order, or
//! tells its own core `ResetPeer` (see `crates/host/src/peer`). The simulator does the same
//! on every link, with latency, and then breaks the promise on purpose: a lost frame (the
//! sender's host says so, later), partitions (frames wait for the link, up to the real
//! transport's abandon time, then are dropped with a reset), and misbehaving hosts that
//! duplicate, reorder or replay frames without saying anything.

use cloister_proto::enclave::PeerMessage;

use crate::node::short;
use crate::world::{Event, Sim};

/// Latency of a healthy link.
const LATENCY_MIN_MS: u64 = 1;
const LATENCY_MAX_MS: u64 = 10;
/// After this long unreachable, the real transport abandons a peer's queue and resets.
pub(crate) const ABANDON_AFTER_MS: u64 = 60_000;
/// How long a host takes to notice a lost frame and reset.
const RESET_DELAY_MIN_MS: u64 = 20;
const RESET_DELAY_MAX_MS: u64 = 1_000;
/// Bound on frames held for a partitioned link.
const HELD_FRAMES_MAX: usize = 10_000;

/// A frame waiting for a partitioned link.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    from: usize,
    to: usize,
    from_peer: [u8; 32],
    to_generation: u32,
    data: Vec<u8>,
}

/// A partition: some directed links carry nothing until it heals.
#[derive(Debug, Clone)]
pub(crate) struct Partition {
    pub(crate) links: Vec<(usize, usize)>,
    pub(crate) started_ms: u64,
    /// Frames waiting on its links, in the order they were sent.
    pub(crate) held: Vec<Held>,
}

impl Sim {
    /// Replica `from`'s core sends `frame`.
    pub(crate) fn send_frame(&mut self, from: usize, frame: PeerMessage) {
        self.stats.frames_sent += 1;
        let from_peer = self.nodes[from].peer_id;
        let from_generation = self.nodes[from].generation;
        let Some(to) = self
            .nodes
            .iter()
            .position(|node| node.core.is_some() && node.peer_id.as_slice() == frame.peer_id)
        else {
            // Nobody has that id (a crashed replica's): the host gives up on it, later.
            if let Ok(peer) = <[u8; 32]>::try_from(frame.peer_id.as_slice()) {
                self.owe_reset(from, from_generation, peer, 5_000);
            }
            return;
        };
        let to_generation = self.nodes[to].generation;
        if let Some(id) = self.blocked.get(&(from, to)).copied() {
            if let Some(partition) = self.partitions.get_mut(&id) {
                if partition.held.len() < HELD_FRAMES_MAX {
                    partition.held.push(Held {
                        from,
                        to,
                        from_peer,
                        to_generation,
                        data: frame.data,
                    });
                    return;
                }
            }
            // Too much waiting: the transport's buffer is full; drop and reset.
            let to_peer = self.nodes[to].peer_id;
            self.owe_reset(from, from_generation, to_peer, 0);
            return;
        }
        if self.faults_on && self.rng.chance(self.plan.loss) {
            self.stats.faults += 1;
            let to_peer = self.nodes[to].peer_id;
            let delay = self.rng.between(RESET_DELAY_MIN_MS, RESET_DELAY_MAX_MS);
            self.trace
                .line(self.now_ms, format!("fault: frame r{from}->r{to} lost"));
            self.owe_reset(from, from_generation, to_peer, delay);
            return;
        }
        let mut latency = self.rng.between(LATENCY_MIN_MS, LATENCY_MAX_MS)
            + self.nodes[from].slow_extra_ms
            + self.nodes[to].slow_extra_ms;
        if self.faults_on && self.rng.chance(self.plan.delay) {
            latency += self.rng.between(1, self.plan.delay_max_ms.max(1));
        }
        let reorder = self.faults_on && self.rng.chance(self.plan.reorder);
        let due = if reorder {
            // A misbehaving host lets this frame overtake the ones before it.
            self.stats.faults += 1;
            self.trace.line(
                self.now_ms,
                format!("fault: frame r{from}->r{to} reordered"),
            );
            self.now_ms + LATENCY_MIN_MS
        } else {
            self.link_slot(from, to, latency)
        };
        if self.faults_on && self.rng.chance(self.plan.duplicate) {
            self.stats.faults += 1;
            self.trace.line(
                self.now_ms,
                format!("fault: frame r{from}->r{to} duplicated"),
            );
            let again = due + self.rng.between(0, 50);
            self.schedule_at(
                again,
                Event::Deliver {
                    from: from_peer,
                    to,
                    generation: to_generation,
                    data: frame.data.clone(),
                },
            );
        }
        self.schedule_at(
            due,
            Event::Deliver {
                from: from_peer,
                to,
                generation: to_generation,
                data: frame.data,
            },
        );
    }

    /// When a frame sent now with `latency_ms` arrives on the link `from -> to`: never before
    /// the frames already on it (links deliver in order).
    fn link_slot(&mut self, from: usize, to: usize, latency_ms: u64) -> u64 {
        let last = self.link_due.get(&(from, to)).copied().unwrap_or(0);
        let due = (self.now_ms + latency_ms).max(last);
        self.link_due.insert((from, to), due);
        due
    }

    /// The host of `node` will tell its core that frames to `peer` were lost.
    fn owe_reset(&mut self, node: usize, generation: u32, peer: [u8; 32], delay_ms: u64) {
        self.schedule(
            delay_ms,
            Event::Reset {
                node,
                generation,
                peer,
            },
        );
    }

    /// Cut the directed `links` until the partition heals after `duration_ms`.
    pub(crate) fn partition(&mut self, links: Vec<(usize, usize)>, duration_ms: u64, kind: &str) {
        let id = self.partition_next;
        self.partition_next += 1;
        let mut taken = Vec::new();
        for link in links {
            if self.blocked.contains_key(&link) {
                continue;
            }
            self.blocked.insert(link, id);
            taken.push(link);
        }
        if taken.is_empty() {
            return;
        }
        self.stats.faults += 1;
        let described: Vec<String> = taken.iter().map(|(a, b)| format!("r{a}->r{b}")).collect();
        self.trace.line(
            self.now_ms,
            format!(
                "fault: {kind} partition #{id} for {} ms: {}",
                duration_ms,
                described.join(" ")
            ),
        );
        self.partitions.insert(
            id,
            Partition {
                links: taken,
                started_ms: self.now_ms,
                held: Vec::new(),
            },
        );
        self.schedule(duration_ms, Event::HealPartition { id });
    }

    /// A partition ends: held frames go out in order, or, if it lasted past the transport's
    /// abandon time, are dropped and their senders reset.
    pub(crate) fn heal_partition(&mut self, id: u64) {
        let Some(partition) = self.partitions.remove(&id) else {
            return;
        };
        for link in &partition.links {
            self.blocked.remove(link);
        }
        let abandoned = self.now_ms - partition.started_ms >= ABANDON_AFTER_MS;
        self.trace.line(
            self.now_ms,
            format!(
                "partition #{id} heals ({} frames {})",
                partition.held.len(),
                if abandoned { "dropped" } else { "released" }
            ),
        );
        let mut reset: Vec<(usize, [u8; 32])> = Vec::new();
        for Held {
            from,
            to,
            from_peer,
            to_generation,
            data,
        } in partition.held
        {
            if abandoned {
                let to_peer = self.nodes[to].peer_id;
                if !reset.contains(&(from, to_peer)) {
                    reset.push((from, to_peer));
                }
                continue;
            }
            let latency = self.rng.between(LATENCY_MIN_MS, LATENCY_MAX_MS);
            let due = self.link_slot(from, to, latency);
            self.schedule_at(
                due,
                Event::Deliver {
                    from: from_peer,
                    to,
                    generation: to_generation,
                    data,
                },
            );
        }
        for (from, peer) in reset {
            let generation = self.nodes[from].generation;
            self.owe_reset(from, generation, peer, 0);
        }
    }

    /// A replaying host hands its core a frame it already delivered.
    pub(crate) fn replay_old_frame(&mut self) {
        if self.recent_frames.is_empty() {
            return;
        }
        let pick = self.rng.index(self.recent_frames.len());
        let (from, to, data) = self.recent_frames[pick].clone();
        self.stats.faults += 1;
        self.trace.line(
            self.now_ms,
            format!(
                "fault: r{to}'s host replays an old frame from {}",
                short(&from)
            ),
        );
        let generation = self.nodes[to].generation;
        self.schedule(
            0,
            Event::Deliver {
                from,
                to,
                generation,
                data,
            },
        );
    }
}
