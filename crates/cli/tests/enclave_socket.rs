//! The out-of-process enclave: `cloister enclave --listen unix:PATH --simulated` holds the
//! core, `cloister node --dev --enclave-socket unix:PATH` drives it, both as real processes
//! (and once over `tcp:127.0.0.1:0`).
//! The backups live in the enclave process, so a node that crashes or stops can be started
//! again and finds them; a second node is refused while one is attached; garbage on the
//! socket is refused and changes nothing; and a node whose enclave process dies says so and
//! exits.

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cloister_proto::door::{Attach, EnclaveFrame, HostFrame, enclave_frame, host_frame};
use cloister_proto::enclave::{EnclaveConfig, EnclaveLogLevel, InitConfig};
use cloister_proto::prost::Message;
use common::{NODE_START_TIMEOUT, Node, TestDir, bounded, cli, username};

const SECRET_HEX: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";

/// A running `cloister enclave`, killed and reaped on drop.
struct EnclaveProcess {
    child: Child,
    /// Where it listens, as it printed it (a TCP port 0 resolved), for `--enclave-socket`.
    address: String,
}

impl EnclaveProcess {
    /// Starts `cloister enclave --listen LISTEN --simulated` (logging to DIR/enclave.log)
    /// and waits until it says where it listens.
    async fn start(dir: &Path, listen: &str) -> EnclaveProcess {
        let log = std::fs::File::create(dir.join("enclave.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_cloister"))
            .args(["enclave", "--listen", listen, "--simulated"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let listening = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            let address = lines.by_ref().map_while(Result::ok).find_map(|line| {
                line.strip_prefix("enclave listening on ")
                    .map(str::to_owned)
            });
            // Keep draining, so the process never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            address
        });
        let address = tokio::time::timeout(NODE_START_TIMEOUT, listening)
            .await
            .expect("the enclave process did not start in time")
            .unwrap()
            .expect("the enclave process did not say where it listens");
        EnclaveProcess { child, address }
    }

    /// Starts one on `unix:DIR/enclave.sock`.
    async fn start_unix(dir: &Path) -> EnclaveProcess {
        let listen = format!("unix:{}", dir.join("enclave.sock").display());
        let enclave = EnclaveProcess::start(dir, &listen).await;
        assert_eq!(enclave.address, listen);
        enclave
    }

    /// The unix socket's path.
    fn socket(&self) -> PathBuf {
        PathBuf::from(self.address.strip_prefix("unix:").unwrap())
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EnclaveProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `cloister node --dev --enclave-socket ADDRESS` on `data_dir`.
async fn start_node(enclave: &EnclaveProcess, data_dir: &Path) -> Node {
    std::fs::create_dir_all(data_dir).unwrap();
    let args = ["--dev", "--enclave-socket", enclave.address.as_str()];
    Node::start_with(data_dir.to_owned(), &args, data_dir.join("auth-secret")).await
}

fn send_raw(stream: &mut UnixStream, body: &[u8]) {
    stream
        .write_all(&(body.len() as u32).to_be_bytes())
        .unwrap();
    stream.write_all(body).unwrap();
}

/// Reads the enclave's `Refused` and the end of the connection after it.
fn refusal(mut stream: UnixStream) -> String {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(length) as usize];
    stream.read_exact(&mut body).unwrap();
    let reason = match EnclaveFrame::decode(body.as_slice()).unwrap().kind {
        Some(enclave_frame::Kind::Refused(refused)) => refused.reason,
        other => panic!("expected Refused, got {other:?}"),
    };
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "the enclave closes after Refused");
    reason
}

