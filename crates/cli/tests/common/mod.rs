//! Shared helpers for the integration tests: a node guard around the real `cloister`
//! binary, the CLI runner, a tiny HTTP/1.1 client and credential minting.
//!
//! ```text
//!  Node::start(&TestDir) ── spawns `cloister node --dev` on ports 0, reads stdout until it
//!     │                     names both addresses; Drop kills and reaps the process
//!     ├─ node.cli(&["tries", "--user", ..])   the binary as a user would run it
//!     ├─ node.sdk_client(username)             cloister_client, minted credentials
//!     └─ http(node.admin_addr, "GET", ..)      admin API and the client listener's DELETE
//! ```
//!
//! Raw WebSocket helpers for bad input live in `common::ws`; the HTTP client lives in
//! `common::http_client`; replica groups of several `cloister node --simulated` processes
//! live in `common::group`, and a raw peer-transport client in `common::peer`.

// Every test crate includes this module and uses a different part of it.
#![allow(dead_code)]

pub mod group;
mod http_client;
pub mod peer;
pub mod ws;

pub use http_client::{http, try_http};

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use cloister_client::{Client, ConnectOptions, Credentials, EnclaveId};
use cloister_host::auth::{self, AuthSecret};

/// How long a node may take to print its addresses (debug builds start slowly under load).
pub const NODE_START_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on one whole test.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(180);
/// Seconds in a day.
pub const DAY_SECS: u64 = 24 * 60 * 60;

/// Runs a test body under [`TEST_TIMEOUT`], so a hang fails instead of stalling the suite.
pub async fn bounded<T>(body: impl Future<Output = T>) -> T {
    match tokio::time::timeout(TEST_TIMEOUT, body).await {
        Ok(value) => value,
        Err(_) => panic!("test did not finish within {TEST_TIMEOUT:?}"),
    }
}

/// Seconds since 1970 by this machine's clock (the node uses the same clock).
pub fn unix_now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    /// A new, empty directory whose name contains `name`, the process id and a counter.
    pub fn new(name: &str) -> TestDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let unique = format!(
            "cloister-it-{name}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path).unwrap();
        TestDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The node's auth secret file (the default place under `--data-dir`).
    pub fn auth_secret_file(&self) -> PathBuf {
        self.path.join("auth-secret")
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// What one CLI run printed and how it exited.
#[derive(Debug)]
pub struct CliOutput {
    /// The exit code (`-1` if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliOutput {
    /// Stdout parsed as one JSON value.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {self:?}"))
    }

    /// Panics with everything printed unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> CliOutput {
        assert_eq!(self.code, code, "unexpected exit code: {self:?}");
        self
    }
}

