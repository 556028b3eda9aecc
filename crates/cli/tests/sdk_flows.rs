//! The client SDK (`cloister_client`) against a real node: the two-phase Expose rules,
//! every way to delete a backup, and key rotation under open sessions.

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cloister_client::{Connection, ExposeOutcome, RestoreOutcome, TriesOutcome};
use common::{Node, TestDir, bounded, http, username};

const DATA: [u8; 48] = [0x5a; 48];
const PIN: [u8; 32] = [0x11; 32];
const WRONG_PIN: [u8; 32] = [0x22; 32];

async fn tries(connection: &mut Connection) -> TriesOutcome {
    connection.tries().await.unwrap()
}

// SVR2 client protocol: Semantics, Expose and Restore ("missing or not-AVAILABLE row ->
// MISSING, tries unchanged"; "A Backup on an existing row resets tries and un-exposes it").
#[tokio::test]
async fn restore_needs_expose_and_backup_again_resets_tries_and_exposure() {
    bounded(async {
        let dir = TestDir::new("expose");
        let node = Node::start(&dir).await;
        let user = username("expose");
        let mut connection = node.sdk_client(&user).connect().await.unwrap();

        connection.backup(&DATA, &PIN, 5).await.unwrap();
        let unexposed = TriesOutcome::Ok {
            tries: 5,
            exposed: false,
        };
        assert_eq!(tries(&mut connection).await, unexposed);
        // Before Expose, Restore answers MISSING for right and wrong PINs alike, and no
        // try is spent.
        for pin in [&PIN, &WRONG_PIN] {
            let outcome = connection.restore(pin).await.unwrap();
            assert!(matches!(outcome, RestoreOutcome::Missing), "{outcome:?}");
        }
        assert_eq!(tries(&mut connection).await, unexposed);

        // Expose with other data answers ERROR and exposes nothing.
        let other_data = [0xa5; 48];
        assert_eq!(
            connection.expose(&other_data).await.unwrap(),
            ExposeOutcome::Error
        );
        assert_eq!(tries(&mut connection).await, unexposed);

        assert_eq!(connection.expose(&DATA).await.unwrap(), ExposeOutcome::Ok);
        assert_eq!(
            tries(&mut connection).await,
            TriesOutcome::Ok {
                tries: 5,
                exposed: true
            }
        );
        let outcome = connection.restore(&WRONG_PIN).await.unwrap();
        assert!(
            matches!(outcome, RestoreOutcome::PinMismatch { tries_left: 4 }),
            "{outcome:?}"
        );
        match connection.restore(&PIN).await.unwrap() {
            RestoreOutcome::Ok { data, tries } => {
                assert_eq!(data.as_slice(), DATA.as_slice());
                assert_eq!(tries, 4, "a success does not reset tries");
            }
            other => panic!("expected OK, got {other:?}"),
        }

        // Backup again: tries back to max_tries, and the row is unexposed until Expose.
        connection.backup(&DATA, &PIN, 9).await.unwrap();
        assert_eq!(
            tries(&mut connection).await,
            TriesOutcome::Ok {
                tries: 9,
                exposed: false
            }
        );
        let outcome = connection.restore(&PIN).await.unwrap();
        assert!(matches!(outcome, RestoreOutcome::Missing), "{outcome:?}");

        // Expose on a user without a row answers ERROR.
        let mut stranger = node
            .sdk_client(&username("stranger"))
            .connect()
            .await
            .unwrap();
        assert_eq!(stranger.expose(&DATA).await.unwrap(), ExposeOutcome::Error);
        assert_eq!(tries(&mut stranger).await, TriesOutcome::Missing);
        stranger.close().await;
        connection.close().await;
    })
    .await;
}

/// Backs up and exposes `DATA` for `user` on a new connection.
async fn back_up(node: &Node, user: &str) {
    let mut connection = node.sdk_client(user).connect().await.unwrap();
    connection.backup(&DATA, &PIN, 10).await.unwrap();
    assert_eq!(connection.expose(&DATA).await.unwrap(), ExposeOutcome::Ok);
    connection.close().await;
}

async fn tries_for(node: &Node, user: &str) -> TriesOutcome {
    let mut connection = node.sdk_client(user).connect().await.unwrap();
    let outcome = tries(&mut connection).await;
    connection.close().await;
    outcome
}

