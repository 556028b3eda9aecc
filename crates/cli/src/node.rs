//! `cloister node`: the host daemon with an in-process enclave core.

use std::path::PathBuf;
use std::time::Duration;

use cloister_enclave::{Enclave, InsecureSimulatedEnv};
use cloister_host::{HostConfig, Node, shutdown_signal, unix_now_secs};
use cloister_proto::enclave::{CreateNewRaftGroupRequest, EnclaveLogLevel};
use prost::Message;
use rand::RngCore;

use crate::args::NodeArgs;
use crate::exit::{Failure, Outcome};

/// Longest token age accepted on the command line.
pub const TOKEN_MAX_AGE_DAYS_MAX: u64 = 3650;
/// Tick interval bounds, in milliseconds.
pub const TICK_INTERVAL_MS_MIN: u64 = 10;
/// Tick interval bounds, in milliseconds.
pub const TICK_INTERVAL_MS_MAX: u64 = 60_000;

/// Parse an enclave log level name (the admin API's names).
pub fn parse_log_level(name: &str) -> Result<EnclaveLogLevel, Failure> {
    cloister_host::admin::json::parse_log_level(name).ok_or_else(|| {
        Failure::usage(format!(
            "--log-level {name:?}: expected none, fatal, error, warning, info, verbose or max"
        ))
    })
}

fn host_config(args: &NodeArgs) -> Result<(HostConfig, PathBuf), Failure> {
    if !(1..=TOKEN_MAX_AGE_DAYS_MAX).contains(&args.token_max_age_days) {
        return Err(Failure::usage(format!(
            "--token-max-age-days must be 1 to {TOKEN_MAX_AGE_DAYS_MAX}"
        )));
    }
    if !(TICK_INTERVAL_MS_MIN..=TICK_INTERVAL_MS_MAX).contains(&args.tick_interval_ms) {
        return Err(Failure::usage(format!(
            "--tick-interval-ms must be {TICK_INTERVAL_MS_MIN} to {TICK_INTERVAL_MS_MAX}"
        )));
    }
    let secret_path = args
        .auth_secret_file
        .clone()
        .unwrap_or_else(|| args.data_dir.join("auth-secret"));
    let config = HostConfig {
        client_listen_addr: args.client_listen,
        admin_listen_addr: args.admin_listen,
        auth_secret_path: secret_path.clone(),
        token_age_max_secs: args.token_max_age_days * 24 * 60 * 60,
        tick_interval: Duration::from_millis(args.tick_interval_ms),
        enclave_log_level: parse_log_level(&args.log_level)?,
        peer_listen_addr: args.peer_listen,
        peers: args.peers.clone(),
        ..HostConfig::default()
    };
    config
        .validate()
        .map_err(|error| Failure::usage(format!("configuration: {error}")))?;
    Ok((config, secret_path))
}

/// `cloister node`.
pub async fn run(args: NodeArgs) -> Result<Outcome, Failure> {
    if !args.dev && !args.simulated {
        return Err(Failure::usage(
            "pass --dev (a one-replica group, no setup) or --simulated (a replica that creates \
             or joins a group through the admin API); hardware TEE backends arrive in a later \
             stage"
                .into(),
        ));
    }
    let (config, secret_path) = host_config(&args)?;
    std::fs::create_dir_all(&args.data_dir).map_err(|error| {
        Failure::other(anyhow::anyhow!(
            "creating {}: {error}",
            args.data_dir.display()
        ))
    })?;
    let secret_existed = secret_path.exists();
    // The simulated TEE draws its randomness from the host's OS: honest, and insecure.
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let env = Box::new(InsecureSimulatedEnv::from_seed(seed));
    let init = config.init_config(unix_now_secs()).encode_to_vec();
    let enclave = Enclave::init(&init, env).map_err(|error| Failure::other(error.into()))?;
    let node = Node::start(config, enclave)
        .await
        .map_err(|error| Failure::other(error.into()))?;
    if args.dev {
        let status = node
            .dispatcher()
            .create_group(CreateNewRaftGroupRequest::default())
            .await
            .map_err(|error| Failure::other(error.into()))?;
        let group_id = status.group_config.map_or(0, |group| group.group_id);
        println!(
            "cloister node: simulated TEE (INSECURE, for development only), one-replica group {group_id:016x}"
        );
    } else {
        println!(
            "cloister node: simulated TEE (INSECURE, for development only), not in a group yet"
        );
    }
    println!("client listening on ws://{}", node.client_addr());
    println!("admin listening on http://{}", node.admin_addr());
    if let Some(peer_addr) = node.peer_addr() {
        println!("peer listening on {peer_addr}");
    }
    println!("enclave id {}", node.enclave_id());
    println!(
        "auth secret {} ({})",
        secret_path.display(),
        if secret_existed {
            "existing"
        } else {
            "created"
        }
    );
    println!("backups live in memory only: stopping this node erases them");
    let dispatcher = node.dispatcher().clone();
    node.wait(async move {
        shutdown_signal().await;
        leave_group(&dispatcher).await;
    })
    .await
    .map_err(|error| Failure::other(error.into()))?;
    Ok(Outcome::new(
        "node stopped".into(),
        serde_json::json!({"status": "stopped"}),
    ))
}

/// How long a stopping node waits for a new leader, and for its removal to commit.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(10);

/// On SIGTERM, a replica of a group with other voters hands over leadership and asks to be
/// removed: its memory (and so its state) is about to go, and a restarted process is a new
/// replica that joins again. Best effort, bounded: a node that cannot leave still stops.
async fn leave_group(dispatcher: &cloister_host::Dispatcher) {
    use cloister_proto::enclave::host_to_enclave_request::Inner as Call;
    let Ok(status) = dispatcher.status().await else {
        return;
    };
    if status.members.iter().filter(|member| member.voting).count() <= 1 {
        return;
    }
    let leave = async {
        if status.role == "leader" {
            let call = Call::RelinquishLeadership(Default::default());
            if dispatcher.call(call).await.is_ok() {
                tracing::info!("leadership handed over");
            }
            // Removal goes through the new leader; give the election a moment.
            for _ in 0..50 {
                match dispatcher.status().await {
                    Ok(now) if now.role != "leader" && now.leader_raft_id != 0 => break,
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
        match dispatcher
            .call(Call::RequestRemoval(Default::default()))
            .await
        {
            Ok(_) => tracing::info!("removed from the group"),
            Err(error) => tracing::warn!(%error, "could not leave the group before stopping"),
        }
    };
    if tokio::time::timeout(LEAVE_TIMEOUT, leave).await.is_err() {
        tracing::warn!("leaving the group took too long; stopping anyway");
    }
}
