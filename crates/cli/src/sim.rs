//! `cloister sim`: the deterministic simulator (`cloister-sim`) from the command line.
//!
//! ```text
//!  cloister sim --seed 42 [--replicas 5] [--steps 50000]   one seed: summary, or the failure
//!  cloister sim --seeds 0..100                              a range, one line per seed
//!  cloister sim --soak 30                                   random seeds for 30 minutes
//! ```
//!
//! A failing seed prints the broken invariant and writes the end of its trace to
//! `--trace-dir` (default: the current directory) as `cloister-sim-SEED.trace`; the same
//! command with `--seed SEED` replays it exactly.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use cloister_sim::{Failure as SimFailure, SimConfig, Summary};
use rand::RngCore;

use crate::exit::{Failure, Outcome};

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Run this one seed.
    #[arg(long, conflicts_with_all = ["seeds", "soak"])]
    pub seed: Option<u64>,
    /// Run every seed in A..B (B excluded).
    #[arg(long, value_parser = parse_range, conflicts_with = "soak")]
    pub seeds: Option<Range<u64>>,
    /// Run random seeds for this many minutes.
    #[arg(long)]
    pub soak: Option<u64>,
    /// Replicas in the simulated group (3 to 7).
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    /// Events to run with faults on (the heal phase after them is extra).
    #[arg(long, default_value_t = 20_000)]
    pub steps: u64,
    /// Simulated clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Where a failing seed's trace goes.
    #[arg(long, default_value = ".")]
    pub trace_dir: PathBuf,
    /// Write the trace of a passing seed too (`--seed` only).
    #[arg(long, requires = "seed")]
    pub keep_trace: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Bound on a soak, so a typo cannot run for weeks.
const SOAK_MINUTES_MAX: u64 = 7 * 24 * 60;
/// Bound on one range.
const SEEDS_PER_RANGE_MAX: u64 = 10_000_000;

fn parse_range(text: &str) -> Result<Range<u64>, String> {
    let (start, end) = text
        .split_once("..")
        .ok_or_else(|| format!("{text:?} is not a range; write A..B"))?;
    let start: u64 = start
        .parse()
        .map_err(|_| format!("{start:?} is not a seed (a number)"))?;
    let end: u64 = end
        .parse()
        .map_err(|_| format!("{end:?} is not a seed (a number)"))?;
    if start >= end {
        return Err(format!("{text}: the range is empty"));
    }
    if end - start > SEEDS_PER_RANGE_MAX {
        return Err(format!(
            "{text}: at most {SEEDS_PER_RANGE_MAX} seeds per run"
        ));
    }
    Ok(start..end)
}

impl SimArgs {
    fn config(&self, seed: u64) -> SimConfig {
        let mut config = SimConfig::new(seed);
        config.replicas = self.replicas;
        config.steps = self.steps;
        config.clients = self.clients;
        config
    }
}

/// `cloister sim`.
pub async fn run(args: SimArgs) -> Result<Outcome, Failure> {
    // Refuse a bad shape before any work, with the simulator's own words.
    args.config(0).validate().map_err(Failure::usage)?;
    if args.seed.is_none() && args.seeds.is_none() && args.soak.is_none() {
        return Err(Failure::usage(
            "pass --seed S, --seeds A..B or --soak MINUTES".into(),
        ));
    }
    if let Some(minutes) = args.soak {
        if minutes == 0 || minutes > SOAK_MINUTES_MAX {
            return Err(Failure::usage(format!(
                "--soak is {minutes}; it must be 1 to {SOAK_MINUTES_MAX} minutes"
            )));
        }
    }
    tokio::task::spawn_blocking(move || run_blocking(&args))
        .await
        .map_err(|error| Failure::other(anyhow::anyhow!("the simulator thread: {error}")))?
}

