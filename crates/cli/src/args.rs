//! The `cloister` command line: every subcommand and flag.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use cloister_host::door::EnclaveAddress;

/// Cloister: confidential services in trusted execution environments.
#[derive(Debug, Parser)]
#[command(name = "cloister", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node: host daemon and enclave core.
    Node(NodeArgs),
    /// Run the enclave core alone, for a `cloister node --enclave-socket` to drive.
    Enclave(EnclaveArgs),
    /// Back up a secret behind a PIN (Backup, then Expose).
    Backup(BackupArgs),
    /// Restore a secret with its PIN; prints the secret as hex.
    Restore(RestoreArgs),
    /// Show how many PIN guesses a backup has left.
    Tries(UserArgs),
    /// Delete a backup.
    Delete(UserArgs),
    /// Administer a running node through its admin API.
    Admin(AdminArgs),
    /// Load-test a node and report throughput and latency.
    Bench(BenchArgs),
    /// Start a local group of simulated replicas (separate processes) for trying Cloister out.
    Demo(DemoArgs),
    /// Check attestation evidence by hand (`attest verify`).
    Attest(crate::attest::AttestArgs),
    /// Run the deterministic simulator: a seed, a range of seeds, or a soak.
    Sim(crate::sim::SimArgs),
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many replicas (1 to 7).
    #[arg(long, default_value_t = 3)]
    pub replicas: u32,
    /// Where the replicas keep their files.
    #[arg(long, default_value = "./cloister-demo")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct EnclaveArgs {
    /// Where the host connects: unix:PATH, tcp:IP:PORT or vsock:CID:PORT (CID may be "any").
    #[arg(long)]
    pub listen: EnclaveAddress,
    /// The TEE to produce evidence on: sgx (Gramine), tdx or sev-snp (configfs-tsm), nitro
    /// (the NSM).
    #[arg(long, conflicts_with = "simulated")]
    pub backend: Option<cloister_platform::Backend>,
    /// Run on the simulated (insecure) TEE backend instead: no hardware, no security.
    #[arg(long)]
    pub simulated: bool,
    /// Where the backend's device is, if not its standard place (/dev/attestation,
    /// /sys/kernel/config/tsm/report, /dev/nsm).
    #[arg(long, requires = "backend")]
    pub device_root: Option<PathBuf>,
    /// Endorsements to hand out beside the evidence: DCAP collateral JSON (sgx, tdx; read
    /// again at every attestation) or a PEM file of VCEK, ASK, ARK (sev-snp, when the host
    /// gives no certificate table).
    #[arg(long, requires = "backend")]
    pub endorsements: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Run a one-replica group on the simulated (insecure) TEE backend, with no other setup.
    #[arg(long, conflicts_with = "simulated")]
    pub dev: bool,
    /// Run on the simulated (insecure) TEE backend without creating a group: create one with
    /// `cloister admin create-group`, or join one with `cloister admin join`.
    #[arg(long)]
    pub simulated: bool,
    /// Drive an enclave process (`cloister enclave`) at unix:PATH, tcp:IP:PORT or
    /// vsock:CID:PORT instead of a core in this process; it chooses its own TEE backend.
    #[arg(long, conflicts_with = "simulated")]
    pub enclave_socket: Option<EnclaveAddress>,
    /// Address for other replicas' hosts (TCP). Needed to form a group of several replicas.
    #[arg(long)]
    pub peer_listen: Option<SocketAddr>,
    /// Peer hosts to connect to at start (comma-separated addresses); more are learned.
    #[arg(long, value_delimiter = ',')]
    pub peers: Vec<SocketAddr>,
    /// Where the node keeps its files (only the auth secret; secrets live in memory only).
    #[arg(long, default_value = "./cloister-data")]
    pub data_dir: PathBuf,
    /// Address for client WebSockets.
    #[arg(long, default_value = "127.0.0.1:7400")]
    pub client_listen: SocketAddr,
    /// Address for the admin API (keep it on loopback or a private network).
    #[arg(long, default_value = "127.0.0.1:7401")]
    pub admin_listen: SocketAddr,
    /// File holding the credential secret as one line of hex (default: DIR/auth-secret).
    #[arg(long)]
    pub auth_secret_file: Option<PathBuf>,
    /// Enclave log level: none, fatal, error, warning, info, verbose, max.
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// Milliseconds between timer ticks (the enclave's only clock).
    #[arg(long, default_value_t = 1000)]
    pub tick_interval_ms: u64,
    /// Seconds between attestation refreshes (new client key, fresh evidence to clients and
    /// peers).
    #[arg(long, default_value_t = 600)]
    pub attestation_refresh_secs: u64,
    /// Maximum age of a client token, in days.
    #[arg(long, default_value_t = 120)]
    pub token_max_age_days: u64,
}

