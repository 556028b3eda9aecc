//! `cloister`: run a node, back up and restore secrets, administer and benchmark a group.
//!
//! ```text
//!  cloister node --dev          host daemon + in-process enclave core (simulated TEE)
//!  cloister enclave --listen ADDR --backend B|--simulated   the core alone, for
//!                               `node --enclave-socket ADDR`
//!  cloister backup|restore|tries|delete --user NAME ...   the client SDK, one request each
//!  cloister admin status        the node's admin API
//!  cloister bench --op ...      load generator (BENCHMARKS.md)
//!  cloister attest verify --kind K --evidence FILE ...   check attestation evidence by hand
//!  cloister sim --seed S | --seeds A..B | --soak MINUTES   the deterministic simulator
//! ```
//!
//! Exit codes: 0 ok, 1 other error, 2 usage error, 3 wrong PIN, 4 no such backup.

mod admin;
mod args;
mod attest;
mod bench;
mod demo;
mod enclave;
mod exit;
mod node;
mod sim;
mod user;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::exit::Failure;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let json = wants_json(&cli.command);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return ExitCode::from(exit::EXIT_OTHER);
        }
    };
    let result = runtime.block_on(dispatch(cli.command));
    match result {
        Ok(outcome) => {
            outcome.print(json);
            ExitCode::from(exit::EXIT_OK)
        }
        Err(failure) => {
            failure.print(json);
            ExitCode::from(failure.code())
        }
    }
}

async fn dispatch(command: Command) -> Result<exit::Outcome, Failure> {
    match command {
        Command::Node(args) => node::run(args).await,
        Command::Enclave(args) => enclave::run(args).await,
        Command::Backup(args) => user::backup(args).await,
        Command::Restore(args) => user::restore(args).await,
        Command::Tries(args) => user::tries(args).await,
        Command::Delete(args) => user::delete(args).await,
        Command::Admin(args) => admin::run(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Attest(args) => attest::run(args).await,
        Command::Sim(args) => sim::run(args).await,
    }
}

fn wants_json(command: &Command) -> bool {
    match command {
        Command::Backup(args) => args.client.json,
        Command::Restore(args) => args.client.json,
        Command::Tries(args) | Command::Delete(args) => args.client.json,
        Command::Bench(args) => args.client.json,
        Command::Admin(args) => args.command.common().json,
        Command::Attest(args) => args.command.json(),
        Command::Sim(args) => args.json,
        Command::Node(_) | Command::Enclave(_) | Command::Demo(_) => false,
    }
}

/// Logs go to stderr; `RUST_LOG` filters them (default: info).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