// SVR2 client protocol: Delete ("zeroize and remove; idempotent") and Transport
// ("Host-initiated delete (account deletion): DELETE /v1/delete with the same Basic auth").
#[tokio::test]
async fn every_kind_of_delete_removes_the_backup_and_repeats_harmlessly() {
    bounded(async {
        let dir = TestDir::new("delete");
        let node = Node::start(&dir).await;

        // The SDK's Delete, twice on one connection.
        let user = username("sdk-delete");
        back_up(&node, &user).await;
        let mut connection = node.sdk_client(&user).connect().await.unwrap();
        connection.delete().await.unwrap();
        connection.delete().await.unwrap();
        assert_eq!(tries(&mut connection).await, TriesOutcome::Missing);
        connection.close().await;

        // The CLI's delete, twice.
        let secret_hex = "42".repeat(32);
        node.cli(
            "backup",
            "erin",
            &["--pin", "9876", "--secret-hex", &secret_hex],
        )
        .await
        .expect_code(0);
        for _ in 0..2 {
            let deleted = node.cli("delete", "erin", &["--json"]).await.expect_code(0);
            assert_eq!(deleted.json(), serde_json::json!({"status": "ok"}));
        }
        node.cli("tries", "erin", &[]).await.expect_code(4);

        // DELETE /v1/delete on the client listener, as the account service would.
        let user = username("host-delete");
        back_up(&node, &user).await;
        let refused = http(
            node.client_addr,
            "DELETE",
            "/v1/delete",
            &[("Authorization", &common::basic_header(&user, "1:00"))],
            "",
        )
        .await;
        assert_eq!(refused.status, 401, "{refused:?}");
        assert!(matches!(
            tries_for(&node, &user).await,
            TriesOutcome::Ok { tries: 10, .. }
        ));
        for _ in 0..2 {
            let auth = node.basic_auth(&user);
            let deleted = http(
                node.client_addr,
                "DELETE",
                "/v1/delete",
                &[("Authorization", &auth)],
                "",
            )
            .await;
            assert_eq!(deleted.status, 200, "{deleted:?}");
        }
        assert_eq!(tries_for(&node, &user).await, TriesOutcome::Missing);

        // POST /v1/delete-backup on the admin API.
        let user = username("admin-delete");
        back_up(&node, &user).await;
        let bad = http(
            node.admin_addr,
            "POST",
            "/v1/delete-backup",
            &[],
            r#"{"backup_id":"not hex"}"#,
        )
        .await;
        assert_eq!(bad.status, 400, "{bad:?}");
        assert!(matches!(
            tries_for(&node, &user).await,
            TriesOutcome::Ok { tries: 10, .. }
        ));
        let body = format!(r#"{{"backup_id":"{user}"}}"#);
        let deleted = http(node.admin_addr, "POST", "/v1/delete-backup", &[], &body).await;
        assert_eq!(deleted.status, 200, "{deleted:?}");
        assert_eq!(deleted.json(), serde_json::json!({"ok": true}));
        assert_eq!(tries_for(&node, &user).await, TriesOutcome::Missing);

        let metrics = http(node.admin_addr, "GET", "/metrics", &[], "").await;
        assert!(
            metrics
                .body
                .contains("cloister_host_backup_deletes_total 3"),
            "two host deletes and one admin delete: {}",
            metrics.body
        );
    })
    .await;
}

// SVR2 client protocol: Session (the static key comes from the attested evidence; sessions
// keep the key their handshake used).
#[tokio::test]
async fn key_rotation_keeps_open_sessions_and_attests_the_new_key() {
    bounded(async {
        let dir = TestDir::new("rotation");
        let node = Node::start(&dir).await;
        let user = username("rotation");
        let client = node.sdk_client(&user);
        let mut before = client.connect().await.unwrap();
        before.backup(&DATA, &PIN, 3).await.unwrap();
        assert_eq!(before.expose(&DATA).await.unwrap(), ExposeOutcome::Ok);
        let old_key = *before.enclave().public_key();

        let refreshed = http(node.admin_addr, "POST", "/v1/refresh-attestation", &[], "").await;
        assert_eq!(refreshed.status, 200, "{refreshed:?}");
        assert_eq!(refreshed.json(), serde_json::json!({"ok": true}));

        // The open session still works on the old key.
        assert_eq!(
            tries(&mut before).await,
            TriesOutcome::Ok {
                tries: 3,
                exposed: true
            }
        );
        match before.restore(&PIN).await.unwrap() {
            RestoreOutcome::Ok { data, tries } => {
                assert_eq!(data.as_slice(), DATA.as_slice());
                assert_eq!(tries, 3);
            }
            other => panic!("expected OK, got {other:?}"),
        }

        // A new session attests a different key and sees the same database.
        let mut after = client.connect().await.unwrap();
        assert_ne!(after.enclave().public_key(), &old_key);
        assert_eq!(after.group_id(), before.group_id());
        let outcome = after.restore(&WRONG_PIN).await.unwrap();
        assert!(
            matches!(outcome, RestoreOutcome::PinMismatch { tries_left: 2 }),
            "{outcome:?}"
        );
        assert!(matches!(
            after.restore(&PIN).await.unwrap(),
            RestoreOutcome::Ok { tries: 2, .. }
        ));
        // And the old session sees the new session's write.
        assert_eq!(
            tries(&mut before).await,
            TriesOutcome::Ok {
                tries: 2,
                exposed: true
            }
        );
        let metrics = node.admin_json("/v1/metrics/enclave").await;
        assert_eq!(metrics["counters"]["attestation_refreshes"], 1, "{metrics}");
        before.close().await;
        after.close().await;
    })
    .await;
}
