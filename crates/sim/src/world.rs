//! The simulated world: replicas (a real core each, with its simulated host), clients, a
//! network, and one clock, advanced event by event in time order.
//!
//! ```text
//!  setup: replica 0 creates the group, the others join and ask to vote (no faults)
//!  load:  `steps` events with clients and faults on; checks after every step
//!  heal:  faults off, partitions healed, crashed replicas replaced; every pending operation
//!         must finish within LIVENESS_BOUND_MS; then the history checkers run
//! ```
//!
//! Everything a replica's core sees arrives as door messages (`UntrustedMessage`), the way a
//! real host sends them; everything it says leaves through `poll_message`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use cloister_enclave::Enclave;

use crate::client::Client;
use crate::config::{FaultPlan, SimConfig};
use crate::history::History;
use crate::node::Node;
use crate::report::{Failure, Stats, Summary};
use crate::rng::SimRng;
use crate::trace::Trace;

/// The group's time at the start (any fixed value: the run is independent of the real clock).
pub(crate) const START_UNIX_SECS: u64 = 1_800_000_000;
/// How often a host ticks its core.
pub(crate) const TICK_INTERVAL_MS: u64 = 100;
/// How often faults get their chance.
pub(crate) const FAULT_TICK_MS: u64 = 100;
/// How often a host asks its core for its status and database hash.
pub(crate) const OBSERVE_INTERVAL_MS: u64 = 1_000;
/// Once faults stop, every pending operation must finish within this.
pub const LIVENESS_BOUND_MS: u64 = 180_000;
/// The setup phase must form the group within this.
const SETUP_BOUND_MS: u64 = 120_000;

/// Something that happens at a simulated instant.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    /// A host's timer: tick its core.
    Tick { node: usize },
    /// A host looks at its core (status, hashes) and runs its membership duties.
    Observe { node: usize },
    /// A peer frame arrives at `to` (if it is still the same incarnation).
    Deliver {
        from: [u8; 32],
        to: usize,
        generation: u32,
        data: Vec<u8>,
    },
    /// A host tells its core that frames to `peer` were lost.
    Reset {
        node: usize,
        generation: u32,
        peer: [u8; 32],
    },
    /// A client's request reaches a host.
    ToHost {
        node: usize,
        generation: u32,
        client: usize,
        session: u64,
        call: crate::client::ClientCall,
    },
    /// A host's answer reaches a client.
    ToClient {
        client: usize,
        session: u64,
        answer: crate::client::HostAnswer,
    },
    /// A client decides what to do next.
    ClientWake { client: usize },
    /// Faults get their chance.
    FaultTick,
    /// A crashed replica's machine comes back (with a new, empty core).
    Restart { node: usize },
    /// A partition ends.
    HealPartition { id: u64 },
    /// A slow replica recovers.
    Unslow { node: usize },
}

/// One run.
pub struct Sim {
    pub(crate) config: SimConfig,
    pub(crate) plan: FaultPlan,
    pub(crate) rng: SimRng,
    pub(crate) now_ms: u64,
    queue: BTreeMap<(u64, u64), Event>,
    sequence: u64,
    pub(crate) nodes: Vec<Node>,
    pub(crate) clients: Vec<Client>,
    pub(crate) history: History,
    pub(crate) trace: Trace,
    pub(crate) stats: Stats,
    pub(crate) faults_on: bool,
    /// Directed links that carry nothing: (from, to) → partition id.
    pub(crate) blocked: BTreeMap<(usize, usize), u64>,
    pub(crate) partitions: BTreeMap<u64, crate::net::Partition>,
    pub(crate) partition_next: u64,
    /// When the last frame on each directed link is due (links deliver in order).
    pub(crate) link_due: BTreeMap<(usize, usize), u64>,
    /// Recently delivered frames, for replaying hosts: (from peer id, to, data).
    pub(crate) recent_frames: VecDeque<([u8; 32], usize, Vec<u8>)>,
    /// Applied index → (database hash, replica that reported it first).
    pub(crate) hashes: BTreeMap<u64, ([u8; 32], usize)>,
    pub(crate) failure: Option<Failure>,
    /// Replicas whose memory is gone (crashed, or restarted and not yet voting again).
    pub(crate) amnesiac: BTreeSet<usize>,
    /// The backup ids clients share.
    pub(crate) keys: crate::client::Keys,
    /// Attempts answered ERROR_CODE_UNAVAILABLE, which promises that nothing changed.
    pub(crate) refused: BTreeSet<usize>,
}

