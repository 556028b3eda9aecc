//! What a run reports: a summary when every check passed, or the failed invariant with the
//! seed that replays it and the end of the trace.

use std::fmt;

/// Counters of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events processed (all phases).
    pub events: u64,
    /// Client attempts.
    pub attempts: u64,
    /// Attempts that got a definitive answer.
    pub answered: u64,
    /// Operations completed.
    pub operations: u64,
    /// Operations given up after every attempt failed.
    pub operations_abandoned: u64,
    /// Attempts answered UNAVAILABLE (promised not applied; left out of the history checks).
    pub refused_attempts: u64,
    /// Sessions a client dropped (error or timeout).
    pub client_errors: u64,
    /// Faults injected.
    pub faults: u64,
    /// Crashes among them.
    pub crashes: u64,
    /// Peer frames the cores sent.
    pub frames_sent: u64,
    /// Peer frames delivered to cores.
    pub frames_delivered: u64,
    /// Door messages a core refused (garbage, replays, stale frames).
    pub refused_by_cores: u64,
    /// `ResetPeer`s hosts gave their cores.
    pub resets: u64,
    /// Hash comparisons between replicas at equal applied indexes.
    pub hash_checks: u64,
    /// Lines the cores logged.
    pub core_log_lines: u64,
    /// When the group had formed (simulated ms).
    pub formed_at_ms: u64,
    /// When faults stopped.
    pub faults_stopped_at_ms: u64,
    /// When every client had finished after that.
    pub healed_at_ms: u64,
    /// The history checkers' verdict.
    pub checks: String,
}

/// A run in which every check passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The seed that replays this run.
    pub seed: u64,
    /// Replicas in the group.
    pub replicas: usize,
    /// The faults the seed switched on.
    pub faults: String,
    /// Simulated time the run covered.
    pub simulated_ms: u64,
    /// SHA-256 over the whole trace: equal for every run of this seed and build.
    pub trace_hash: String,
    /// Lines in the trace.
    pub trace_lines: u64,
    /// What happened.
    pub stats: Stats,
    /// The last lines of the trace, oldest first (`cloister sim --keep-trace` writes them).
    pub trace_tail: Vec<String>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        writeln!(
            f,
            "seed {} ok: {} replicas, {:.1} s simulated, faults [{}]",
            self.seed,
            self.replicas,
            self.simulated_ms as f64 / 1000.0,
            self.faults
        )?;
        writeln!(
            f,
            "  operations {} ({} attempts, {} answered, {} unavailable, {} abandoned), {} faults \
             ({} crashes), {} frames, {} refused by cores, {} resets",
            s.operations,
            s.attempts,
            s.answered,
            s.refused_attempts,
            s.operations_abandoned,
            s.faults,
            s.crashes,
            s.frames_delivered,
            s.refused_by_cores,
            s.resets
        )?;
        writeln!(
            f,
            "  checks: {} hash comparisons equal, clients done {:.1} s after faults stopped; {}",
            s.hash_checks,
            s.healed_at_ms.saturating_sub(s.faults_stopped_at_ms) as f64 / 1000.0,
            s.checks
        )?;
        write!(
            f,
            "  trace {} ({} lines)",
            self.trace_hash, self.trace_lines
        )
    }
}

/// A run that broke an invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Replays the failure: `cloister sim --seed SEED`.
    pub seed: u64,
    /// `guess-limit`, `durability`, `linearizability`, `equal-hashes`, `liveness`,
    /// `protocol`, `attestation` or `internal`.
    pub invariant: &'static str,
    /// What broke, naming the attempts or replicas involved.
    pub detail: String,
    /// The last lines of the trace, oldest first (the first line says how to replay).
    pub trace_tail: Vec<String>,
    /// When it was detected, in simulated ms.
    pub at_ms: u64,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} FAILED {} at {:.3} s: {}",
            self.seed,
            self.invariant,
            self.at_ms as f64 / 1000.0,
            self.detail
        )
    }
}
