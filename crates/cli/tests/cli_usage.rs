//! `cloister` command-line errors: usage errors exit 2 before anything is contacted, a
//! missing auth secret file and a refused simulated enclave exit 1 with a message that says
//! what to do.

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{CliOutput, Node, TestDir, bounded, cli};

const SECRET_HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// Usage errors are found before the (unreachable) server is contacted.
const NO_SERVER: &str = "ws://127.0.0.1:9";

fn assert_usage(output: CliOutput, mentions: &str) {
    let output = output.expect_code(2);
    assert!(output.stderr.contains(mentions), "{mentions:?}: {output:?}");
}

// README: CLI exit codes ("2 usage error"); SVR2 client protocol: Messages ("max_tries
// 1..=255"; the secret is 32 bytes before sealing).
#[tokio::test]
async fn usage_errors_exit_2() {
    bounded(async {
        let dir = TestDir::new("usage");
        let secret_file = dir.auth_secret_file().display().to_string();
        let common = ["--server", NO_SERVER, "--auth-secret-file", &secret_file];
        let with = |args: &[&str]| -> Vec<String> {
            args.iter()
                .chain(common.iter())
                .map(|arg| (*arg).to_owned())
                .collect()
        };

        assert_usage(cli(&with(&["tries"])).await, "--user");
        assert_usage(cli(&with(&["restore", "--pin", "1234"])).await, "--user");
        let short_secret = "00".repeat(31);
        let long_secret = "00".repeat(33);
        for secret in [short_secret.as_str(), long_secret.as_str(), "zz"] {
            let args = [
                "backup",
                "--user",
                "a",
                "--pin",
                "1",
                "--secret-hex",
                secret,
            ];
            assert_usage(cli(&with(&args)).await, "--secret-hex");
        }
        for max_tries in ["0", "256"] {
            let args = [
                "backup",
                "--user",
                "a",
                "--pin",
                "1",
                "--secret-hex",
                SECRET_HEX,
                "--max-tries",
                max_tries,
            ];
            assert_usage(cli(&with(&args)).await, "--max-tries must be 1 to 255");
        }
        // With --json a usage error found by the command is JSON too.
        let args = [
            "backup",
            "--user",
            "a",
            "--pin",
            "1",
            "--secret-hex",
            SECRET_HEX,
            "--max-tries",
            "0",
            "--json",
        ];
        let output = cli(&with(&args)).await.expect_code(2);
        assert_eq!(output.json()["status"], "usage_error", "{output:?}");

        assert_usage(
            cli(&["node", "--data-dir", &dir.path().display().to_string()]).await,
            "--dev",
        );
        assert_usage(cli(&["no-such-command"]).await, "no-such-command");
        assert_usage(
            cli(&["admin", "status", "--admin", "https://127.0.0.1:1"]).await,
            "--admin",
        );
        // None of that created anything.
        assert!(!dir.auth_secret_file().exists());
    })
    .await;
}

// README: CLI ("The user commands mint their own token from the secret file").
#[tokio::test]
async fn a_missing_auth_secret_file_exits_1_with_a_clear_message() {
    bounded(async {
        let dir = TestDir::new("no-secret");
        let missing = dir.path().join("no-such-secret").display().to_string();
        let output = cli(&[
            "tries",
            "--user",
            "a",
            "--server",
            NO_SERVER,
            "--auth-secret-file",
            &missing,
            "--allow-simulated",
        ])
        .await
        .expect_code(1);
        assert!(output.stderr.contains(&missing), "{output:?}");
        assert!(output.stderr.contains("--auth-secret-file"), "{output:?}");
    })
    .await;
}

// SVR2 client protocol: Session ("test_only_pubkey ... filled only when the group is
// simulated"); a client refuses a simulated enclave unless told otherwise.
#[tokio::test]
async fn a_simulated_node_is_refused_without_allow_simulated() {
    bounded(async {
        let dir = TestDir::new("strict");
        let node = Node::start(&dir).await;
        let secret_file = node.auth_secret_file.display().to_string();
        let server = node.server_url();
        let strict = |command: &str, extra: &[&str]| {
            let mut args = vec![command, "--user", "grace", "--server", &server];
            args.extend(["--auth-secret-file", &secret_file]);
            args.extend(extra);
            args.into_iter().map(str::to_owned).collect::<Vec<_>>()
        };
        let cases = [
            strict("tries", &[]),
            strict("restore", &["--pin", "1234"]),
            strict("delete", &[]),
            strict("backup", &["--pin", "1234", "--secret-hex", SECRET_HEX]),
        ];
        for args in &cases {
            let output = cli(args).await.expect_code(1);
            assert!(output.stderr.contains("--allow-simulated"), "{output:?}");
        }
        // Nothing was stored by the refused backup, and with the flag the node serves.
        node.cli("tries", "grace", &[]).await.expect_code(4);
        assert_eq!(node.admin_json("/v1/status").await["backups"], 0);
    })
    .await;
}
