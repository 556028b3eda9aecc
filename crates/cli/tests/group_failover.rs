//! Killing the leader of a three-replica group (SIGKILL: no goodbye) in the middle of client
//! load loses nothing that was acknowledged, and no PIN guess is lost or gained.
//!
//! ```text
//!  worker per user (its own replica, moving on when one fails):
//!    Backup+Expose (until both acknowledged), then Restore: wrong, right, wrong, right ...
//!    every answer recorded: acknowledged | 4014 (nothing happened) | ambiguous (4013,
//!    transport, timeout: may or may not have happened)
//!  test: load runs ─ SIGKILL leader ─ new leader elected ─ load runs ─ stop
//!  check per user: restorable with the right PIN, and
//!    max - acked_wrong - ambiguous_wrong <= tries left <= max - acked_wrong
//! ```
//!
//! Why the bound holds: Raft commits entries in log order, and a new leader commits what
//! it inherited before anything proposed later. So an ambiguous request either commits
//! before everything its client sent after seeing the error, or never.

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cloister_client::{Blame, Connection, Error, ExposeOutcome, RestoreOutcome, TriesOutcome};
use common::group::{Group, POLL_INTERVAL, SETTLE_TIMEOUT, bounded_group};
use common::username;

/// Users, one worker each, spread over the replicas.
const WORKERS: usize = 6;
/// Each backup's guess budget: large, so no amount of wrong guesses deletes a row here.
const MAX_TRIES: u32 = 255;
/// Wrong guesses per user at most (well under `MAX_TRIES`).
const WRONG_GUESSES_MAX: u32 = 200;
/// A request unanswered this long counts as ambiguous, and the worker moves on. (A write a
/// follower forwarded to the killed leader is answered only when the follower's 30 s
/// transaction timeout fails it with 4013, long after the new leader is elected.)
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(8);
/// Pause between two requests of one worker.
const PACE: Duration = Duration::from_millis(20);
/// Requests each worker has acknowledged before the kill, and again after the new leader.
const ACKED_PER_PHASE: u64 = 5;

fn pin(worker: usize) -> [u8; 32] {
    [0x40 + worker as u8; 32]
}

fn wrong_pin(worker: usize) -> [u8; 32] {
    [0x80 + worker as u8; 32]
}

fn data(worker: usize) -> [u8; 48] {
    [0x10 + worker as u8; 48]
}

/// One request's result, classified.
enum Answer<T> {
    /// Answered: it happened exactly as answered.
    Acked(T),
    /// 4014 (or refused before any request was sent): it did not happen.
    NotDone,
    /// Anything else: it may or may not have happened.
    Ambiguous(String),
}

fn classify<T>(result: Result<T, Error>, failures: &mut Vec<String>) -> Answer<T> {
    match result {
        Ok(value) => Answer::Acked(value),
        Err(error) if error.guarantees_no_state_change() => {
            if !matches!(error, Error::Unavailable { .. }) {
                failures.push(format!("refused: {error}"));
            }
            Answer::NotDone
        }
        Err(error) => {
            if error.blame() == Blame::ServerMisbehaved {
                failures.push(format!("server misbehaved: {error}"));
            }
            Answer::Ambiguous(error.to_string())
        }
    }
}

/// What one worker saw.
#[derive(Debug, Default)]
struct Record {
    user: String,
    acked_wrong: u32,
    ambiguous_wrong: u32,
    acked_right: u32,
    not_done: u32,
    ambiguous: Vec<String>,
    /// Things that must never happen (a lost row, a wrong answer, ...).
    failures: Vec<String>,
}

impl Record {
    /// Tries left must be `max - acked_wrong - (some of the ambiguous wrong guesses)`.
    fn check_tries(&mut self, tries: u32, what: &str) {
        let high = MAX_TRIES - self.acked_wrong;
        let low = high - self.ambiguous_wrong;
        if !(low..=high).contains(&tries) {
            self.failures.push(format!(
                "{what}: {tries} tries left, expected {low}..={high} ({} acked wrong, {} \
                 ambiguous wrong)",
                self.acked_wrong, self.ambiguous_wrong
            ));
        }
    }
}

