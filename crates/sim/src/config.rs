//! What a run simulates: its size and length (from the caller) and its faults (drawn from
//! the seed, swarm-style: each seed switches a random subset of faults on, at random rates,
//! so that rare combinations get explored without hand-tuned schedules).

use std::fmt;

use crate::rng::SimRng;

/// Smallest and largest group the simulator runs.
pub const REPLICAS_MIN: usize = 3;
/// See [`REPLICAS_MIN`].
pub const REPLICAS_MAX: usize = 7;
/// Bound on `steps` (a run's fault phase), so a typo cannot run for days.
pub const STEPS_MAX: u64 = 10_000_000;

/// A run's shape, as the caller asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Every choice of the run derives from this.
    pub seed: u64,
    /// Replicas in the group ([`REPLICAS_MIN`] to [`REPLICAS_MAX`]).
    pub replicas: usize,
    /// Events processed while faults are on (the heal phase that follows is extra).
    pub steps: u64,
    /// Simulated clients.
    pub clients: usize,
    /// A bug injected into replica 0's cores (feature `bug-injection`).
    #[cfg(feature = "bug-injection")]
    pub bug: Option<cloister_enclave::InjectedBug>,
}

impl SimConfig {
    /// The defaults for `seed`: 3 replicas, 20,000 steps, 8 clients.
    pub fn new(seed: u64) -> Self {
        SimConfig {
            seed,
            replicas: 3,
            steps: 20_000,
            clients: 8,
            #[cfg(feature = "bug-injection")]
            bug: None,
        }
    }

    /// Refuse a shape the simulator cannot run, saying why.
    pub fn validate(&self) -> Result<(), String> {
        if !(REPLICAS_MIN..=REPLICAS_MAX).contains(&self.replicas) {
            return Err(format!(
                "replicas is {}; it must be {REPLICAS_MIN} to {REPLICAS_MAX}",
                self.replicas
            ));
        }
        if self.steps == 0 || self.steps > STEPS_MAX {
            return Err(format!(
                "steps is {}; it must be 1 to {STEPS_MAX}",
                self.steps
            ));
        }
        if !(1..=64).contains(&self.clients) {
            return Err(format!("clients is {}; it must be 1 to 64", self.clients));
        }
        Ok(())
    }
}

/// Which faults a run injects and how often. Rates are per million chances; a chance comes
/// at every frame (network faults) or every fault tick (the others).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FaultPlan {
    /// A peer frame is lost and the sending host, later, tells its core `ResetPeer`.
    pub loss: u32,
    /// A peer frame is delivered a second time (a misbehaving host).
    pub duplicate: u32,
    /// A peer frame overtakes the one before it (a misbehaving host).
    pub reorder: u32,
    /// A host hands its core an old frame again (a replaying host).
    pub replay: u32,
    /// A host hands its core garbage (random or corrupted bytes).
    pub garbage: u32,
    /// Extra latency on a frame, up to `delay_max_ms`.
    pub delay: u32,
    /// Most extra latency a delayed frame gets.
    pub delay_max_ms: u64,
    /// Per fault tick: start a partition (symmetric, one-way, or isolating the leader).
    pub partition: u32,
    /// Per fault tick: crash a replica (its memory is lost; it rejoins as a new replica).
    pub crash: u32,
    /// Per fault tick: step or skew a host's clock.
    pub clock: u32,
    /// Per fault tick: make a replica slow (all its frames late) for a while.
    pub slow: u32,
    /// Per fault tick: ask the leader to hand over leadership.
    pub relinquish: u32,
    /// Per fault tick: a replica asks to leave the group (its state is dropped), then its
    /// operator has it join again.
    pub leave: u32,
    /// Per fault tick: refresh a replica's attestation (new client key, peer re-attest).
    pub refresh: u32,
}

impl FaultPlan {
    /// Draw a plan: each fault on with probability one half, at a rate up to its ceiling.
    pub fn draw(rng: &mut SimRng) -> Self {
        let mut pick = |ceiling: u32| {
            if rng.chance(500_000) {
                rng.between(1, u64::from(ceiling)) as u32
            } else {
                0
            }
        };
        let mut plan = FaultPlan {
            loss: pick(20_000),
            duplicate: pick(5_000),
            reorder: pick(5_000),
            replay: pick(5_000),
            garbage: pick(5_000),
            delay: pick(200_000),
            delay_max_ms: 0,
            partition: pick(20_000),
            crash: pick(10_000),
            clock: pick(20_000),
            slow: pick(10_000),
            relinquish: pick(10_000),
            leave: pick(5_000),
            refresh: pick(10_000),
        };
        plan.delay_max_ms = if plan.delay > 0 {
            rng.between(10, 1_000)
        } else {
            0
        };
        plan
    }

    /// The faults switched on, by name.
    pub fn enabled(&self) -> Vec<&'static str> {
        [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("replay", self.replay),
            ("garbage", self.garbage),
            ("delay", self.delay),
            ("partition", self.partition),
            ("crash", self.crash),
            ("clock", self.clock),
            ("slow", self.slow),
            ("relinquish", self.relinquish),
            ("leave", self.leave),
            ("refresh", self.refresh),
        ]
        .into_iter()
        .filter(|(_, rate)| *rate > 0)
        .map(|(name, _)| name)
        .collect()
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let enabled = self.enabled();
        if enabled.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&enabled.join(","))
        }
    }
}
