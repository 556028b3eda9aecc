//! `cloister bench`: a load generator for a running node.
//!
//! ```text
//!  N workers ──(own user each)──▶ node       handshake: connect+attest+Noise+Tries per op
//!     │ latency per op                        backup / restore / mixed: persistent sessions
//!     ▼
//!  Samples ─▶ ops/s, p50/p99/p999   (+ for handshake: ratio to a raw snow NK loop, same run)
//! ```

mod baseline;
mod load;
mod stats;

use std::time::Duration;

use serde_json::json;

use crate::args::{BenchArgs, BenchOp};
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
    let report = load::run(&args, duration).await?;
    let mut text = format!(
        "{:?} with {} clients: {}; {} errors",
        args.op, args.clients, report.summary, report.errors
    );
    let mut json = json!({
        "op": format!("{:?}", args.op).to_lowercase(),
        "clients": args.clients,
        "summary": report.summary,
        "errors": report.errors,
    });
    if args.op == BenchOp::Handshake {
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