impl Sim {
    /// A world for `config`, with its fault plan drawn from the seed.
    pub fn new(config: SimConfig) -> Result<Sim, String> {
        config.validate()?;
        let mut rng = SimRng::new(config.seed);
        let plan = FaultPlan::draw(&mut rng);
        let mut sim = Sim {
            plan,
            rng,
            now_ms: 0,
            queue: BTreeMap::new(),
            sequence: 0,
            nodes: Vec::new(),
            clients: Vec::new(),
            history: History::default(),
            trace: Trace::default(),
            stats: Stats::default(),
            faults_on: false,
            blocked: BTreeMap::new(),
            partitions: BTreeMap::new(),
            partition_next: 1,
            link_due: BTreeMap::new(),
            recent_frames: VecDeque::new(),
            hashes: BTreeMap::new(),
            failure: None,
            amnesiac: BTreeSet::new(),
            keys: crate::client::Keys::default(),
            refused: BTreeSet::new(),
            config,
        };
        let line = format!(
            "seed {} replicas {} steps {} clients {} faults {}",
            sim.config.seed, sim.config.replicas, sim.config.steps, sim.config.clients, sim.plan
        );
        sim.trace.line(0, line);
        for index in 0..sim.config.replicas {
            let node = Node::start(&mut sim, index, 0)?;
            sim.nodes.push(node);
            let offset = sim.rng.below(TICK_INTERVAL_MS);
            sim.schedule(offset, Event::Tick { node: index });
            let offset = sim.rng.below(OBSERVE_INTERVAL_MS);
            sim.schedule(offset, Event::Observe { node: index });
        }
        for index in 0..sim.config.clients {
            let client = Client::new(index);
            sim.clients.push(client);
        }
        Ok(sim)
    }

    /// Make a fresh core for replica `node` (at start, or after a crash). An injected bug
    /// goes into replica 0's cores only: one faulty replica among correct ones.
    pub(crate) fn new_core(&mut self, node: usize) -> Result<Enclave, String> {
        let init = cloister_proto::enclave::InitConfig {
            config: Some(cloister_proto::enclave::EnclaveConfig {
                log_level: cloister_proto::enclave::EnclaveLogLevel::Warning as i32,
                client_sessions_max: 0,
                pending_requests_max: 0,
            }),
            initial_timestamp_unix_secs: START_UNIX_SECS + self.now_ms / 1000,
        };
        let env = cloister_enclave::InsecureSimulatedEnv::from_seed(self.rng.seed32());
        #[allow(unused_mut)]
        let mut core = Enclave::init(&prost::Message::encode_to_vec(&init), Box::new(env))
            .map_err(|error| format!("a core refused its init config: {error}"))?;
        #[cfg(feature = "bug-injection")]
        if let Some(bug) = self.config.bug.filter(|_| node == 0) {
            core.inject_bug(bug);
        }
        #[cfg(not(feature = "bug-injection"))]
        let _ = node;
        Ok(core)
    }

    /// Run `event` `delay_ms` from now.
    pub(crate) fn schedule(&mut self, delay_ms: u64, event: Event) {
        self.schedule_at(self.now_ms + delay_ms, event);
    }

    pub(crate) fn schedule_at(&mut self, at_ms: u64, event: Event) {
        self.sequence += 1;
        self.queue
            .insert((at_ms.max(self.now_ms), self.sequence), event);
    }

    /// Record a failed invariant (the first one wins).
    pub(crate) fn fail(&mut self, invariant: &'static str, detail: String) {
        if self.failure.is_none() {
            self.trace
                .line(self.now_ms, format!("FAILED {invariant}: {detail}"));
            self.failure = Some(Failure {
                seed: self.config.seed,
                invariant,
                detail,
                trace_tail: Vec::new(),
                at_ms: self.now_ms,
            });
        }
    }

    /// Run one event; false when nothing is left.
    fn step(&mut self) -> bool {
        let Some(((at, _), event)) = self.queue.pop_first() else {
            return false;
        };
        self.now_ms = at;
        self.stats.events += 1;
        match event {
            Event::Tick { node } => self.on_tick(node),
            Event::Observe { node } => self.on_observe(node),
            Event::Deliver {
                from,
                to,
                generation,
                data,
            } => self.on_deliver(from, to, generation, data),
            Event::Reset {
                node,
                generation,
                peer,
            } => self.on_reset(node, generation, peer),
            Event::ToHost {
                node,
                generation,
                client,
                session,
                call,
            } => self.on_client_call(node, generation, client, session, call),
            Event::ToClient {
                client,
                session,
                answer,
            } => self.on_client_answer(client, session, answer),
            Event::ClientWake { client } => self.on_client_wake(client),
            Event::FaultTick => self.on_fault_tick(),
            Event::Restart { node } => self.on_restart(node),
            Event::HealPartition { id } => self.heal_partition(id),
            Event::Unslow { node } => {
                self.nodes[node].slow_extra_ms = 0;
                self.trace
                    .line(self.now_ms, format!("r{node} no longer slow"));
            }
        }
        true
    }