fn raw(socket: &Path) -> UnixStream {
    let stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// Frames no host should send, each on its own connection; every one is refused.
fn send_garbage(socket: &Path) {
    let mut stream = raw(socket);
    stream.write_all(&u32::MAX.to_be_bytes()).unwrap();
    let reason = refusal(stream);
    assert!(reason.contains("exceeds"), "{reason}");

    let mut stream = raw(socket);
    send_raw(&mut stream, b"definitely not protobuf");
    let reason = refusal(stream);
    assert!(reason.contains("not a HostFrame"), "{reason}");

    let mut stream = raw(socket);
    let frame = HostFrame {
        kind: Some(host_frame::Kind::UntrustedMessage(vec![1, 2, 3])),
    };
    send_raw(&mut stream, &frame.encode_to_vec());
    let reason = refusal(stream);
    assert!(reason.contains("must be Attach"), "{reason}");

    // A host with other settings cannot take over the running core.
    let init = InitConfig {
        config: Some(EnclaveConfig {
            log_level: EnclaveLogLevel::Max.into(),
            client_sessions_max: 1,
            pending_requests_max: 1,
        }),
        initial_timestamp_unix_secs: 1,
    };
    let attach = Attach {
        protocol_version: 1,
        init_config: init.encode_to_vec(),
    };
    let frame = HostFrame {
        kind: Some(host_frame::Kind::Attach(attach)),
    };
    let mut stream = raw(socket);
    send_raw(&mut stream, &frame.encode_to_vec());
    let reason = refusal(stream);
    assert!(reason.contains("different config"), "{reason}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_backups_live_in_the_enclave_process_across_node_restarts() {
    bounded(async {
        let dir = TestDir::new("enclave-socket");
        let mut enclave = EnclaveProcess::start_unix(dir.path()).await;
        let data_dir = dir.path().join("node");
        let mut node = start_node(&enclave, &data_dir).await;
        assert!(
            node.banner[0].contains("attached to a new core")
                && node.banner[0].contains("one-replica group"),
            "{:?}",
            node.banner
        );
        let enclave_id = node.enclave_id.clone();
        let user = username("remote");
        node.cli(
            "backup",
            &user,
            &["--pin", "1234", "--secret-hex", SECRET_HEX],
        )
        .await
        .expect_code(0);
        let restored = node
            .cli("restore", &user, &["--pin", "1234"])
            .await
            .expect_code(0);
        assert_eq!(restored.stdout.trim(), SECRET_HEX);
        let wrong = node.cli("restore", &user, &["--pin", "9999"]).await;
        assert_eq!(wrong.code, 3, "{wrong:?}");

        // A second host is refused while the first is attached, and the first serves on.
        let other_dir = dir.path().join("other");
        let second = cli(&[
            "node",
            "--dev",
            "--enclave-socket",
            &enclave.address,
            "--data-dir",
            &other_dir.display().to_string(),
            "--client-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .await;
        assert_eq!(second.code, 1, "{second:?}");
        assert!(
            second.stderr.contains("another host is attached"),
            "{second:?}"
        );
        let tries = node.cli("tries", &user, &[]).await.expect_code(0);
        assert_eq!(tries.stdout.trim(), "9 tries left", "{tries:?}");

        // The node crashes. Garbage meanwhile is refused and changes nothing.
        node.kill();
        let socket = enclave.socket();
        tokio::task::spawn_blocking(move || send_garbage(&socket))
            .await
            .unwrap();

        // A new node reattaches and finds the backup, its spent try included.
        let mut node = start_node(&enclave, &data_dir).await;
        assert!(
            node.banner[0].contains("reattached, its state kept")
                && node.banner[0].contains("in group"),
            "{:?}",
            node.banner
        );
        assert_eq!(node.enclave_id, enclave_id);
        let tries = node.cli("tries", &user, &[]).await.expect_code(0);
        assert_eq!(tries.stdout.trim(), "9 tries left", "{tries:?}");
        let restored = node
            .cli("restore", &user, &["--pin", "1234"])
            .await
            .expect_code(0);
        assert_eq!(restored.stdout.trim(), SECRET_HEX);

        // A graceful stop leaves the group alone: the next node finds the backup too.
        let stopped = node.terminate(Duration::from_secs(30)).unwrap();
        assert!(stopped.success(), "{stopped:?}: {}", node.log());
        let mut node = start_node(&enclave, &data_dir).await;
        let restored = node
            .cli("restore", &user, &["--pin", "1234"])
            .await
            .expect_code(0);
        assert_eq!(restored.stdout.trim(), SECRET_HEX);

        // The enclave process dies: the node notices at its next tick, says so and exits.
        enclave.kill();
        let exited = node.wait_exit(Duration::from_secs(60)).unwrap();
        assert_eq!(exited.code(), Some(1), "{}", node.log());
        let log = node.log();
        assert!(log.contains("lost the enclave process at unix:"), "{log}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_drives_an_enclave_process_over_tcp() {
    bounded(async {
        let dir = TestDir::new("enclave-tcp");
        let enclave = EnclaveProcess::start(dir.path(), "tcp:127.0.0.1:0").await;
        assert!(
            enclave.address.starts_with("tcp:127.0.0.1:") && !enclave.address.ends_with(":0"),
            "{}",
            enclave.address
        );
        let node = start_node(&enclave, &dir.path().join("node")).await;
        let user = username("tcp");
        node.cli(
            "backup",
            &user,
            &["--pin", "4321", "--secret-hex", SECRET_HEX],
        )
        .await
        .expect_code(0);
        let restored = node
            .cli("restore", &user, &["--pin", "4321"])
            .await
            .expect_code(0);
        assert_eq!(restored.stdout.trim(), SECRET_HEX);
    })
    .await;
}

#[tokio::test]
async fn the_enclave_command_refuses_what_it_cannot_do() {
    bounded(async {
        let dir = TestDir::new("enclave-usage");
        let address = format!("unix:{}", dir.path().join("e.sock").display());

        let refused = cli(&["enclave", "--listen", &address]).await;
        assert_eq!(refused.code, 2, "{refused:?}");
        assert!(
            refused.stderr.contains("which TEE?")
                && refused.stderr.contains("--backend sgx|tdx|sev-snp|nitro")
                && refused.stderr.contains("--simulated"),
            "{refused:?}"
        );

        // A backend whose device is not on this machine: refused at start, saying where it
        // looked; nothing listens.
        let missing = dir.path().join("no-such-device");
        for (backend, expected) in [
            ("tdx", "configfs-tsm not found"),
            ("sev-snp", "configfs-tsm not found"),
            ("sgx", "not found"),
            ("nitro", "nitro secure module not found"),
        ] {
            let refused = cli(&[
                "enclave",
                "--listen",
                &address,
                "--backend",
                backend,
                "--device-root",
                &missing.display().to_string(),
            ])
            .await;
            assert_eq!(refused.code, 1, "{backend}: {refused:?}");
            assert!(
                refused.stderr.contains(&format!("the {backend} platform"))
                    && refused.stderr.to_lowercase().contains(expected)
                    && refused.stderr.contains("no-such-device"),
                "{backend}: {refused:?}"
            );
            assert!(
                !dir.path().join("e.sock").exists(),
                "{backend} bound its socket"
            );
        }
        let refused = cli(&["enclave", "--listen", &address, "--backend", "sgx2"]).await;
        assert_eq!(refused.code, 2, "{refused:?}");
        assert!(refused.stderr.contains("sev-snp"), "{refused:?}");

        let refused = cli(&["enclave", "--listen", "/no/scheme.sock", "--simulated"]).await;
        assert_eq!(refused.code, 2, "{refused:?}");
        assert!(refused.stderr.contains("expected unix:PATH"), "{refused:?}");

        // The enclave process chooses the backend: --simulated belongs to it, not the node.
        let refused = cli(&["node", "--simulated", "--enclave-socket", &address]).await;
        assert_eq!(refused.code, 2, "{refused:?}");

        // Nobody listens there.
        let refused = cli(&[
            "node",
            "--dev",
            "--enclave-socket",
            &address,
            "--data-dir",
            &dir.path().join("node").display().to_string(),
        ])
        .await;
        assert_eq!(refused.code, 1, "{refused:?}");
        assert!(
            refused.stderr.contains("connecting to the enclave")
                && refused.stderr.contains(&address),
            "{refused:?}"
        );
    })
    .await;
}
