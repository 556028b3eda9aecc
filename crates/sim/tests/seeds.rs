//! The simulator on every commit: replay is exact, a fixed set of seeds across group sizes
//! passes every check, and so does every seed in `regression-seeds.txt`.
//!
//! The set is sized for about three minutes of CI on two cores; `cloister sim --soak` and
//! `--seeds` explore further (docs/simulation.md).

use cloister_sim::{SimConfig, Summary, run};

fn config(seed: u64, replicas: usize, steps: u64) -> SimConfig {
    let mut config = SimConfig::new(seed);
    config.replicas = replicas;
    config.steps = steps;
    config
}

fn pass(config: SimConfig) -> Summary {
    match run(config) {
        Ok(summary) => summary,
        Err(failure) => {
            for line in failure.trace_tail.iter().rev().take(40).rev() {
                eprintln!("{line}");
            }
            panic!("{failure}\nreplay: cloister sim --seed {}", failure.seed);
        }
    }
}

#[test]
fn the_same_seed_replays_byte_for_byte() {
    let first = pass(config(3, 3, 6_000));
    let second = pass(config(3, 3, 6_000));
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_eq!(first, second, "every counter replays too");
    assert!(first.stats.operations > 0 && first.stats.frames_delivered > 0);
    let other = pass(config(4, 3, 6_000));
    assert_ne!(
        first.trace_hash, other.trace_hash,
        "another seed, another run"
    );
}

#[test]
fn a_shape_the_simulator_cannot_run_is_refused() {
    for (replicas, steps, expected) in [
        (2, 100, "replicas is 2"),
        (8, 100, "replicas is 8"),
        (3, 0, "steps is 0"),
    ] {
        let failure = run(config(1, replicas, steps)).unwrap_err();
        assert_eq!(failure.invariant, "config");
        assert!(failure.detail.contains(expected), "{failure}");
    }
}

#[test]
fn ci_seeds_three_replicas() {
    for seed in 0..16 {
        pass(config(seed, 3, 20_000));
    }
}

#[test]
fn ci_seeds_five_replicas() {
    for seed in 100..106 {
        pass(config(seed, 5, 20_000));
    }
}

#[test]
fn ci_seeds_seven_replicas() {
    for seed in 200..203 {
        pass(config(seed, 7, 20_000));
    }
}

#[test]
fn regression_seeds() {
    let list = include_str!("../regression-seeds.txt");
    for line in list.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<u64> = line
            .split_whitespace()
            .map(|field| {
                field
                    .parse()
                    .expect("regression-seeds.txt: SEED REPLICAS STEPS")
            })
            .collect();
        let [seed, replicas, steps] = fields[..] else {
            panic!("regression-seeds.txt: {line:?} is not SEED REPLICAS STEPS");
        };
        pass(config(seed, replicas as usize, steps));
    }
}
