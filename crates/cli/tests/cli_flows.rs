//! The `cloister` user commands against a real `cloister node --dev`: backup, tries,
//! restore and delete as a person (or a script, with `--json`) would run them, with their
//! exit codes: 0 ok, 3 wrong PIN, 4 no such backup.

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Node, TestDir, bounded};

const SECRET_HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

// SVR2 client protocol: Semantics (Backup, Expose, Tries, Restore).
#[tokio::test]
async fn backup_tries_restore_round_trip_in_text_and_json() {
    bounded(async {
        let dir = TestDir::new("round-trip");
        let node = Node::start(&dir).await;

        let backed_up = node
            .cli(
                "backup",
                "alice",
                &["--pin", "1234", "--secret-hex", SECRET_HEX],
            )
            .await
            .expect_code(0);
        assert!(
            backed_up
                .stdout
                .contains("backed up a secret for alice with 10 tries"),
            "{backed_up:?}"
        );

        // The CLI runs Backup then Expose, so the row is exposed with the default 10 tries.
        let tries = node.cli("tries", "alice", &[]).await.expect_code(0);
        assert_eq!(tries.stdout.trim(), "10 tries left", "{tries:?}");
        let tries = node.cli("tries", "alice", &["--json"]).await.expect_code(0);
        assert_eq!(
            tries.json(),
            serde_json::json!({"status": "ok", "tries": 10, "exposed": true})
        );

        let restored = node
            .cli("restore", "alice", &["--pin", "1234"])
            .await
            .expect_code(0);
        assert_eq!(restored.stdout.trim(), SECRET_HEX);
        // A success does not reset or spend tries.
        let restored = node
            .cli("restore", "alice", &["--pin", "1234", "--json"])
            .await
            .expect_code(0);
        assert_eq!(
            restored.json(),
            serde_json::json!({"status": "ok", "secret_hex": SECRET_HEX, "tries": 10})
        );

        // A second user with its own max tries: users are independent rows.
        let other = "bob";
        let backed_up = node
            .cli(
                "backup",
                other,
                &[
                    "--pin",
                    "0000",
                    "--secret-hex",
                    &"ab".repeat(32),
                    "--max-tries",
                    "7",
                    "--json",
                ],
            )
            .await
            .expect_code(0);
        assert_eq!(
            backed_up.json(),
            serde_json::json!({"status": "ok", "user": "bob", "tries": 7})
        );
        let restored = node
            .cli("restore", other, &["--pin", "0000", "--json"])
            .await
            .expect_code(0);
        assert_eq!(restored.json()["secret_hex"], "ab".repeat(32));
        assert_eq!(restored.json()["tries"], 7);
        // Alice's PIN does not open Bob's backup.
        let wrong = node
            .cli("restore", other, &["--pin", "1234", "--json"])
            .await
            .expect_code(3);
        assert_eq!(
            wrong.json(),
            serde_json::json!({"status": "pin_mismatch", "tries": 6})
        );

        let status = common::cli(&["admin", "status", "--admin", &node.admin_url(), "--json"])
            .await
            .expect_code(0);
        let status = status.json();
        assert_eq!(status["backups"], 2, "{status}");
        assert_eq!(status["role"], "leader");
        assert_eq!(status["simulated"], true);
        assert_eq!(status["measurement"], node.enclave_id);
    })
    .await;
}

// SVR2 client protocol: Restore (wrong pin decrements; at 0 the row is deleted, MISSING).
#[tokio::test]
async fn wrong_pins_count_down_to_deletion() {
    bounded(async {
        let dir = TestDir::new("wrong-pin");
        let node = Node::start(&dir).await;
        let user = "carol";
        node.cli(
            "backup",
            user,
            &[
                "--pin",
                "2468",
                "--secret-hex",
                SECRET_HEX,
                "--max-tries",
                "3",
            ],
        )
        .await
        .expect_code(0);
        let tries = node.cli("tries", user, &["--json"]).await.expect_code(0);
        assert_eq!(tries.json()["tries"], 3);

        for left in [2, 1] {
            let wrong = node
                .cli("restore", user, &["--pin", "1357"])
                .await
                .expect_code(3);
            assert!(
                wrong
                    .stderr
                    .contains(&format!("wrong PIN: {left} tries left")),
                "{wrong:?}"
            );
            assert!(wrong.stdout.is_empty(), "no secret on stdout: {wrong:?}");
        }
        // The last wrong PIN erases the row: the answer is MISSING, not PIN_MISMATCH.
        let last = node
            .cli("restore", user, &["--pin", "1357", "--json"])
            .await
            .expect_code(4);
        assert_eq!(last.json(), serde_json::json!({"status": "missing"}));

        let right = node
            .cli("restore", user, &["--pin", "2468"])
            .await
            .expect_code(4);
        assert!(right.stderr.contains("no backup for carol"), "{right:?}");
        assert!(!right.stdout.contains(SECRET_HEX));
        node.cli("tries", user, &[]).await.expect_code(4);
        let status = node.admin_json("/v1/status").await;
        assert_eq!(status["backups"], 0);
    })
    .await;
}

// SVR2 client protocol: Tries ("OK with tries and exposed, or MISSING").
#[tokio::test]
async fn tries_and_restore_without_a_backup_exit_4() {
    bounded(async {
        let dir = TestDir::new("no-backup");
        let node = Node::start(&dir).await;
        let tries = node.cli("tries", "nobody", &[]).await.expect_code(4);
        assert!(tries.stderr.contains("no backup for nobody"), "{tries:?}");
        let tries = node
            .cli("tries", "nobody", &["--json"])
            .await
            .expect_code(4);
        assert_eq!(tries.json(), serde_json::json!({"status": "missing"}));
        let restore = node
            .cli("restore", "nobody", &["--pin", "1234"])
            .await
            .expect_code(4);
        assert!(restore.stdout.is_empty(), "{restore:?}");
        // Delete is idempotent: deleting nothing succeeds.
        node.cli("delete", "nobody", &[]).await.expect_code(0);
    })
    .await;
}

// SVR2 client protocol: Transport and authentication (the shared secret); backups live in
// enclave memory only, by design (README: "Memory only").
#[tokio::test]
async fn a_restarted_node_keeps_its_auth_secret_and_loses_its_backups() {
    bounded(async {
        let dir = TestDir::new("restart");
        let mut first = Node::start(&dir).await;
        assert!(
            first.auth_secret_line().ends_with("(created)"),
            "{:?}",
            first.banner
        );
        let secret_file = std::fs::read_to_string(dir.auth_secret_file()).unwrap();
        first
            .cli(
                "backup",
                "dave",
                &["--pin", "1111", "--secret-hex", SECRET_HEX],
            )
            .await
            .expect_code(0);
        first.cli("tries", "dave", &[]).await.expect_code(0);
        let enclave_id = first.enclave_id.clone();
        first.kill();

        let second = Node::start(&dir).await;
        assert!(
            second.auth_secret_line().ends_with("(existing)"),
            "{:?}",
            second.banner
        );
        assert_eq!(
            std::fs::read_to_string(dir.auth_secret_file()).unwrap(),
            secret_file
        );
        assert_eq!(
            second.enclave_id, enclave_id,
            "same build, same measurement"
        );
        // Tokens minted from the kept secret still authenticate; the backup is gone.
        second.cli("tries", "dave", &[]).await.expect_code(4);
        second
            .cli("restore", "dave", &["--pin", "1111"])
            .await
            .expect_code(4);
        assert_eq!(second.admin_json("/v1/status").await["backups"], 0);
    })
    .await;
}