fn run_blocking(args: &SimArgs) -> Result<Outcome, Failure> {
    if let Some(seed) = args.seed {
        return match cloister_sim::run(args.config(seed)) {
            Ok(summary) => {
                let mut text = summary.to_string();
                if args.keep_trace {
                    let path = args.trace_dir.join(format!("cloister-sim-{seed}.trace"));
                    std::fs::write(&path, summary.trace_tail.join("\n") + "\n").map_err(
                        |error| Failure::other(anyhow::anyhow!("{}: {error}", path.display())),
                    )?;
                    text.push_str(&format!("\ntrace: {}", path.display()));
                }
                Ok(Outcome::new(text, summary_json(&summary)))
            }
            Err(failure) => Err(failed(&failure, &args.trace_dir)),
        };
    }
    let started = Instant::now();
    let soak = args.soak.map(|minutes| Duration::from_secs(minutes * 60));
    let mut seeds: Box<dyn Iterator<Item = u64>> = match (&args.seeds, soak) {
        (Some(range), _) => Box::new(range.clone()),
        // Soak: seeds from the OS, so every soak explores new ground.
        _ => Box::new(std::iter::repeat_with(|| rand::rngs::OsRng.next_u64())),
    };
    let (mut passed, mut failures, mut operations) = (0u64, Vec::new(), 0u64);
    let mut simulated_ms = 0u64;
    loop {
        if soak.is_some_and(|soak| started.elapsed() >= soak) {
            break;
        }
        let Some(seed) = seeds.next() else { break };
        match cloister_sim::run(args.config(seed)) {
            Ok(summary) => {
                passed += 1;
                operations += summary.stats.operations;
                simulated_ms += summary.simulated_ms;
                if !args.json {
                    println!(
                        "seed {seed} ok ({} operations, {} faults: {})",
                        summary.stats.operations, summary.stats.faults, summary.faults
                    );
                }
            }
            Err(failure) => {
                let reported = failed(&failure, &args.trace_dir);
                if !args.json {
                    println!("{}", reported.message());
                }
                failures.push(failure.seed);
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let text = format!(
        "{passed} seeds passed, {} failed{}; {operations} operations, {:.1} simulated hours, \
         {:.1} s of wall time",
        failures.len(),
        if failures.is_empty() {
            String::new()
        } else {
            format!(" (seeds {failures:?})")
        },
        simulated_ms as f64 / 3_600_000.0,
        elapsed
    );
    let json = serde_json::json!({
        "status": if failures.is_empty() { "ok" } else { "failed" },
        "passed": passed,
        "failed_seeds": failures,
        "operations": operations,
        "simulated_ms": simulated_ms,
        "wall_secs": elapsed,
    });
    if failures.is_empty() {
        Ok(Outcome::new(text, json))
    } else {
        Err(Failure::other(anyhow::anyhow!(text)))
    }
}

fn summary_json(summary: &Summary) -> serde_json::Value {
    let stats = &summary.stats;
    serde_json::json!({
        "status": "ok",
        "seed": summary.seed,
        "replicas": summary.replicas,
        "faults": summary.faults,
        "simulated_ms": summary.simulated_ms,
        "operations": stats.operations,
        "attempts": stats.attempts,
        "faults_injected": stats.faults,
        "crashes": stats.crashes,
        "hash_checks": stats.hash_checks,
        "checks": stats.checks,
        "trace_hash": summary.trace_hash,
    })
}

/// Write the failure's trace and describe it, with the command that replays it.
fn failed(failure: &SimFailure, trace_dir: &Path) -> Failure {
    let path = trace_dir.join(format!("cloister-sim-{}.trace", failure.seed));
    let written = std::fs::write(&path, failure.trace_tail.join("\n") + "\n");
    let trace = match written {
        Ok(()) => format!("trace: {}", path.display()),
        Err(error) => format!("trace not written to {}: {error}", path.display()),
    };
    Failure::other(anyhow::anyhow!(
        "{failure}\n{trace}\nreplay: cloister sim --seed {}",
        failure.seed
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_writes_its_trace_and_says_how_to_replay_it() {
        let dir = std::env::temp_dir().join(format!("cloister-sim-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let failure = SimFailure {
            seed: 77,
            invariant: "guess-limit",
            detail: "backup 00: three wrong guesses answered with max_tries 2".into(),
            trace_tail: vec!["# cloister sim --seed 77".into(), "0.000 r0 starts".into()],
            at_ms: 1_500,
        };
        let reported = failed(&failure, &dir);
        let message = reported.message();
        assert!(
            message.contains("seed 77 FAILED guess-limit at 1.500 s"),
            "{message}"
        );
        assert!(
            message.contains("replay: cloister sim --seed 77"),
            "{message}"
        );
        let trace = std::fs::read_to_string(dir.join("cloister-sim-77.trace")).unwrap();
        assert_eq!(trace, "# cloister sim --seed 77\n0.000 r0 starts\n");
        // A directory that cannot take the file: the failure is still reported, and says so.
        let reported = failed(&failure, &dir.join("missing/deeper"));
        assert!(
            reported.message().contains("trace not written"),
            "{}",
            reported.message()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ranges_parse_and_bad_ones_say_why() {
        assert_eq!(parse_range("3..9").unwrap(), 3..9);
        assert!(parse_range("9..3").unwrap_err().contains("empty"));
        assert!(parse_range("0..20000000").unwrap_err().contains("at most"));
        assert!(parse_range("a..3").unwrap_err().contains("not a seed"));
    }
}