/// Shared between the test and its workers.
struct Load {
    group: Arc<Group>,
    /// Replicas the workers may use (the killed one stays: connecting to it fails).
    replicas: usize,
    stop: AtomicBool,
    /// Acknowledged requests of each worker.
    acked: Vec<AtomicU64>,
}

async fn work(load: Arc<Load>, worker: usize) -> Record {
    let mut record = Record {
        user: username(&format!("failover-{worker}")),
        ..Record::default()
    };
    let (pin, wrong_pin, data) = (pin(worker), wrong_pin(worker), data(worker));
    let mut replica = worker % load.replicas;
    let mut connection: Option<Connection> = None;
    let mut backed_up = false;
    let mut exposed = false;
    let mut round = 0u64;
    while !load.stop.load(Ordering::Relaxed) && record.acked_wrong < WRONG_GUESSES_MAX {
        let Some(open) = connection.as_mut() else {
            let client = load.group.client(replica, &record.user, RESPONSE_TIMEOUT);
            match client.connect().await {
                Ok(open) => connection = Some(open),
                Err(error) => {
                    if matches!(error, Error::RateLimited { .. }) {
                        record.failures.push(format!("rate limited: {error}"));
                    }
                    // Refused or unreachable (the killed replica): try the next one.
                    replica = (replica + 1) % load.replicas;
                    tokio::time::sleep(POLL_INTERVAL).await;
                }
            }
            continue;
        };
        let sent = Instant::now();
        let answered = if !backed_up {
            match classify(
                open.backup(&data, &pin, MAX_TRIES).await,
                &mut record.failures,
            ) {
                Answer::Acked(()) => {
                    backed_up = true;
                    true
                }
                Answer::NotDone => {
                    record.not_done += 1;
                    false
                }
                Answer::Ambiguous(error) => {
                    // Retried until acknowledged; an earlier ambiguous Backup commits before
                    // the acknowledged one or never, so it changes nothing afterwards.
                    record.ambiguous.push(format!("backup: {error}"));
                    false
                }
            }
        } else if !exposed {
            match classify(open.expose(&data).await, &mut record.failures) {
                Answer::Acked(ExposeOutcome::Ok) => {
                    exposed = true;
                    true
                }
                Answer::Acked(ExposeOutcome::Error) => {
                    record
                        .failures
                        .push("Expose answered ERROR after an acknowledged Backup".into());
                    return record;
                }
                Answer::NotDone => {
                    record.not_done += 1;
                    false
                }
                Answer::Ambiguous(error) => {
                    record.ambiguous.push(format!("expose: {error}"));
                    false
                }
            }
        } else {
            round += 1;
            let wrong = round % 2 == 1;
            let guess = if wrong { &wrong_pin } else { &pin };
            match classify(open.restore(guess).await, &mut record.failures) {
                Answer::Acked(RestoreOutcome::PinMismatch { tries_left }) if wrong => {
                    record.acked_wrong += 1;
                    record.check_tries(tries_left, "PinMismatch");
                    true
                }
                Answer::Acked(RestoreOutcome::Ok {
                    data: restored,
                    tries,
                }) if !wrong => {
                    if *restored != data {
                        record.failures.push("Restore returned other data".into());
                    }
                    record.acked_right += 1;
                    record.check_tries(tries, "Restore OK");
                    true
                }
                Answer::Acked(other) => {
                    record
                        .failures
                        .push(format!("Restore (wrong PIN: {wrong}) answered {other:?}"));
                    true
                }
                Answer::NotDone => {
                    record.not_done += 1;
                    false
                }
                Answer::Ambiguous(error) => {
                    if wrong {
                        record.ambiguous_wrong += 1;
                    }
                    record
                        .ambiguous
                        .push(format!("restore after {:?}: {error}", sent.elapsed()));
                    false
                }
            }
        };
        if answered {
            load.acked[worker].fetch_add(1, Ordering::Relaxed);
        } else {
            // The connection is broken after any error: open another, on the next replica.
            connection = None;
            replica = (replica + 1) % load.replicas;
        }
        tokio::time::sleep(PACE).await;
    }
    if let Some(open) = connection {
        open.close().await;
    }
    if !(backed_up && exposed) {
        record.failures.push("never backed up and exposed".into());
    }
    record
}

