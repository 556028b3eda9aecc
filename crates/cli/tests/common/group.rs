//! Replica groups for the multi-process tests: several `cloister node --simulated`
//! processes that share one auth secret, formed into one Raft group through the admin CLI,
//! exactly as an operator would.
//!
//! ```text
//!  Group::start(name, 3)
//!    spawn × 3 ── node --simulated --peer-listen 127.0.0.1:0 --tick-interval-ms 100
//!    replica 0: admin create-group
//!    replica i: admin join --peer <replica 0's peer address>; admin request-voting (retried)
//!    wait: one leader all agree on, every voter listed, hashes equal
//!  group.kill(i)            SIGKILL; the Node stays in its slot, dead
//!  group.spawn()            a fresh, empty process (not in any group yet)
//!  group.join(i, via)       join through any member's peer address, then become a voter
//!  group.wait_leader(..) · group.wait_converged(..) · group.admin(i, "relinquish", &[])
//! ```
//!
//! Timing: with 100 ms ticks an election takes 10 to 20 ticks, so a failover is 1 to 2 s.
//! Every wait is bounded; a wait that runs out panics with what it saw last.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cloister_client::{
    Client, ConnectOptions, Connection, Credentials, EnclaveId, Error, ExposeOutcome,
    RestoreOutcome, Timeouts, TriesOutcome,
};
use cloister_host::auth::AuthSecret;
use serde_json::Value;

use super::{CliOutput, Node, TestDir, cli, try_http};

/// Milliseconds between ticks: elections in 1 to 2 s instead of 10 to 20 s.
pub const TICK_INTERVAL_MS: &str = "100";
/// Bound on one whole group test (they aim for well under a minute).
pub const GROUP_TEST_TIMEOUT: Duration = Duration::from_secs(150);
/// Bound on waiting for an election, a membership change or equal hashes.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between two polls of the admin API.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Runs a group test body under [`GROUP_TEST_TIMEOUT`].
pub async fn bounded_group<T>(body: impl Future<Output = T>) -> T {
    match tokio::time::timeout(GROUP_TEST_TIMEOUT, body).await {
        Ok(value) => value,
        Err(_) => panic!("group test did not finish within {GROUP_TEST_TIMEOUT:?}"),
    }
}

/// One replica's view of the group, from `GET /v1/status`.
#[derive(Debug, Clone)]
pub struct View {
    /// `leader`, `follower`, `candidate`, ...
    pub role: String,
    /// The Raft term.
    pub term: u64,
    /// This replica's Raft id.
    pub raft_id: u64,
    /// The leader this replica knows (0: none).
    pub leader_raft_id: u64,
    /// Raft ids of the members, with whether each votes.
    pub members: Vec<(u64, bool)>,
    /// Backups stored.
    pub backups: u64,
    /// Whether the replica belongs to a group.
    pub in_group: bool,
    /// The whole status document.
    pub json: Value,
}

