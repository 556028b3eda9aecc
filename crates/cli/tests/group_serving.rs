//! A three-replica group of real `cloister node --simulated` processes serving clients from
//! every replica: writes through followers are forwarded to the leader, every replica
//! answers from the same log, and a leadership hand-over fails no client request.

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cloister_client::{Error, RestoreOutcome, TriesOutcome};
use common::group::{Group, POLL_INTERVAL, SETTLE_TIMEOUT, bounded_group};
use common::username;

const SECRET_HEX: &str = "c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc";
const DATA: [u8; 48] = [0x3c; 48];
const PIN: [u8; 32] = [0x51; 32];

// Replica groups: serving clients from any replica (followers forward writes to the leader).
#[tokio::test]
async fn group_forms_and_followers_serve() {
    bounded_group(async {
        let group = Group::start("forms", 3).await;
        let all = [0, 1, 2];
        let leader = group.wait_leader(&all).await;
        let followers: Vec<usize> = all.into_iter().filter(|index| *index != leader).collect();
        let (first, second) = (followers[0], followers[1]);

        // One group: same id everywhere, every replica a voter, one leader.
        let views = [
            group.view(0).await,
            group.view(1).await,
            group.view(2).await,
        ];
        let group_id = &views[0].json["group_config"]["group_id"];
        for view in &views {
            assert!(view.in_group, "{}", view.json);
            assert_eq!(&view.json["group_config"]["group_id"], group_id);
            assert_eq!(view.members.len(), 3, "{}", view.json);
            assert!(view.members.iter().all(|(_, voting)| *voting));
        }
        let status = group.admin(first, "status", &["--json"]).await;
        assert_eq!(status.expect_code(0).json()["role"], "follower");

        // The CLI as a user runs it: backup through one follower ...
        let user = format!("group-forms-{}", std::process::id());
        let backed_up = group
            .node(first)
            .cli(
                "backup",
                &user,
                &[
                    "--pin",
                    "2468",
                    "--secret-hex",
                    SECRET_HEX,
                    "--max-tries",
                    "5",
                    "--json",
                ],
            )
            .await
            .expect_code(0);
        assert_eq!(backed_up.json()["tries"], 5, "{backed_up:?}");
        // ... restore through the other follower ...
        let restored = group
            .node(second)
            .cli("restore", &user, &["--pin", "2468", "--json"])
            .await
            .expect_code(0);
        assert_eq!(
            restored.json(),
            serde_json::json!({"status": "ok", "secret_hex": SECRET_HEX, "tries": 5})
        );
        // ... and a wrong PIN through the leader.
        let wrong = group
            .node(leader)
            .cli("restore", &user, &["--pin", "1357", "--json"])
            .await
            .expect_code(3);
        assert_eq!(
            wrong.json(),
            serde_json::json!({"status": "pin_mismatch", "tries": 4})
        );
        // Every replica answers Tries from the same log.
        for index in all {
            let tries = group
                .node(index)
                .cli("tries", &user, &["--json"])
                .await
                .expect_code(0);
            assert_eq!(
                tries.json(),
                serde_json::json!({"status": "ok", "tries": 4, "exposed": true}),
                "replica {index}"
            );
        }
        group
            .node(second)
            .cli("tries", &format!("{user}-nobody"), &[])
            .await
            .expect_code(4);

        // The databases are identical, and `admin hashes` says so too.
        let hash = group.wait_converged(&all).await;
        for index in all {
            let hashes = group.admin(index, "hashes", &["--json"]).await;
            let hashes = hashes.expect_code(0).json();
            assert_eq!(hashes["db_hash"], hash.as_str(), "replica {index}");
            assert_eq!(hashes["applied_index"], hashes["commit_index"]);
        }
        for index in all {
            assert_eq!(group.view(index).await.backups, 1, "replica {index}");
        }
    })
    .await;
}

/// What the client loop saw.
#[derive(Default)]
struct LoopCounts {
    ok: AtomicU64,
    unavailable: AtomicU64,
    ok_after_handover: AtomicU64,
}