/// Runs `cloister args...` to completion on a blocking thread.
pub async fn cli<S: AsRef<str>>(args: &[S]) -> CliOutput {
    let args: Vec<String> = args.iter().map(|arg| arg.as_ref().to_owned()).collect();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_cloister"))
            .args(&args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    CliOutput {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A running `cloister node --dev`, killed and reaped on drop.
pub struct Node {
    child: Child,
    /// The client WebSocket listener.
    pub client_addr: SocketAddr,
    /// The admin API listener.
    pub admin_addr: SocketAddr,
    /// The peer listener, when the node was started with `--peer-listen`.
    pub peer_addr: Option<SocketAddr>,
    /// The enclave id (hex measurement) the node printed.
    pub enclave_id: String,
    /// Every stdout line up to and including the `auth secret` line.
    pub banner: Vec<String>,
    /// The auth secret file.
    pub auth_secret_file: PathBuf,
    /// Where the node's stderr (its logs) goes.
    pub log_file: PathBuf,
}

impl Node {
    /// Starts a node on `dir` with ports chosen by the OS.
    pub async fn start(dir: &TestDir) -> Node {
        let data_dir = dir.path().to_owned();
        let secret = data_dir.join("auth-secret");
        Node::start_with(data_dir, &["--dev"], secret).await
    }

    /// Starts `cloister node MODE_ARGS --data-dir DATA_DIR` with client and admin ports
    /// chosen by the OS; `auth_secret_file` is where the node reads its secret (pass
    /// `--auth-secret-file` in `mode_args` when it is not the default one).
    pub async fn start_with(
        data_dir: PathBuf,
        mode_args: &[&str],
        auth_secret_file: PathBuf,
    ) -> Node {
        let mode_args: Vec<String> = mode_args.iter().map(|arg| (*arg).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            Node::start_blocking(&data_dir, &mode_args, auth_secret_file)
        })
        .await
        .unwrap()
    }

    fn start_blocking(data_dir: &Path, mode_args: &[String], auth_secret_file: PathBuf) -> Node {
        static STARTS: AtomicU64 = AtomicU64::new(0);
        let log_file = data_dir.join(format!(
            "node-{}.log",
            STARTS.fetch_add(1, Ordering::Relaxed)
        ));
        let mut child = Command::new(env!("CARGO_BIN_EXE_cloister"))
            .arg("node")
            .args(mode_args)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--client-listen", "127.0.0.1:0"])
            .args(["--admin-listen", "127.0.0.1:0"])
            // CLOISTER_TEST_NODE_LOG (e.g. "debug") turns up the nodes' logs when debugging.
            .env(
                "RUST_LOG",
                std::env::var("CLOISTER_TEST_NODE_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log_file).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines_in, lines_out) = mpsc::channel();
        // Keeps reading to EOF, so the node never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if lines_in.send(line).is_err() {
                    return;
                }
            }
        });
        let mut node = Node {
            child,
            client_addr: ([0, 0, 0, 0], 0).into(),
            admin_addr: ([0, 0, 0, 0], 0).into(),
            peer_addr: None,
            enclave_id: String::new(),
            banner: Vec::new(),
            auth_secret_file,
            log_file,
        };
        node.read_banner(&lines_out);
        node
    }

    /// Reads stdout until the `auth secret` line, which follows both addresses.
    fn read_banner(&mut self, lines: &mpsc::Receiver<String>) {
        let deadline = std::time::Instant::now() + NODE_START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match lines.recv_timeout(left) {
                Ok(line) => line,
                Err(error) => panic!(
                    "node did not print its addresses ({error}); stdout so far: {:?}; log: {}",
                    self.banner,
                    std::fs::read_to_string(&self.log_file).unwrap_or_default()
                ),
            };
            if let Some(addr) = line.strip_prefix("client listening on ws://") {
                self.client_addr = addr.trim().parse().unwrap();
            } else if let Some(addr) = line.strip_prefix("admin listening on http://") {
                self.admin_addr = addr.trim().parse().unwrap();
            } else if let Some(addr) = line.strip_prefix("peer listening on ") {
                self.peer_addr = Some(addr.trim().parse().unwrap());
            } else if let Some(id) = line.strip_prefix("enclave id ") {
                self.enclave_id = id.trim().to_owned();
            }
            let done = line.starts_with("auth secret ");
            self.banner.push(line);
            if done {
                assert_ne!(self.client_addr.port(), 0, "{:?}", self.banner);
                assert_ne!(self.admin_addr.port(), 0, "{:?}", self.banner);
                return;
            }
        }
    }

    /// The `auth secret ...` banner line.
    pub fn auth_secret_line(&self) -> &str {
        self.banner.last().map_or("", String::as_str)
    }

    /// `ws://ADDR` for `--server`.
    pub fn server_url(&self) -> String {
        format!("ws://{}", self.client_addr)
    }

    /// `http://ADDR` for `--admin`.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    /// Runs a user command (`backup`, `restore`, `tries`, `delete`) against this node with
    /// `--server`, `--auth-secret-file` and `--allow-simulated` filled in.
    pub async fn cli(&self, command: &str, user: &str, extra: &[&str]) -> CliOutput {
        let mut args = vec![
            command.to_owned(),
            "--user".to_owned(),
            user.to_owned(),
            "--server".to_owned(),
            self.server_url(),
            "--auth-secret-file".to_owned(),
            self.auth_secret_file.display().to_string(),
            "--allow-simulated".to_owned(),
        ];
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        cli(&args).await
    }

    /// The node's credential secret, read from its file.
    pub fn secret(&self) -> AuthSecret {
        AuthSecret::load(&self.auth_secret_file).unwrap()
    }

    /// A password for `username`, minted now with the node's secret.
    pub fn password(&self, username: &str) -> String {
        auth::mint(&self.secret(), username, unix_now_secs()).unwrap()
    }

    /// An SDK client for `username` (32 hex chars) that accepts the simulated enclave.
    pub fn sdk_client(&self, username: &str) -> Client {
        let credentials = Credentials::new(username, self.password(username)).unwrap();
        Client::new(
            &self.server_url(),
            self.enclave_id.parse::<EnclaveId>().unwrap(),
            credentials,
            ConnectOptions::insecure_simulated(),
        )
        .unwrap()
    }

    /// A `Basic` Authorization header for `username` with a freshly minted password.
    pub fn basic_auth(&self, username: &str) -> String {
        basic_header(username, &self.password(username))
    }

    /// `GET` an admin route and parse its JSON body, asserting 200.
    pub async fn admin_json(&self, path: &str) -> serde_json::Value {
        let response = http(self.admin_addr, "GET", path, &[], "").await;
        assert_eq!(response.status, 200, "{path}: {response:?}");
        response.json()
    }

    /// The database hash from `GET /v1/hashes`.
    pub async fn db_hash(&self) -> String {
        let hashes = self.admin_json("/v1/hashes").await;
        hashes["db_hash"].as_str().unwrap().to_owned()
    }

    /// The node's log (its stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// Sends SIGTERM (through the `kill` command: no libc binding needed) and waits up to
    /// `limit` for the node to exit; returns its exit status, or `None` if it did not exit.
    pub fn terminate(&mut self, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    /// Waits up to `limit` for the node to exit by itself; its status, or `None`.
    pub fn wait_exit(&mut self, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the node now (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The value of an HTTP Basic `Authorization` header.
pub fn basic_header(username: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

/// A fresh random-looking username (32 lowercase hex chars) unique to this process.
pub fn username(label: &str) -> String {
    use sha2::{Digest, Sha256};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let digest = Sha256::new()
        .chain_update(label)
        .chain_update(std::process::id().to_be_bytes())
        .chain_update(COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes())
        .chain_update(unix_now_secs().to_be_bytes())
        .finalize();
    hex::encode(&digest[..16])
}
