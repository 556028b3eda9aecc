//! Cloister's deterministic simulator, in the tradition of FoundationDB's simulation and
//! TigerBeetle's VOPR: several *real* enclave cores ([`cloister_enclave::Enclave`]) with
//! simulated hosts, network, clocks and SVR2 clients in one thread, every choice drawn from
//! one `u64` seed, and checkers that watch the invariants users depend on.
//!
//! ```text
//!  seed ─▶ SimRng ─┬─ fault plan (which faults, how often)      world: event queue by time
//!                  ├─ cores' Env seeds, latencies, client ops ──▶ hosts ◀─▶ network ◀─▶ cores
//!                  └─ fault draws                                  clients ─▶ History
//!  checks: equal database hashes at equal applied index (as it runs), liveness once faults
//!  stop, then guess limit, durability and linearizability over the History (`check`)
//! ```
//!
//! The same seed and build replay exactly: [`Summary::trace_hash`] covers every event and
//! every byte the cores emitted. `cloister sim --seed S` runs one seed from the command line;
//! docs/simulation.md says what is simulated and how to replay a failure.
//!
//! ```no_run
//! let summary = cloister_sim::run(cloister_sim::SimConfig::new(42)).unwrap();
//! println!("{summary}");
//! ```

pub mod check;
mod client;
pub mod config;
mod faults;
pub mod history;
mod net;
mod node;
mod report;
pub mod rng;
mod trace;
mod world;

pub use config::{FaultPlan, SimConfig};
pub use report::{Failure, Stats, Summary};
pub use world::{LIVENESS_BOUND_MS, Sim};

/// Run one seed: `Ok` with a summary when every check passed, the failure otherwise (a
/// configuration the simulator cannot run is a failure of invariant `config`).
pub fn run(config: SimConfig) -> Result<Summary, Box<Failure>> {
    let seed = config.seed;
    let sim = Sim::new(config).map_err(|detail| {
        Box::new(Failure {
            seed,
            invariant: "config",
            detail,
            trace_tail: Vec::new(),
            at_ms: 0,
        })
    })?;
    sim.run()
}