    /// Run the whole simulation: setup, load with faults, heal, checks.
    pub fn run(mut self) -> Result<Summary, Box<Failure>> {
        // Setup: form the group without faults or clients.
        let setup_deadline = SETUP_BOUND_MS;
        while !self.group_formed() {
            if self.now_ms > setup_deadline || !self.step() {
                self.fail(
                    "liveness",
                    format!(
                        "the group did not form within {} s without faults",
                        setup_deadline / 1000
                    ),
                );
                return Err(self.finish_failure());
            }
            if self.failure.is_some() {
                return Err(self.finish_failure());
            }
        }
        self.trace
            .line(self.now_ms, "group formed; load and faults on");
        self.stats.formed_at_ms = self.now_ms;
        // Load and faults.
        self.faults_on = true;
        self.schedule(FAULT_TICK_MS, Event::FaultTick);
        for client in 0..self.clients.len() {
            let delay = self.rng.below(500);
            self.schedule(delay, Event::ClientWake { client });
        }
        let mut steps = 0;
        while steps < self.config.steps {
            if !self.step() {
                break;
            }
            steps += 1;
            if self.failure.is_some() {
                return Err(self.finish_failure());
            }
        }
        // Heal: faults off; every pending operation must finish in time.
        self.faults_on = false;
        self.heal_everything();
        let heal_started = self.now_ms;
        self.stats.faults_stopped_at_ms = heal_started;
        self.trace.line(self.now_ms, "faults off; healing");
        for client in &mut self.clients {
            client.stop_after_current();
        }
        let deadline = heal_started + LIVENESS_BOUND_MS;
        while !self.clients.iter().all(Client::finished) {
            if self.now_ms > deadline || !self.step() {
                let pending: Vec<String> = self
                    .clients
                    .iter()
                    .filter(|client| !client.finished())
                    .map(Client::describe)
                    .collect();
                self.fail(
                    "liveness",
                    format!(
                        "{} of {} clients still waiting {} s after faults stopped: {}",
                        pending.len(),
                        self.clients.len(),
                        LIVENESS_BOUND_MS / 1000,
                        pending.join("; ")
                    ),
                );
                return Err(self.finish_failure());
            }
            if self.failure.is_some() {
                return Err(self.finish_failure());
            }
        }
        self.stats.healed_at_ms = self.now_ms;
        // Let replicas converge, then compare every live replica's hash once more.
        let settle_until = self.now_ms + 10_000;
        while self.now_ms < settle_until && self.step() {
            if self.failure.is_some() {
                return Err(self.finish_failure());
            }
        }
        // An attempt answered UNAVAILABLE was promised to have changed nothing: the checkers
        // judge the history without it, so a core that applied one anyway is caught.
        self.stats.refused_attempts = self.refused.len() as u64;
        let refused = std::mem::take(&mut self.refused);
        let all = std::mem::take(&mut self.history.attempts);
        self.history.attempts = all
            .iter()
            .enumerate()
            .filter(|(index, _)| !refused.contains(index))
            .map(|(_, attempt)| attempt.clone())
            .collect();
        let report = crate::check::check_history(&self.history);
        self.stats.checks = report.to_string();
        if let Some(violation) = report.violations.first() {
            // The trace ends with the whole history of the backup involved, numbered as the
            // checkers number it, with the attempts answered UNAVAILABLE (left out) marked.
            if let Some(backup_id) = violation.backup_id {
                let mut checked = 0usize;
                let mut lines = Vec::new();
                for (index, attempt) in all.iter().enumerate() {
                    let name = if refused.contains(&index) {
                        "left out (UNAVAILABLE)".to_owned()
                    } else {
                        checked += 1;
                        format!("#{}", checked - 1)
                    };
                    if attempt.backup_id == backup_id {
                        lines.push(format!(
                            "history {name} client {} {} invoked @{} ms, answered {}",
                            attempt.client,
                            crate::check::describe_op(&attempt.op),
                            attempt.invoked_ms,
                            match &attempt.answered {
                                Some((at, outcome)) =>
                                    format!("{} @{at} ms", crate::check::describe_outcome(outcome)),
                                None => "never".to_owned(),
                            }
                        ));
                    }
                }
                for line in lines {
                    self.trace.line(self.now_ms, line);
                }
            }
            let detail = violation.to_string();
            self.fail(violation.invariant, detail);
            return Err(self.finish_failure());
        }
        Ok(self.summary())
    }

    fn group_formed(&self) -> bool {
        self.nodes.iter().all(|node| node.voting)
    }

    fn summary(&self) -> Summary {
        let mut stats = self.stats.clone();
        stats.attempts = self.history.attempts.len() as u64 + stats.refused_attempts;
        stats.answered = self
            .history
            .attempts
            .iter()
            .filter(|attempt| attempt.answered.is_some())
            .count() as u64;
        Summary {
            seed: self.config.seed,
            replicas: self.config.replicas,
            faults: self.plan.to_string(),
            simulated_ms: self.now_ms,
            trace_hash: self.trace.hash_hex(),
            trace_lines: self.trace.count(),
            stats,
            trace_tail: self.trace.tail().map(str::to_owned).collect(),
        }
    }

    fn finish_failure(mut self) -> Box<Failure> {
        let summary = self.summary();
        let mut failure = self.failure.take().unwrap_or(Failure {
            seed: self.config.seed,
            invariant: "internal",
            detail: "the run failed without a recorded reason".into(),
            trace_tail: Vec::new(),
            at_ms: self.now_ms,
        });
        failure.trace_tail = std::iter::once(format!(
            "# cloister sim --seed {} --replicas {} --steps {}: {} (trace hash {})",
            summary.seed, summary.replicas, self.config.steps, summary.faults, summary.trace_hash
        ))
        .chain(self.trace.tail().map(str::to_owned))
        .collect();
        Box::new(failure)
    }
}