// Replica groups: relinquishing leadership hands over without failing client requests
// (at most a retryable 4014, which guarantees nothing changed).
#[tokio::test]
async fn relinquish_hands_over_without_failed_requests() {
    bounded_group(async {
        let group = Arc::new(Group::start("relinquish", 3).await);
        let all = [0, 1, 2];
        let old_leader = group.wait_leader(&all).await;
        let old_term = group.view(old_leader).await.term;
        let follower = all.into_iter().find(|index| *index != old_leader).unwrap();
        let user = username("relinquish");
        group.back_up(follower, &user, &DATA, &PIN, 10).await;

        let counts = Arc::new(LoopCounts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let handed_over = Arc::new(AtomicBool::new(false));
        let client_loop = tokio::spawn({
            let (group, user) = (group.clone(), user.clone());
            let (counts, stop, handed_over) = (counts.clone(), stop.clone(), handed_over.clone());
            async move {
                let client = group.client(follower, &user, Duration::from_secs(20));
                let mut failures: Vec<String> = Vec::new();
                let mut connection = None;
                let mut round = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if connection.is_none() {
                        match client.connect().await {
                            Ok(open) => connection = Some(open),
                            Err(error) => {
                                failures.push(format!("connect: {error}"));
                                tokio::time::sleep(POLL_INTERVAL).await;
                                continue;
                            }
                        }
                    }
                    let open = connection.as_mut().unwrap();
                    round += 1;
                    let result = if round % 2 == 0 {
                        open.tries().await.map(|outcome| {
                            let expected = TriesOutcome::Ok {
                                tries: 10,
                                exposed: true,
                            };
                            (outcome != expected).then(|| format!("tries: {outcome:?}"))
                        })
                    } else {
                        open.restore(&PIN).await.map(|outcome| match outcome {
                            RestoreOutcome::Ok { data, tries: 10 } if *data == DATA => None,
                            other => Some(format!("restore: {other:?}")),
                        })
                    };
                    match result {
                        Ok(None) => {
                            counts.ok.fetch_add(1, Ordering::Relaxed);
                            if handed_over.load(Ordering::Relaxed) {
                                counts.ok_after_handover.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Ok(Some(wrong)) => failures.push(wrong),
                        Err(Error::Unavailable { .. }) => {
                            counts.unavailable.fetch_add(1, Ordering::Relaxed);
                            connection = None;
                        }
                        Err(error) => {
                            failures.push(format!("request: {error}"));
                            connection = None;
                        }
                    }
                }
                if let Some(open) = connection {
                    open.close().await;
                }
                failures
            }
        });

        // Let the loop run, then hand leadership over.
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while counts.ok.load(Ordering::Relaxed) < 20 {
            assert!(
                Instant::now() < deadline,
                "the client loop makes no progress"
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        let started = Instant::now();
        group
            .admin(old_leader, "relinquish", &["--json"])
            .await
            .expect_code(0);
        let new_leader = loop {
            let leader = group.wait_leader(&all).await;
            if leader != old_leader {
                break leader;
            }
            assert!(
                started.elapsed() < SETTLE_TIMEOUT,
                "replica {old_leader} is still leader after relinquishing"
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        };
        let handover = started.elapsed();
        handed_over.store(true, Ordering::Relaxed);
        assert!(group.view(new_leader).await.term > old_term);
        assert_eq!(group.view(old_leader).await.role, "follower");

        // Keep the loop going under the new leader for a while.
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while counts.ok_after_handover.load(Ordering::Relaxed) < 20 {
            assert!(Instant::now() < deadline, "no progress after the hand-over");
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        stop.store(true, Ordering::Relaxed);
        let failures = client_loop.await.unwrap();
        let (ok, unavailable) = (
            counts.ok.load(Ordering::Relaxed),
            counts.unavailable.load(Ordering::Relaxed),
        );
        println!(
            "relinquish: leader {old_leader} -> {new_leader} in {handover:?}; client loop: \
             {ok} ok, {unavailable} unavailable (4014), {} other failures",
            failures.len()
        );
        assert!(
            failures.is_empty(),
            "requests failed other than with 4014: {failures:?}"
        );
        assert_eq!(
            group.tries(new_leader, &user).await,
            TriesOutcome::Ok {
                tries: 10,
                exposed: true
            }
        );
        group.wait_converged(&all).await;
    })
    .await;
}
