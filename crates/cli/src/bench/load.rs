//! The workers that drive a node.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloister_client::{Connection, ExposeOutcome, RestoreOutcome, TriesOutcome};

use super::stats::{Samples, Summary};
use crate::args::{BenchArgs, BenchOp, ClientArgs};
use crate::exit::Failure;
use crate::user::client_for;

/// What the workers measured.
pub struct Report {
    pub summary: Summary,
    pub errors: u64,
}

/// The secret each backup stores (and each etcd put writes): 48 bytes, as SVR2 backups.
pub(super) const DATA: [u8; 48] = [0x42; 48];
pub(super) const PIN: [u8; 32] = [0x24; 32];
pub(super) const MAX_TRIES: u32 = 10;
/// Most `--servers` accepted.
pub const SERVERS_MAX: usize = 64;
/// Pause after a failed operation, so a refusing node is not hammered.
pub(super) const ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Run `args.clients` workers doing `op` for `duration`; worker `i` uses server `i mod n`.
pub async fn run(args: &BenchArgs, op: BenchOp, duration: Duration) -> Result<Report, Failure> {
    let servers = probed_servers(args).await?;
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = (0..args.clients)
        .map(|worker| {
            let client_args = servers[worker as usize % servers.len()].clone();
            tokio::spawn(async move { work(worker, op, &client_args, deadline).await })
        })
        .collect();
    super::load::collect(workers, start).await
}

/// Wait for every worker and merge what they measured since `start`.
pub(super) async fn collect(
    workers: Vec<tokio::task::JoinHandle<(Samples, u64)>>,
    start: Instant,
) -> Result<Report, Failure> {
    let mut samples = Samples::default();
    let mut errors = 0;
    for worker in workers {
        let (worker_samples, worker_errors) =
            worker.await.map_err(|error| Failure::other(error.into()))?;
        samples.merge(worker_samples);
        errors += worker_errors;
    }
    Ok(Report {
        summary: samples.summary(start.elapsed()),
        errors,
    })
}

/// The client flags for each server (`--servers`, else `--server`), each checked by one
/// connection so that a run fails fast, with the real reason, if a node cannot be reached.
pub(super) async fn probed_servers(args: &BenchArgs) -> Result<Vec<Arc<ClientArgs>>, Failure> {
    if args.servers.len() > SERVERS_MAX {
        return Err(Failure::usage(format!(
            "--servers takes at most {SERVERS_MAX} URLs"
        )));
    }
    let servers: Vec<Arc<ClientArgs>> = if args.servers.is_empty() {
        vec![Arc::new(args.client.clone())]
    } else {
        args.servers
            .iter()
            .map(|server| {
                Arc::new(ClientArgs {
                    server: server.clone(),
                    ..args.client.clone()
                })
            })
            .collect()
    };
    for server in &servers {
        client_for("bench-probe", server)?
            .connect()
            .await
            .map_err(Failure::from_client)?
            .close()
            .await;
    }
    Ok(servers)
}

async fn work(worker: u32, op: BenchOp, args: &ClientArgs, deadline: Instant) -> (Samples, u64) {
    let mut samples = Samples::default();
    let mut errors = 0u64;
    let mut connection: Option<Connection> = None;
    let mut sessions = 0u64;
    while Instant::now() < deadline {
        let result = match op {
            BenchOp::Handshake => {
                sessions += 1;
                let started = Instant::now();
                let result = one_session(&format!("bench-{worker}-{sessions}"), args).await;
                if result.is_ok() {
                    samples.record(started.elapsed());
                }
                result
            }
            _ => match connection.as_mut() {
                Some(open) => one_operation(open, op, &mut samples).await,
                None => match open_loaded(&format!("bench-{worker}"), args, op).await {
                    Ok(open) => {
                        connection = Some(open);
                        continue;
                    }
                    Err(error) => Err(error),
                },
            },
        };
        match result {
            Ok(()) => {}
            Err(_) => {
                errors += 1;
                connection = None;
                tokio::time::sleep(ERROR_BACKOFF).await;
            }
        }
    }
    if let Some(open) = connection {
        open.close().await;
    }
    (samples, errors)
}

/// Connect, attest, handshake, one Tries, close: one session.
async fn one_session(user: &str, args: &ClientArgs) -> Result<(), Failure> {
    let client = client_for(user, args)?;
    let mut connection = client.connect().await.map_err(Failure::from_client)?;
    let tries = connection.tries().await.map_err(Failure::from_client)?;
    connection.close().await;
    match tries {
        TriesOutcome::Missing | TriesOutcome::Ok { .. } => Ok(()),
    }
}

/// A persistent session with a stored, exposed backup (so restores find it).
async fn open_loaded(user: &str, args: &ClientArgs, op: BenchOp) -> Result<Connection, Failure> {
    let mut connection = client_for(user, args)?
        .connect()
        .await
        .map_err(Failure::from_client)?;
    if op != BenchOp::Backup {
        store_backup(&mut connection, "bench setup").await?;
    }
    Ok(connection)
}

/// Back up [`DATA`] under [`PIN`] and expose it: a user whose secret is stored.
pub(super) async fn store_backup(connection: &mut Connection, during: &str) -> Result<(), Failure> {
    connection
        .backup(&DATA, &PIN, MAX_TRIES)
        .await
        .map_err(Failure::from_client)?;
    let exposed = connection
        .expose(&DATA)
        .await
        .map_err(Failure::from_client)?;
    match exposed {
        ExposeOutcome::Ok => Ok(()),
        other => Err(Failure::other(anyhow::anyhow!(
            "expose answered {other:?} during {during}"
        ))),
    }
}

/// One measured unit of work; each request's latency is recorded on its own.
async fn one_operation(
    connection: &mut Connection,
    op: BenchOp,
    samples: &mut Samples,
) -> Result<(), Failure> {
    if matches!(op, BenchOp::Backup | BenchOp::Mixed) {
        let started = Instant::now();
        connection
            .backup(&DATA, &PIN, MAX_TRIES)
            .await
            .map_err(Failure::from_client)?;
        samples.record(started.elapsed());
    }
    if op == BenchOp::Mixed {
        let started = Instant::now();
        connection
            .expose(&DATA)
            .await
            .map_err(Failure::from_client)?;
        samples.record(started.elapsed());
    }
    if matches!(op, BenchOp::Restore | BenchOp::Mixed) {
        let started = Instant::now();
        expect_restored(connection.restore(&PIN).await)?;
        samples.record(started.elapsed());
    }
    Ok(())
}

fn expect_restored(outcome: cloister_client::Result<RestoreOutcome>) -> Result<(), Failure> {
    match outcome.map_err(Failure::from_client)? {
        RestoreOutcome::Ok { .. } => Ok(()),
        other => Err(Failure::other(anyhow::anyhow!(
            "restore answered {other:?}"
        ))),
    }
}
