//! `cloister node`: the host daemon, with an in-process enclave core or (`--enclave-socket`)
//! driving an enclave process.

use std::path::PathBuf;
use std::time::Duration;

use cloister_enclave::{Enclave, InsecureSimulatedEnv};
use cloister_host::door::Attachment;
use cloister_host::{EnclaveDoor, HostConfig, HostError, Node, shutdown_signal, unix_now_secs};
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
        attestation_refresh_interval: Duration::from_secs(args.attestation_refresh_secs),
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
    if !args.dev && !args.simulated && args.enclave_socket.is_none() {
        return Err(Failure::usage(
            "pass --dev (a one-replica group, no setup), --simulated (a replica that creates \
             or joins a group through the admin API) or --enclave-socket ADDR (an enclave \
             process started with `cloister enclave`); hardware TEE backends arrive in a \
             later stage"
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
    let secret = SecretFile {
        existed: secret_path.exists(),
        path: secret_path,
    };
    let init = config.init_config(unix_now_secs()).encode_to_vec();
    match args.enclave_socket.clone() {
        Some(address) => {
            let door = crate::enclave::connect(address.clone(), init).await?;
            let core = Core::Remote {
                address: address.to_string(),
                attachment: door.attachment().clone(),
            };
            serve(&args, config, door, core, secret).await
        }
        None => {
            // The simulated TEE draws its randomness from the host's OS: honest, and insecure.
            let mut seed = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut seed);
            let env = Box::new(InsecureSimulatedEnv::from_seed(seed));
            let enclave =
                Enclave::init(&init, env).map_err(|error| Failure::other(error.into()))?;
            serve(&args, config, enclave, Core::InProcess, secret).await
        }
    }
}

/// Where the node's enclave core runs.
enum Core {
    /// In this process, on the simulated TEE.
    InProcess,
    /// In an enclave process (`cloister enclave`), reached over a socket.
    Remote {
        address: String,
        attachment: Attachment,
    },
}

/// The auth secret file, and whether it existed before this start.
struct SecretFile {
    path: PathBuf,
    existed: bool,
}

/// Starts the host around `door`, prints where it listens, and serves until a signal.
async fn serve<D: EnclaveDoor>(
    args: &NodeArgs,
    config: HostConfig,
    door: D,
    core: Core,
    secret: SecretFile,
) -> Result<Outcome, Failure> {
    let node = Node::start(config, door)
        .await
        .map_err(|error| Failure::other(error.into()))?;
    let group = group_line(&node, args.dev).await?;
    println!("cloister node: {}, {group}", core.describe());
    println!("client listening on ws://{}", node.client_addr());
    println!("admin listening on http://{}", node.admin_addr());
    if let Some(peer_addr) = node.peer_addr() {
        println!("peer listening on {peer_addr}");
    }
    println!("enclave id {}", node.enclave_id());
    println!(
        "auth secret {} ({})",
        secret.path.display(),
        if secret.existed {
            "existing"
        } else {
            "created"
        }
    );
    match &core {
        Core::InProcess => println!("backups live in memory only: stopping this node erases them"),
        Core::Remote { .. } => println!(
            "backups live in the enclave process's memory: this node may stop and reattach; \
             stopping the enclave process erases them"
        ),
    }
    let dispatcher = node.dispatcher().clone();
    let in_process = matches!(core, Core::InProcess);
    let stopped = node
        .wait(async move {
            shutdown_signal().await;
            // A remote core outlives this host, so it stays in its group.
            if in_process {
                leave_group(&dispatcher).await;
            }
        })
        .await;
    match (stopped, core) {
        (Ok(()), _) => Ok(Outcome::new(
            "node stopped".into(),
            serde_json::json!({"status": "stopped"}),
        )),
        (Err(HostError::EnclaveStopped), Core::Remote { address, .. }) => {
            Err(Failure::other(anyhow::anyhow!(
                "lost the enclave process at {address} (the log says why); restart this node \
                 to reattach once the enclave process answers"
            )))
        }
        (Err(error), _) => Err(Failure::other(error.into())),
    }
}

impl Core {
    /// The banner's words for where the core runs.
    fn describe(&self) -> String {
        match self {
            Core::InProcess => "simulated TEE (INSECURE, for development only)".to_owned(),
            Core::Remote {
                address,
                attachment,
            } => {
                let insecure = if attachment.backend == "simulated" {
                    " (INSECURE, for development only)"
                } else {
                    ""
                };
                let how = if attachment.reattached {
                    "reattached, its state kept"
                } else {
                    "attached to a new core"
                };
                format!(
                    "enclave process at {address}, {} TEE{insecure}, {how}",
                    attachment.backend
                )
            }
        }
    }
}

/// With `dev`, makes the core a one-replica group unless it is in a group already (a
/// reattached core keeps its group); says which group the core is in.
async fn group_line(node: &Node, dev: bool) -> Result<String, Failure> {
    let status = node
        .dispatcher()
        .status()
        .await
        .map_err(|error| Failure::other(error.into()))?;
    if let Some(group) = status.group_config {
        return Ok(format!("in group {:016x}", group.group_id));
    }
    if !dev {
        return Ok("not in a group yet".to_owned());
    }
    let status = node
        .dispatcher()
        .create_group(CreateNewRaftGroupRequest::default())
        .await
        .map_err(|error| Failure::other(error.into()))?;
    let group_id = status.group_config.map_or(0, |group| group.group_id);
    Ok(format!("one-replica group {group_id:016x}"))
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
