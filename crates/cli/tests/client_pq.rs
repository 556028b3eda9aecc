//! A group created with `cloister admin create-group --client-pq` (SVR2's `client_pq`):
//! its attestation says so, the CLI and the SDK back up and restore over the post-quantum
//! handshake (Noise NKhfs with ML-KEM-1024) on every replica, including one that joined
//! later, and a client that tries NK is closed with 4003.

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cloister_client::{ClientHandshake, TriesOutcome};
use common::group::{Group, bounded_group};
use common::username;
use common::ws::{close_code, connect_as, read_binary, send_binary};

const SECRET_HEX: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

// SVR2 client protocol: Session 3, "with the group's client_pq option".
#[tokio::test]
async fn a_client_pq_group_backs_up_and_restores_over_the_post_quantum_handshake() {
    bounded_group(async {
        let mut group = Group::new("client-pq");
        group.spawn().await;
        group.spawn().await;
        let created = group
            .admin(0, "create-group", &["--client-pq", "--json"])
            .await
            .expect_code(0);
        assert_eq!(
            created.json()["group_config"]["client_pq"],
            true,
            "{created:?}"
        );
        group.join(1, 0).await;
        group.wait_leader(&[0, 1]).await;
        group.wait_converged(&[0, 1]).await;

        // The user commands, as a person would run them, on two replicas.
        let backed_up = group
            .node(0)
            .cli(
                "backup",
                "alice",
                &["--pin", "2468", "--secret-hex", SECRET_HEX],
            )
            .await
            .expect_code(0);
        assert!(
            backed_up.stdout.contains("backed up a secret for alice"),
            "{backed_up:?}"
        );
        let restored = group
            .node(1)
            .cli("restore", "alice", &["--pin", "2468"])
            .await
            .expect_code(0);
        assert_eq!(restored.stdout.trim(), SECRET_HEX);

        // The SDK picked the pattern from the attested config, on the joined replica too.
        for index in 0..2 {
            let client = group.node(index).sdk_client(&username("pq-sdk"));
            let mut connection = client.connect().await.unwrap();
            assert_eq!(
                connection.enclave().handshake(),
                ClientHandshake::PostQuantum
            );
            assert!(connection.enclave().attestation().group_config().client_pq);
            assert_eq!(connection.tries().await.unwrap(), TriesOutcome::Missing);
            connection.close().await;
        }

        // A client that ignores the option and sends NK's 48-byte message 1 is refused.
        let mut socket = connect_as(group.node(0), &username("pq-nk")).await;
        let _handshake_start = read_binary(&mut socket).await;
        send_binary(&mut socket, vec![0; 48]).await;
        assert_eq!(close_code(&mut socket).await, 4003);
    })
    .await;
}
