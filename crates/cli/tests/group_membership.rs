//! Membership of a group of real `cloister node --simulated` processes: a crashed replica's
//! place is taken by a fresh process that loads the state by streaming; healing removes the
//! dead member; `admin remove` takes a live replica out, and it (or a fresh process) can
//! join again.

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use cloister_client::{RestoreOutcome, TriesOutcome};
use common::group::{Group, bounded_group};
use common::{try_http, username};

const PIN: [u8; 32] = [0x61; 32];
const WRONG_PIN: [u8; 32] = [0x62; 32];
const MAX_TRIES: u32 = 10;
/// Short healing timeouts (seconds of silence): demote a dead voter after 3 s, remove it
/// after 6 s.
const QUICK_HEALING: &str = r#"{"voting_timeout_secs": 3, "membership_timeout_secs": 6}"#;

fn data(index: usize) -> [u8; 48] {
    let mut data = [0u8; 48];
    data[..8].copy_from_slice(&(index as u64).to_be_bytes());
    data[8..].fill(0x77);
    data
}

fn tries(tries: u32) -> TriesOutcome {
    TriesOutcome::Ok {
        tries,
        exposed: true,
    }
}

async fn expect_wrong_guess(group: &Group, via: usize, user: &str, tries_left: u32) {
    let outcome = group.restore(via, user, &WRONG_PIN).await;
    assert!(
        matches!(outcome, RestoreOutcome::PinMismatch { tries_left: left } if left == tries_left),
        "replica {via}: {outcome:?}, expected {tries_left} tries left"
    );
}

async fn expect_restored(group: &Group, via: usize, user: &str, index: usize, tries_left: u32) {
    match group.restore(via, user, &PIN).await {
        RestoreOutcome::Ok {
            data: restored,
            tries,
        } => {
            assert_eq!(*restored, data(index), "replica {via}, user {index}");
            assert_eq!(tries, tries_left, "replica {via}, user {index}");
        }
        other => panic!("replica {via}, user {index}: {other:?}"),
    }
}

// Replica groups: joining (streaming state to a new replica), healing (removing silent
// members).
#[tokio::test]
async fn crashed_replica_rejoins_by_streaming() {
    bounded_group(async {
        let mut group = Group::start_configured("rejoin", 3, Some(QUICK_HEALING)).await;
        let all = [0, 1, 2];
        let leader = group.wait_leader(&all).await;
        let followers: Vec<usize> = all.into_iter().filter(|i| *i != leader).collect();
        let (victim, survivor) = (followers[0], followers[1]);
        let victim_id = group.view(victim).await.raft_id;

        // Backups through every replica, and a wrong guess through the victim for some.
        let users: Vec<String> = (0..40)
            .map(|index| username(&format!("rejoin-{index}")))
            .collect();
        for (index, user) in users[..20].iter().enumerate() {
            group
                .back_up(all[index % 3], user, &data(index), &PIN, MAX_TRIES)
                .await;
        }
        for user in &users[..5] {
            expect_wrong_guess(&group, victim, user, MAX_TRIES - 1).await;
        }
        group.wait_converged(&all).await;

        // The victim dies; the two others keep taking writes.
        group.kill(victim);
        let live = [leader, survivor];
        for (index, user) in users.iter().enumerate().skip(20) {
            group
                .back_up(live[index % 2], user, &data(index), &PIN, MAX_TRIES)
                .await;
        }
        for user in &users[..5] {
            expect_wrong_guess(&group, survivor, user, MAX_TRIES - 2).await;
        }

        // A fresh process: empty memory, no group, until it joins through a follower's
        // peer address and streams the state.
        let fresh = group.spawn().await;
        let empty = group.view(fresh).await;
        assert!(!empty.in_group, "{}", empty.json);
        assert_eq!(empty.backups, 0);
        group.join(fresh, survivor).await;
        let members = [leader, survivor, fresh];
        group.wait_converged(&members).await;
        assert_eq!(group.view(fresh).await.backups, 40);

        // The newcomer serves what was written before and after the crash.
        for (index, user) in users.iter().enumerate() {
            let expected = if index < 5 { MAX_TRIES - 2 } else { MAX_TRIES };
            assert_eq!(
                group.tries(fresh, user).await,
                tries(expected),
                "user {index}"
            );
        }
        expect_restored(&group, fresh, &users[0], 0, MAX_TRIES - 2).await;
        expect_restored(&group, fresh, &users[25], 25, MAX_TRIES).await;
        expect_wrong_guess(&group, fresh, &users[30], MAX_TRIES - 1).await;

        // Healing: the leader demotes the silent voter, then removes it.
        let fresh_id = group.view(fresh).await.raft_id;
        let leader = group.wait_leader(&members).await;
        let healed = group
            .wait_view(leader, "the dead member removed, the rest voting", |view| {
                !view.lists(victim_id)
                    && view.members.len() == 3
                    && view.members.iter().all(|(_, voting)| *voting)
            })
            .await;
        assert!(healed.lists_voter(fresh_id), "{}", healed.json);

        // And the healed group keeps serving.
        let late = username("rejoin-late");
        group
            .back_up(fresh, &late, &data(99), &PIN, MAX_TRIES)
            .await;
        expect_restored(&group, survivor, &late, 99, MAX_TRIES).await;
        group.wait_converged(&members).await;
        for index in members {
            assert_eq!(group.view(index).await.backups, 41, "replica {index}");
        }
    })
    .await;
}

