//! The admin listener of a real node: health checks, status, hashes, enclave metrics and
//! Prometheus text, and that none of them (nor the node's log) ever carries a secret or PIN.

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Node, TestDir, bounded, http};

const SECRET_HEX: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
const PIN: &str = "73519024";

// SVR2 client protocol: Semantics (the service the metrics describe); README: "Logs never
// carry a PIN, key, token or plaintext".
#[tokio::test]
async fn health_status_and_metrics_answer_without_leaking_secrets() {
    bounded(async {
        let dir = TestDir::new("admin");
        let node = Node::start(&dir).await;

        let live = http(node.admin_addr, "GET", "/health/live", &[], "").await;
        assert_eq!(live.status, 200, "{live:?}");
        assert_eq!(live.json(), serde_json::json!({"live": true}));
        // `--dev` creates the group before it prints its addresses, so it is ready at once.
        let ready = http(node.admin_addr, "GET", "/health/ready", &[], "").await;
        assert_eq!(ready.status, 200, "{ready:?}");
        assert_eq!(ready.json()["ready"], true);
        assert_eq!(ready.json()["role"], "leader");

        let text = common::cli(&["admin", "status", "--admin", &node.admin_url()])
            .await
            .expect_code(0);
        assert!(text.stdout.contains("role leader"), "{text:?}");
        assert!(text.stdout.contains("(simulated: INSECURE)"), "{text:?}");
        let empty_hash = node.db_hash().await;

        node.cli(
            "backup",
            "frank",
            &["--pin", PIN, "--secret-hex", SECRET_HEX],
        )
        .await
        .expect_code(0);
        let restored = node
            .cli("restore", "frank", &["--pin", PIN])
            .await
            .expect_code(0);
        assert_eq!(restored.stdout.trim(), SECRET_HEX);
        node.cli("restore", "frank", &["--pin", "00000000"])
            .await
            .expect_code(3);

        let status = common::cli(&["admin", "status", "--admin", &node.admin_url(), "--json"])
            .await
            .expect_code(0)
            .json();
        assert_eq!(status["backups"], 1, "{status}");
        assert!(status["commit_index"].as_u64().unwrap() >= 4, "{status}");
        assert_eq!(status["group_config"]["db_version"], 2, "{status}");
        let hashes = node.admin_json("/v1/hashes").await;
        assert_ne!(hashes["db_hash"], empty_hash.as_str(), "{hashes}");

        let enclave = node.admin_json("/v1/metrics/enclave").await;
        assert!(
            enclave["counters"]["client_sessions_opened"]
                .as_u64()
                .unwrap()
                >= 4,
            "backup, expose and two restores: {enclave}"
        );

        let metrics = http(node.admin_addr, "GET", "/metrics", &[], "").await;
        assert_eq!(metrics.status, 200);
        assert!(
            metrics
                .header("content-type")
                .unwrap()
                .starts_with("text/plain"),
            "{metrics:?}"
        );
        for name in [
            "cloister_client_sessions_opened_total",
            "cloister_host_connections_accepted_total",
            "cloister_host_frames_in_total",
            "cloister_host_enclave_calls_total",
            "cloister_host_admin_requests_total",
            "cloister_host_ws_closes_total{code=\"4003\"} 0",
            "cloister_host_enclave_metrics_up 1",
        ] {
            assert!(
                metrics.body.contains(name),
                "{name} missing: {}",
                metrics.body
            );
        }
        let accepted = metrics
            .body
            .lines()
            .find_map(|line| line.strip_prefix("cloister_host_connections_accepted_total "))
            .unwrap();
        assert_eq!(accepted, "4", "backup, expose and two restores");

        // Nothing an operator can read carries the secret, the PIN, or the auth secret.
        let auth_secret = std::fs::read_to_string(&node.auth_secret_file).unwrap();
        let everything = [
            metrics.body,
            status.to_string(),
            hashes.to_string(),
            enclave.to_string(),
            node.log(),
        ];
        for (source, text) in ["/metrics", "status", "hashes", "enclave metrics", "log"]
            .iter()
            .zip(&everything)
        {
            for needle in [SECRET_HEX, PIN, auth_secret.trim()] {
                assert!(!text.contains(needle), "{source} contains {needle:?}");
            }
        }

        let missing = http(node.admin_addr, "GET", "/v1/nothing-here", &[], "").await;
        assert_eq!(missing.status, 404);
        assert_eq!(missing.json()["error"], "not_found");
    })
    .await;
}

// Issue: graceful shutdown on SIGTERM. The node stops accepting, closes its sockets and exits 0.
#[tokio::test]
async fn sigterm_stops_the_node_gracefully() {
    bounded(async {
        let dir = TestDir::new("sigterm");
        let mut node = Node::start(&dir).await;
        assert_eq!(node.cli("tries", "erin", &[]).await.code, 4);
        let client_addr = node.client_addr;
        let status = tokio::task::spawn_blocking(move || {
            let status = node.terminate(std::time::Duration::from_secs(20));
            (status, node.log())
        })
        .await
        .unwrap();
        let (status, log) = status;
        let status = status.expect("the node exits within 20 s of SIGTERM");
        assert!(status.success(), "exit status {status:?}; log:\n{log}");
        assert!(
            log.contains("terminated"),
            "the node logs why it stopped:\n{log}"
        );
        // Nothing listens any more.
        assert!(tokio::net::TcpStream::connect(client_addr).await.is_err());
    })
    .await;
}
