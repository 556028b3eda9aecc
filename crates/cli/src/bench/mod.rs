//! `cloister bench`: a load generator for a running node, group, or (for comparison) etcd.
//!
//! ```text
//!  N workers ──(own user each)──▶ node(s)    handshake: connect+attest+Noise+Tries per op
//!     │ latency per op                        backup / restore / mixed: persistent sessions
//!     │                                       fill: one session per new user, N backups
//!     │              ──(own key each)──▶ etcd (--target etcd): POST /v3/kv/put, keep-alive
//!     ▼
//!  Samples ─▶ ops/s, p50/p99/p999   (+ for handshake: ratio to a raw snow NK loop, same run)
//! ```

mod baseline;
mod etcd;
mod fill;
mod load;
mod stats;

use std::time::Duration;

use serde_json::json;

use crate::args::{BenchArgs, BenchOp, BenchTarget};
use crate::exit::{Failure, Outcome};

pub use baseline::noise_nk_handshakes_per_sec;

/// Most concurrent benchmark clients.
pub const CLIENTS_MAX: u32 = 4096;
/// Longest benchmark run, in seconds.
pub const DURATION_SECS_MAX: u64 = 3600;

/// `cloister bench`.
pub async fn run(args: BenchArgs) -> Result<Outcome, Failure> {
    if !(1..=CLIENTS_MAX).contains(&args.clients) {
        return Err(Failure::usage(format!(
            "--clients must be 1 to {CLIENTS_MAX}"
        )));
    }
    if !(1..=DURATION_SECS_MAX).contains(&args.duration) {
        return Err(Failure::usage(format!(
            "--duration must be 1 to {DURATION_SECS_MAX} seconds"
        )));
    }
    let duration = Duration::from_secs(args.duration);
    match args.target {
        BenchTarget::Etcd => run_etcd(&args, duration).await,
        BenchTarget::Cloister => run_cloister(&args, duration).await,
    }
}

async fn run_etcd(args: &BenchArgs, duration: Duration) -> Result<Outcome, Failure> {
    if !matches!(args.op, None | Some(BenchOp::Backup)) {
        return Err(Failure::usage(
            "--target etcd measures puts only (the counterpart of --op backup)".into(),
        ));
    }
    let report = etcd::run(&args.etcd_endpoints, args.clients, duration).await?;
    let text = format!(
        "etcd put with {} clients over {} endpoints: {}; {} errors",
        args.clients,
        args.etcd_endpoints.len(),
        report.summary,
        report.errors
    );
    let json = json!({
        "target": "etcd",
        "op": "put",
        "clients": args.clients,
        "endpoints": args.etcd_endpoints,
        "summary": report.summary,
        "errors": report.errors,
    });
    Ok(Outcome::new(text, json))
}

async fn run_cloister(args: &BenchArgs, duration: Duration) -> Result<Outcome, Failure> {
    let op = args.op.unwrap_or(BenchOp::Mixed);
    let report = match op {
        BenchOp::Fill => fill::run(args).await?,
        _ => load::run(args, op, duration).await?,
    };
    let mut text = format!(
        "{op:?} with {} clients: {}; {} errors",
        args.clients, report.summary, report.errors
    );
    let mut json = json!({
        "target": "cloister",
        "op": format!("{op:?}").to_lowercase(),
        "clients": args.clients,
        "summary": report.summary,
        "errors": report.errors,
    });
    if op == BenchOp::Fill {
        let missing = args.backups.saturating_sub(report.summary.operations);
        text.push_str(&format!(
            "\n{} of {} backups stored ({missing} users given up on)",
            report.summary.operations, args.backups
        ));
        json["backups"] = json!(args.backups);
        json["missing"] = json!(missing);
    }
    if op == BenchOp::Handshake {
        let limit = tokio::task::spawn_blocking(move || noise_nk_handshakes_per_sec(duration))
            .await
            .map_err(|error| Failure::other(error.into()))?
            .map_err(Failure::other)?;
        let ratio = report.summary.ops_per_sec / limit;
        text.push_str(&format!(
            "\nraw in-process snow NK handshakes: {limit:.0}/s; sessions/s ratio to it: {ratio:.3}"
        ));
        json["baseline_handshakes_per_sec"] = json!(limit);
        json["ratio_to_baseline"] = json!(ratio);
    }
    Ok(Outcome::new(text, json))
}
