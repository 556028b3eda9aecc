//! Minimums on a group of real `cloister node --simulated` processes, through
//! `cloister admin update-minimums`: refused on a follower and when the leader's own
//! attested version is below; once raised, every replica's status shows them.

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::group::{Group, bounded_group};

/// The minimums replica `index`'s status shows.
async fn minimums(group: &Group, index: usize) -> serde_json::Value {
    let status = group
        .admin(index, "status", &["--json"])
        .await
        .expect_code(0);
    status.json()["minimum_limits"].clone()
}

#[tokio::test]
async fn update_minimums_raises_them_on_every_replica_through_the_leader_only() {
    bounded_group(async {
        let group = Group::start("minimums", 2).await;
        let leader = group.wait_leader(&[0, 1]).await;
        let follower = 1 - leader;

        let refused = group
            .admin(
                follower,
                "update-minimums",
                &["--set", "sim.security_version=00"],
            )
            .await;
        assert_ne!(refused.code, 0, "{refused:?}");
        assert!(refused.stderr.contains("not the leader"), "{refused:?}");

        // The simulated nodes attest version 0: a minimum of 1 would shut the leader out.
        let refused = group
            .admin(
                leader,
                "update-minimums",
                &["--set", "sim.security_version=01"],
            )
            .await;
        assert_ne!(refused.code, 0, "{refused:?}");
        assert!(refused.stderr.contains("would not meet"), "{refused:?}");
        assert_eq!(minimums(&group, leader).await, serde_json::json!({}));

        let raised = group
            .admin(
                leader,
                "update-minimums",
                &["--set", "sim.security_version=00", "--json"],
            )
            .await
            .expect_code(0);
        assert_eq!(raised.json()["ok"], true, "{raised:?}");
        let expected = serde_json::json!({ "sim.security_version": "00" });
        for index in [leader, follower] {
            let deadline = Instant::now() + Duration::from_secs(10);
            while minimums(&group, index).await != expected {
                assert!(
                    Instant::now() < deadline,
                    "replica {index} never applied them"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    })
    .await;
}