/// Waits until every worker has `at_least` acknowledged requests.
async fn wait_acked(load: &Load, at_least: u64, what: &str) {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let counts: Vec<u64> = load
            .acked
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .collect();
        if counts.iter().all(|count| *count >= at_least) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: workers stalled, acknowledged requests {counts:?}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

// Replica groups: a leader crash loses no acknowledged write, and no PIN guess is lost or
// gained (SVR2 client protocol: Restore semantics; 4014 means nothing changed).
#[tokio::test]
async fn leader_sigkill_mid_load_loses_nothing_acknowledged() {
    bounded_group(async {
        let group = Arc::new(Group::start("failover", 3).await);
        let all = [0, 1, 2];
        let old_leader = group.wait_leader(&all).await;
        let old_term = group.view(old_leader).await.term;
        let survivors: Vec<usize> = all.into_iter().filter(|i| *i != old_leader).collect();

        let load = Arc::new(Load {
            group: group.clone(),
            replicas: 3,
            stop: AtomicBool::new(false),
            acked: (0..WORKERS).map(|_| AtomicU64::new(0)).collect(),
        });
        let workers: Vec<_> = (0..WORKERS)
            .map(|worker| tokio::spawn(work(load.clone(), worker)))
            .collect();

        wait_acked(&load, ACKED_PER_PHASE, "before the kill").await;
        let acked_before: Vec<u64> = load
            .acked
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let killed_at = Instant::now();
        group.kill(old_leader);

        let new_leader = group.wait_leader(&survivors).await;
        let failover = killed_at.elapsed();
        assert!(group.view(new_leader).await.term > old_term);
        let acked_at_election: Vec<u64> = load
            .acked
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let more: u64 = acked_at_election.iter().max().unwrap() + ACKED_PER_PHASE;
        wait_acked(&load, more, "after the new leader").await;
        load.stop.store(true, Ordering::Relaxed);
        let mut records = Vec::new();
        for worker in workers {
            records.push(worker.await.unwrap());
        }
        let stopped_after = killed_at.elapsed();

        // Every acknowledged backup is there, with the tries the answers account for.
        for (worker, record) in records.iter_mut().enumerate() {
            let via = survivors[worker % survivors.len()];
            match group.tries(via, &record.user).await {
                TriesOutcome::Ok {
                    tries,
                    exposed: true,
                } => record.check_tries(tries, "final Tries"),
                other => record.failures.push(format!("final Tries: {other:?}")),
            }
            match group.restore(via, &record.user, &pin(worker)).await {
                RestoreOutcome::Ok {
                    data: restored,
                    tries,
                } => {
                    if *restored != data(worker) {
                        record.failures.push("final Restore: other data".into());
                    }
                    record.check_tries(tries, "final Restore");
                }
                other => record.failures.push(format!("final Restore: {other:?}")),
            }
        }
        group.wait_converged(&survivors).await;

        let summary: Vec<String> = records
            .iter()
            .map(|r| {
                format!(
                    "wrong {}+{}? right {} 4014 {} ambiguous {:?}",
                    r.acked_wrong, r.ambiguous_wrong, r.acked_right, r.not_done, r.ambiguous
                )
            })
            .collect();
        println!(
            "failover: leader {old_leader} killed; new leader {new_leader} after {failover:?}; \
             load stopped {stopped_after:?} after the kill; acked before {acked_before:?}, at \
             election {acked_at_election:?}\n  {}",
            summary.join("\n  ")
        );
        let failures: Vec<_> = records
            .iter()
            .filter(|r| !r.failures.is_empty())
            .map(|r| (&r.user, &r.failures))
            .collect();
        assert!(failures.is_empty(), "{failures:#?}");
    })
    .await;
}
