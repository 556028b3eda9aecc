//! `cloister bench --op fill`: store `--backups` backups, one per distinct user, as fast as
//! the workers can, so that a joining replica has real state to load (`ReplicateState`).
//!
//! ```text
//!  workers ──next user i (shared counter from --first-user)──▶ connect as "fill-<i>":
//!     Backup, Expose, close
//!     latency per user (whole session) ─▶ Samples;  progress on stderr every 10 s
//! ```
//!
//! Each backup needs its own user, so each costs a whole session (attestation, Noise
//! handshake, two log entries): handshakes bound the rate, not the log.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::load::{ERROR_BACKOFF, Report, probed_servers, store_backup};
use super::stats::Samples;
use crate::args::{BenchArgs, ClientArgs};
use crate::exit::Failure;
use crate::user::client_for;

/// Most backups one fill stores.
pub const BACKUPS_MAX: u64 = 10_000_000;
/// Largest `--first-user` (keeps `first_user + backups` far from overflow).
pub const FIRST_USER_MAX: u64 = 1 << 40;
/// Attempts per user before the fill gives up on it (each failure counts as an error).
pub const ATTEMPTS_MAX: u32 = 5;
/// How often progress is printed.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(10);

/// Store `args.backups` backups with `args.clients` workers.
pub async fn run(args: &BenchArgs) -> Result<Report, Failure> {
    if !(1..=BACKUPS_MAX).contains(&args.backups) {
        return Err(Failure::usage(format!(
            "--backups must be 1 to {BACKUPS_MAX}"
        )));
    }
    if args.first_user > FIRST_USER_MAX {
        return Err(Failure::usage(format!(
            "--first-user must be at most {FIRST_USER_MAX}"
        )));
    }
    let servers = probed_servers(args).await?;
    let next = Arc::new(AtomicU64::new(0));
    let stored = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let progress = tokio::spawn(print_progress(stored.clone(), args.backups, start));
    let workers: Vec<_> = (0..args.clients)
        .map(|worker| {
            let server = servers[worker as usize % servers.len()].clone();
            let (next, stored) = (next.clone(), stored.clone());
            let users = args.first_user..args.first_user + args.backups;
            tokio::spawn(async move { work(&next, &stored, users, &server).await })
        })
        .collect();
    let report = super::load::collect(workers, start).await;
    progress.abort();
    report
}

async fn print_progress(stored: Arc<AtomicU64>, backups: u64, start: Instant) {
    loop {
        tokio::time::sleep(PROGRESS_INTERVAL).await;
        let done = stored.load(Ordering::Relaxed);
        let seconds = start.elapsed().as_secs_f64();
        eprintln!(
            "fill: {done}/{backups} backups in {seconds:.0}s ({:.0}/s)",
            done as f64 / seconds.max(1e-9)
        );
    }
}

async fn work(
    next: &AtomicU64,
    stored: &AtomicU64,
    users: std::ops::Range<u64>,
    server: &ClientArgs,
) -> (Samples, u64) {
    let mut samples = Samples::default();
    let mut errors = 0u64;
    loop {
        let index = users.start + next.fetch_add(1, Ordering::Relaxed);
        if index >= users.end {
            return (samples, errors);
        }
        let user = format!("fill-{index}");
        for attempt in 1..=ATTEMPTS_MAX {
            let started = Instant::now();
            match store(&user, server).await {
                Ok(()) => {
                    samples.record(started.elapsed());
                    stored.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(_) => {
                    errors += 1;
                    tokio::time::sleep(ERROR_BACKOFF * attempt).await;
                }
            }
        }
    }
}

/// One user's session: Backup, Expose (so the backup is restorable), close.
async fn store(user: &str, server: &ClientArgs) -> Result<(), Failure> {
    let mut connection = client_for(user, server)?
        .connect()
        .await
        .map_err(Failure::from_client)?;
    let stored = store_backup(&mut connection, "fill").await;
    connection.close().await;
    stored
}
