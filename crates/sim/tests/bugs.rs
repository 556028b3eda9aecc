//! Proof that the checkers bite: each known bug, injected into the real cores (feature
//! `bug-injection`), makes the simulator fail on some seed within a bounded search, and the
//! failing seed is printed so it can be replayed.
//!
//! `cargo test -p cloister-sim --features bug-injection --test bugs` (CI runs it).

#![cfg(feature = "bug-injection")]

use cloister_enclave::InjectedBug;
use cloister_sim::{SimConfig, run};

/// Seeds tried per bug before the search counts as failed.
const SEARCH_SEEDS: u64 = 40;

/// The first seed (from 0) on which `bug` breaks an invariant the simulator checks, with
/// that invariant.
fn hunt(bug: InjectedBug, steps: u64) -> (u64, &'static str) {
    for seed in 0..SEARCH_SEEDS {
        let mut config = SimConfig::new(seed);
        config.steps = steps;
        config.bug = Some(bug);
        if let Err(failure) = run(config) {
            println!("{bug:?}: caught on seed {seed}: {failure}");
            println!("replay: cloister sim --seed {seed} (with the bug injected)");
            return (seed, failure.invariant);
        }
    }
    panic!("{bug:?} survived {SEARCH_SEEDS} seeds: the checkers missed it");
}

#[test]
fn tries_not_decremented_is_caught() {
    let (_, invariant) = hunt(InjectedBug::TriesNotDecremented, 8_000);
    assert!(
        ["guess-limit", "linearizability", "equal-hashes"].contains(&invariant),
        "{invariant}"
    );
}

#[test]
fn an_entry_applied_twice_is_caught() {
    let (_, invariant) = hunt(InjectedBug::EntryAppliedTwice, 8_000);
    assert!(
        ["guess-limit", "linearizability", "equal-hashes"].contains(&invariant),
        "{invariant}"
    );
}

#[test]
fn a_cancelled_transaction_answered_as_success_is_caught() {
    let (_, invariant) = hunt(InjectedBug::CancelledAnsweredAsSuccess, 20_000);
    assert!(
        ["durability", "linearizability"].contains(&invariant),
        "{invariant}"
    );
}