impl View {
    fn parse(json: Value) -> View {
        let number = |name: &str| json[name].as_u64().unwrap_or(0);
        let members = json["members"]
            .as_array()
            .map(|members| {
                members
                    .iter()
                    .map(|member| {
                        (
                            member["raft_id"].as_u64().unwrap(),
                            member["voting"].as_bool().unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        View {
            role: json["role"].as_str().unwrap_or("").to_owned(),
            term: number("term"),
            raft_id: number("raft_id"),
            leader_raft_id: number("leader_raft_id"),
            members,
            backups: number("backups"),
            in_group: !json["group_config"].is_null(),
            json,
        }
    }

    /// Whether `raft_id` is a member (voting or not).
    pub fn lists(&self, raft_id: u64) -> bool {
        self.members.iter().any(|(id, _)| *id == raft_id)
    }

    /// Whether `raft_id` is a voting member.
    pub fn lists_voter(&self, raft_id: u64) -> bool {
        self.members.contains(&(raft_id, true))
    }
}

/// Several replica processes in one temp dir, killed and removed on drop.
pub struct Group {
    /// Every replica started, in order; a killed one stays in its slot.
    replicas: Vec<Node>,
    /// The auth secret every replica (and every client) shares.
    secret_file: PathBuf,
    // Declared last: dropped after the processes that use it.
    dir: TestDir,
}

impl Group {
    /// An empty group directory with a fresh shared auth secret; no process yet.
    pub fn new(name: &str) -> Group {
        let dir = TestDir::new(name);
        let secret_file = dir.path().join("auth-secret");
        AuthSecret::load_or_create(&secret_file).unwrap();
        Group {
            replicas: Vec::new(),
            secret_file,
            dir,
        }
    }

    /// `size` replicas formed into one group with the default configuration (`admin
    /// create-group`): all voters, one leader, equal hashes.
    pub async fn start(name: &str, size: usize) -> Group {
        Group::start_configured(name, size, None).await
    }

    /// As [`Group::start`]; with `create_params`, the group is created with that JSON body
    /// (`POST /v1/create-group`, e.g. short healing timeouts) instead of the defaults.
    pub async fn start_configured(name: &str, size: usize, create_params: Option<&str>) -> Group {
        let mut group = Group::new(name);
        for _ in 0..size {
            group.spawn().await;
        }
        match create_params {
            None => {
                group.admin(0, "create-group", &[]).await.expect_code(0);
            }
            Some(body) => {
                let admin = group.replicas[0].admin_addr;
                let created = try_http(admin, "POST", "/v1/create-group", &[], body)
                    .await
                    .unwrap();
                assert_eq!(created.status, 200, "{created:?}");
            }
        }
        for index in 1..size {
            group.join(index, 0).await;
        }
        let all: Vec<usize> = (0..size).collect();
        let leader = group.wait_leader(&all).await;
        let ids = group.raft_ids(&all).await;
        group
            .wait_view(leader, "every replica a voter", |view| {
                ids.iter().all(|id| view.lists_voter(*id)) && view.members.len() == size
            })
            .await;
        group.wait_converged(&all).await;
        group
    }

    /// Starts a fresh replica process (empty memory, no group); returns its index.
    pub async fn spawn(&mut self) -> usize {
        let index = self.replicas.len();
        let data_dir = self.dir.path().join(format!("replica-{index}"));
        std::fs::create_dir_all(&data_dir).unwrap();
        let secret = self.secret_file.display().to_string();
        let args = [
            "--simulated",
            "--auth-secret-file",
            &secret,
            "--peer-listen",
            "127.0.0.1:0",
            "--tick-interval-ms",
            TICK_INTERVAL_MS,
        ];
        let node = Node::start_with(data_dir, &args, self.secret_file.clone()).await;
        assert!(
            node.peer_addr.is_some(),
            "no peer address: {:?}",
            node.banner
        );
        self.replicas.push(node);
        index
    }

    /// Replica `index`.
    pub fn node(&self, index: usize) -> &Node {
        &self.replicas[index]
    }

    /// How many replicas were started (dead ones included).
    pub fn len(&self) -> usize {
        self.replicas.len()
    }

    /// Replica `index`'s peer address, as `--peer` takes it.
    pub fn peer_addr(&self, index: usize) -> String {
        self.replicas[index].peer_addr.unwrap().to_string()
    }

    /// The shared auth secret file.
    pub fn secret_file(&self) -> &PathBuf {
        &self.secret_file
    }

    /// SIGKILLs replica `index` (no goodbye to anyone); it is reaped when the group drops.
    /// Takes `&self`, so a test can kill while workers share the group.
    pub fn kill(&self, index: usize) {
        self.signal(index, "KILL");
    }

    /// Sends `signal` (`KILL`, `STOP`, `CONT`, ...) to replica `index` through `kill(1)`.
    pub fn signal(&self, index: usize, signal: &str) {
        let pid = self.replicas[index].pid().to_string();
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal} {pid} failed");
    }

    /// Runs `cloister admin COMMAND --admin <replica index> EXTRA...`.
    pub async fn admin(&self, index: usize, command: &str, extra: &[&str]) -> CliOutput {
        let url = self.replicas[index].admin_url();
        let mut args = vec!["admin", command, "--admin", &url];
        args.extend_from_slice(extra);
        cli(&args).await
    }

    /// Replica `index` joins the group through `via`'s peer address, then becomes a voter.
    pub async fn join(&self, index: usize, via: usize) {
        let peer = self.peer_addr(via);
        let joined = self
            .admin(index, "join", &["--peer", &peer, "--json"])
            .await;
        let joined = joined.expect_code(0);
        assert_eq!(joined.json()["ok"], true, "{joined:?}");
        self.request_voting(index).await;
    }

    /// `admin request-voting`, retried: a fresh learner knows the leader only after the
    /// next heartbeat.
    pub async fn request_voting(&self, index: usize) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let output = self.admin(index, "request-voting", &[]).await;
            if output.code == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "replica {index} could not become a voter: {output:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Replica `index`'s status, or `None` if it does not answer (dead, say).
    pub async fn status(&self, index: usize) -> Option<View> {
        let admin = self.replicas[index].admin_addr;
        let response = try_http(admin, "GET", "/v1/status", &[], "").await.ok()?;
        (response.status == 200).then(|| View::parse(response.json()))
    }

    /// Replica `index`'s status; panics if it does not answer.
    pub async fn view(&self, index: usize) -> View {
        self.status(index)
            .await
            .unwrap_or_else(|| panic!("replica {index} does not answer /v1/status"))
    }

    /// The Raft ids of `among`, in order.
    pub async fn raft_ids(&self, among: &[usize]) -> Vec<u64> {
        let mut ids = Vec::new();
        for index in among {
            ids.push(self.view(*index).await.raft_id);
        }
        ids
    }

    /// `GET /v1/hashes` of replica `index`, or `None` if it does not answer.
    pub async fn hashes(&self, index: usize) -> Option<Value> {
        let admin = self.replicas[index].admin_addr;
        let response = try_http(admin, "GET", "/v1/hashes", &[], "").await.ok()?;
        (response.status == 200).then(|| response.json())
    }

    /// Waits until one replica of `among` is leader and every replica of `among` agrees on
    /// it at one term; returns its index.
    pub async fn wait_leader(&self, among: &[usize]) -> usize {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let mut views = Vec::new();
            for index in among {
                views.push((*index, self.status(*index).await));
            }
            let leader = views.iter().find_map(|(index, view)| {
                view.as_ref()
                    .filter(|view| view.role == "leader")
                    .map(|view| (*index, view.raft_id, view.term))
            });
            if let Some((index, raft_id, term)) = leader {
                let agreed = views.iter().all(|(_, view)| {
                    view.as_ref()
                        .is_some_and(|view| view.leader_raft_id == raft_id && view.term == term)
                });
                if agreed {
                    return index;
                }
            }
            if Instant::now() > deadline {
                let summary: Vec<_> = views
                    .iter()
                    .map(|(index, view)| {
                        (
                            index,
                            view.as_ref()
                                .map(|v| (v.role.clone(), v.term, v.leader_raft_id)),
                        )
                    })
                    .collect();
                panic!("no agreed leader among {among:?} within {SETTLE_TIMEOUT:?}: {summary:?}");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits until replica `index`'s status satisfies `condition`; returns that status.
    pub async fn wait_view(
        &self,
        index: usize,
        what: &str,
        condition: impl Fn(&View) -> bool,
    ) -> View {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let view = self.status(index).await;
            if let Some(view) = view.as_ref().filter(|view| condition(view)) {
                return view.clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "replica {index}: {what}: not within {SETTLE_TIMEOUT:?}; last status {:?}",
                    view.map(|view| view.json)
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits until every replica of `among` reports the same database hash and the same
    /// commit index, with everything committed applied; returns that hash.
    pub async fn wait_converged(&self, among: &[usize]) -> String {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let mut all = Vec::new();
            for index in among {
                all.push(self.hashes(*index).await);
            }
            let first = all[0].clone();
            let converged = first.as_ref().is_some_and(|first| {
                all.iter().all(|hashes| {
                    hashes.as_ref().is_some_and(|hashes| {
                        hashes["db_hash"] == first["db_hash"]
                            && hashes["commit_index"] == first["commit_index"]
                            && hashes["applied_index"] == hashes["commit_index"]
                    })
                })
            });
            if converged {
                return first.unwrap()["db_hash"].as_str().unwrap().to_owned();
            }
            if Instant::now() > deadline {
                panic!("hashes of {among:?} not equal within {SETTLE_TIMEOUT:?}: {all:?}");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// An SDK client for `username` (32 hex chars) through replica `index`, with the given
    /// response timeout (connect and handshake: 10 s).
    pub fn client(&self, index: usize, username: &str, response_timeout: Duration) -> Client {
        let node = &self.replicas[index];
        let credentials = Credentials::new(username, node.password(username)).unwrap();
        let options = ConnectOptions {
            timeouts: Timeouts {
                response: response_timeout,
                ..Timeouts::default()
            },
            ..ConnectOptions::insecure_simulated()
        };
        Client::new(
            &node.server_url(),
            node.enclave_id.parse::<EnclaveId>().unwrap(),
            credentials,
            options,
        )
        .unwrap()
    }

    /// Opens a connection through replica `index`, retrying while the node says "not now"
    /// (4014, HTTP 503): nothing was sent yet, so retrying is always safe.
    async fn connect_retrying(&self, index: usize, username: &str) -> Connection {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            match self.client(index, username, SETTLE_TIMEOUT).connect().await {
                Ok(connection) => return connection,
                Err(error) if Instant::now() < deadline && error.is_retryable() => {
                    tokio::time::sleep(POLL_INTERVAL).await;
                }
                Err(error) => panic!("connecting through replica {index}: {error}"),
            }
        }
    }

    /// Runs one request on a fresh connection through replica `index`, retrying only while
    /// it fails with 4014 (which guarantees nothing changed); any other error panics. (The
    /// async closure makes these futures not `Send`: await them, do not `tokio::spawn` them.)
    async fn retry_unavailable<T>(
        &self,
        index: usize,
        username: &str,
        what: &str,
        mut request: impl AsyncFnMut(&mut Connection) -> Result<T, Error>,
    ) -> T {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let mut connection = self.connect_retrying(index, username).await;
            let result = request(&mut connection).await;
            connection.close().await;
            match result {
                Ok(value) => return value,
                Err(Error::Unavailable { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(POLL_INTERVAL).await;
                }
                Err(error) => panic!("{what} through replica {index}: {error}"),
            }
        }
    }

    /// Backup then Expose of `data` behind the raw 32-byte `pin` (no Argon2), through
    /// replica `index`; each retried on 4014 only.
    pub async fn back_up(
        &self,
        index: usize,
        username: &str,
        data: &[u8],
        pin: &[u8; 32],
        max_tries: u32,
    ) {
        self.retry_unavailable(index, username, "Backup", async |connection| {
            connection.backup(data, pin, max_tries).await
        })
        .await;
        let exposed = self
            .retry_unavailable(index, username, "Expose", async |connection| {
                connection.expose(data).await
            })
            .await;
        assert_eq!(exposed, ExposeOutcome::Ok, "Expose through replica {index}");
    }

    /// Tries through replica `index` (retried on 4014 only).
    pub async fn tries(&self, index: usize, username: &str) -> TriesOutcome {
        self.retry_unavailable(index, username, "Tries", async |connection| {
            connection.tries().await
        })
        .await
    }

    /// Restore with the raw `pin` through replica `index` (retried on 4014 only: a 4014
    /// guarantees the guess was not counted).
    pub async fn restore(&self, index: usize, username: &str, pin: &[u8; 32]) -> RestoreOutcome {
        self.retry_unavailable(index, username, "Restore", async |connection| {
            connection.restore(pin).await
        })
        .await
    }

    /// The logs of every replica, for a failure message.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for (index, node) in self.replicas.iter().enumerate() {
            text.push_str(&format!("==== replica {index} ====\n{}\n", node.log()));
        }
        text
    }
}