// Replica groups: RaftRemovalRequest (`admin remove`), and joining again afterwards.
#[tokio::test]
async fn removal_and_readding() {
    bounded_group(async {
        let mut group = Group::start("readd", 3).await;
        let all = [0, 1, 2];
        let leader = group.wait_leader(&all).await;
        let followers: Vec<usize> = all.into_iter().filter(|i| *i != leader).collect();
        let (leaving, staying) = (followers[0], followers[1]);
        let user = username("readd");
        group
            .back_up(leaving, &user, &data(1), &PIN, MAX_TRIES)
            .await;
        let removed_id = group.view(leaving).await.raft_id;

        let removed = group.admin(leaving, "remove", &["--json"]).await;
        assert_eq!(removed.expect_code(0).json()["ok"], true);
        for index in [leader, staying] {
            group
                .wait_view(index, "the removed replica gone", |view| {
                    !view.lists(removed_id) && view.members.len() == 2
                })
                .await;
        }

        // The removed replica drops the group and its data, says it is not ready, and
        // serves no client (it has nothing current to serve).
        let gone = group
            .wait_view(leaving, "out of the group", |view| !view.in_group)
            .await;
        assert_eq!(gone.backups, 0, "{}", gone.json);
        assert!(gone.members.is_empty(), "{}", gone.json);
        let ready = try_http(
            group.node(leaving).admin_addr,
            "GET",
            "/health/ready",
            &[],
            "",
        )
        .await
        .unwrap();
        assert_eq!(ready.status, 503, "{ready:?}");
        let client = group.client(leaving, &user, Duration::from_secs(10));
        let answer = match client.connect().await {
            Ok(mut connection) => connection.tries().await,
            Err(error) => Err(error),
        };
        assert!(answer.is_err(), "a removed replica answered {answer:?}");

        // The two left keep serving.
        assert_eq!(group.tries(staying, &user).await, tries(MAX_TRIES));
        expect_wrong_guess(&group, leader, &user, MAX_TRIES - 1).await;

        // The same process joins again (it keeps its peer key, so its Raft id).
        group.join(leaving, staying).await;
        let rejoined_id = group.view(leaving).await.raft_id;
        group
            .wait_view(leader, "the rejoined replica a voter", |view| {
                view.lists_voter(rejoined_id) && view.members.len() == 3
            })
            .await;
        group.wait_converged(&all).await;
        assert_eq!(group.tries(leaving, &user).await, tries(MAX_TRIES - 1));

        // Out again, and stopped; a fresh process takes its place.
        group.admin(leaving, "remove", &[]).await.expect_code(0);
        group
            .wait_view(leader, "removed again", |view| {
                !view.lists(rejoined_id) && view.members.len() == 2
            })
            .await;
        group.kill(leaving);
        let fresh = group.spawn().await;
        group.join(fresh, leader).await;
        let fresh_id = group.view(fresh).await.raft_id;
        group
            .wait_view(leader, "the fresh replica a voter", |view| {
                view.lists_voter(fresh_id) && view.members.len() == 3
            })
            .await;
        let members = [leader, staying, fresh];
        group.wait_converged(&members).await;
        expect_restored(&group, fresh, &user, 1, MAX_TRIES - 1).await;
    })
    .await;
}