#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// The node's client WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:7400")]
    pub server: String,
    /// The credential secret file; the command mints a token as a credential service would.
    #[arg(long, default_value = "./cloister-data/auth-secret")]
    pub auth_secret_file: PathBuf,
    /// The enclave id (hex measurement). Default: the simulated enclave of this build.
    #[arg(long)]
    pub enclave_id: Option<String>,
    /// Accept a simulated (insecure) enclave. Without it the client refuses one.
    #[arg(long)]
    pub allow_simulated: bool,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UserArgs {
    /// The user's name; the backup id is derived from it.
    #[arg(long)]
    pub user: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[arg(long)]
    pub user: String,
    /// The PIN (hashed with Argon2id on this machine; never sent).
    #[arg(long)]
    pub pin: String,
    /// The secret to back up, as hex (1 to 32 bytes).
    #[arg(long)]
    pub secret_hex: String,
    /// Wrong guesses allowed before the backup is deleted (1 to 255).
    #[arg(long, default_value_t = 10)]
    pub max_tries: u32,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[arg(long)]
    pub user: String,
    #[arg(long)]
    pub pin: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Show the node's enclave status.
    Status(AdminCommon),
    /// Create a new group with this node as its only voter.
    CreateGroup(AdminCreateGroup),
    /// Join the group of the replica whose host listens for peers at `--peer`.
    Join(AdminPeer),
    /// Ask the leader to make this replica (a loaded learner) a voter.
    RequestVoting(AdminCommon),
    /// Hand leadership to the most up-to-date other voter.
    Relinquish(AdminCommon),
    /// Ask the group to remove this replica.
    Remove(AdminCommon),
    /// Check this replica's connection to the replica at `--peer`.
    PingPeer(AdminPeer),
    /// Show the database hash and commit index.
    Hashes(AdminCommon),
    /// Raise the group's minimums (SVR2): ask the leader; refused if a limit would go down or
    /// a connected replica would fail the result.
    UpdateMinimums(AdminUpdateMinimums),
}

impl AdminCommand {
    /// The flags every admin command has.
    pub fn common(&self) -> &AdminCommon {
        match self {
            Self::Status(common)
            | Self::RequestVoting(common)
            | Self::Relinquish(common)
            | Self::Remove(common)
            | Self::Hashes(common) => common,
            Self::Join(peer) | Self::PingPeer(peer) => &peer.common,
            Self::CreateGroup(create) => &create.common,
            Self::UpdateMinimums(update) => &update.common,
        }
    }
}

#[derive(Debug, Args)]
pub struct AdminCreateGroup {
    /// Clients must use the post-quantum handshake (SVR2's `client_pq`: Noise NKhfs with
    /// ML-KEM-1024). Fixed for the group's life; the SDK reads it from the attestation.
    #[arg(long)]
    pub client_pq: bool,
    #[command(flatten)]
    pub common: AdminCommon,
}

#[derive(Debug, Args)]
pub struct AdminUpdateMinimums {
    /// A limit as NAME=HEX: the name a platform attests (`sim.security_version`,
    /// `sgx.isv_svn`, `tdx.tee_tcb_svn.N`, `snp.tee`, ...) and its minimum as a big-endian
    /// unsigned integer in hex. Repeat for several.
    #[arg(long = "set", value_name = "NAME=HEX", required = true, value_parser = parse_limit)]
    pub set: Vec<(String, String)>,
    #[command(flatten)]
    pub common: AdminCommon,
}

/// `NAME=HEX`, the value non-empty hex (the node checks names and bounds).
fn parse_limit(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=HEX"))?;
    if name.is_empty() || value.is_empty() || hex::decode(value).is_err() {
        return Err(format!(
            "{text:?} is not NAME=HEX (HEX: an even number of hex digits)"
        ));
    }
    Ok((name.to_owned(), value.to_ascii_lowercase()))
}

#[derive(Debug, Args)]
pub struct AdminPeer {
    /// The other replica's peer address (host:port of its --peer-listen).
    #[arg(long)]
    pub peer: SocketAddr,
    #[command(flatten)]
    pub common: AdminCommon,
}

#[derive(Debug, Args)]
pub struct AdminCommon {
    /// The admin API's URL.
    #[arg(long = "admin", default_value = "http://127.0.0.1:7401")]
    pub admin: String,
    /// Print the raw JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum BenchOp {
    /// Connect, attest, Noise handshake and one Tries: sessions per second.
    Handshake,
    /// Backup requests on persistent sessions (with `--target etcd`: puts).
    Backup,
    /// Restore requests (right PIN) on persistent sessions.
    Restore,
    /// Backup then Restore, alternating, on persistent sessions.
    Mixed,
    /// Store `--backups` backups, one per distinct user (a session each), then stop.
    Fill,
}

/// What `cloister bench` drives.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum BenchTarget {
    /// A Cloister node or group (`--server`, `--servers`).
    Cloister,
    /// An etcd cluster through its HTTP/JSON gateway (`--etcd-endpoints`), for comparison.
    Etcd,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to drive.
    #[arg(long, value_enum, default_value = "cloister")]
    pub target: BenchTarget,
    /// The operation to measure (default: mixed; with `--target etcd` only backup, i.e. put).
    #[arg(long, value_enum)]
    pub op: Option<BenchOp>,
    /// Concurrent clients (1 to 4096).
    #[arg(long, default_value_t = 64)]
    pub clients: u32,
    /// Seconds to measure (1 to 3600; `--op fill` runs until it has stored `--backups`).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// With `--op fill`: how many distinct users to store one backup each for.
    #[arg(long, default_value_t = 100_000)]
    pub backups: u64,
    /// With `--op fill`: the first user's number (users are `fill-<n>`), so that several
    /// fills can add up instead of rewriting the same users.
    #[arg(long, default_value_t = 0)]
    pub first_user: u64,
    /// Client URLs of several replicas (comma-separated); workers take them in turn.
    /// Replaces `--server`.
    #[arg(long, value_delimiter = ',')]
    pub servers: Vec<String>,
    /// With `--target etcd`: client URLs (comma-separated `http://HOST:PORT`); workers
    /// take them in turn.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    pub etcd_endpoints: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}
