//! Replication across replicas in one process: raft messages routed by hand.

use cloister_proto::attest::GroupConfig;
use raft::eraftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2, MessageType};

use super::*;

fn group() -> GroupConfig {
    GroupConfig {
        group_id: 7,
        simulated: true,
        min_voting_replicas: 1,
        max_voting_replicas: 5,
        election_ticks: 10,
        heartbeat_ticks: 1,
        log_bytes_max: 1 << 20,
        attestation_timeout_secs: 60,
        client_pq: false,
        db_version: 2,
        voting_timeout_secs: 60,
        membership_timeout_secs: 600,
    }
}

fn change(kind: ConfChangeType, node_id: u64) -> ConfChangeV2 {
    let mut single = ConfChangeSingle::default();
    single.set_change_type(kind);
    single.node_id = node_id;
    let mut change = ConfChangeV2::default();
    change.set_changes(vec![single].into());
    change
}

/// Replicas by raft id, and what each applied.
struct Cluster {
    replicas: Vec<(u64, Replication)>,
    applied: Vec<Vec<(u64, Vec<u8>)>>,
}

impl Cluster {
    fn replica(&mut self, id: u64) -> &mut Replication {
        &mut self
            .replicas
            .iter_mut()
            .find(|(raft_id, _)| *raft_id == id)
            .unwrap()
            .1
    }

    /// Run every replica's ready loop and deliver messages until nothing moves.
    fn settle(&mut self) {
        for _ in 0..100 {
            let mut messages = Vec::new();
            for (position, (_, replica)) in self.replicas.iter_mut().enumerate() {
                while replica.has_ready() {
                    let progress = replica.ready();
                    for committed in progress.committed {
                        if committed.is_normal {
                            if !committed.data.is_empty() {
                                self.applied[position].push((committed.index, committed.data));
                            }
                        } else {
                            let _ = replica.apply_conf_change(&committed.data).unwrap();
                        }
                    }
                    replica.advance_apply();
                    messages.extend(progress.messages);
                }
            }
            if messages.is_empty() {
                return;
            }
            for message in messages {
                let bytes = Replication::encode_message(&message);
                if let Some((_, target)) =
                    self.replicas.iter_mut().find(|(id, _)| *id == message.to)
                {
                    target.step(message.from, &bytes).unwrap();
                }
            }
        }
        panic!("the cluster did not settle");
    }
}

#[test]
fn a_loaded_learner_replicates_and_a_promoted_voter_counts_for_quorum() {
    let mut leader = Replication::create(1, &group()).unwrap();
    let mut cluster = Cluster {
        replicas: Vec::new(),
        applied: vec![Vec::new(), Vec::new()],
    };
    while leader.has_ready() {
        leader.ready();
        leader.advance_apply();
    }
    cluster.replicas.push((1, leader));
    cluster.replica(1).propose(b"before".to_vec()).unwrap();
    cluster.settle();
    // Join: the learner is added, then starts from the leader's applied state.
    cluster
        .replica(1)
        .propose_conf_change(change(ConfChangeType::AddLearnerNode, 2))
        .unwrap();
    cluster.settle();
    let (applied, term) = (
        cluster.replica(1).applied_index(),
        cluster.replica(1).term(),
    );
    let conf_state = cluster.replica(1).conf_state();
    assert_eq!(conf_state.learners, vec![2]);
    let learner = Replication::load(2, &group(), applied, term, conf_state).unwrap();
    cluster.replicas.push((2, learner));
    cluster.replica(1).propose(b"after".to_vec()).unwrap();
    // Messages sent while the learner did not exist yet were lost; heartbeats recover.
    for _ in 0..3 {
        cluster.replica(1).tick();
        cluster.settle();
    }
    assert_eq!(
        cluster.applied[1].last().map(|(_, data)| data.as_slice()),
        Some(&b"after"[..])
    );
    assert_eq!(
        cluster.replica(2).commit_index(),
        cluster.replica(1).commit_index()
    );

    cluster
        .replica(1)
        .propose_conf_change(change(ConfChangeType::AddNode, 2))
        .unwrap();
    cluster.settle();
    assert_eq!(
        cluster.replica(1).members(),
        vec![
            (1, true, cluster.replica(1).commit_index()),
            (2, true, cluster.replica(1).commit_index())
        ]
    );
    // With two voters, an entry commits only once both have it: hold back the follower.
    let held = cluster.replicas.pop().unwrap();
    let (index, _) = cluster.replica(1).propose(b"needs both".to_vec()).unwrap();
    cluster.settle();
    assert!(cluster.replica(1).commit_index() < index);
    cluster.replicas.push(held);
    // The leader resends on its next heartbeat.
    for _ in 0..3 {
        cluster.replica(1).tick();
        cluster.settle();
    }
    assert!(cluster.replica(1).commit_index() >= index);
    // The learner applied exactly the leader's entries from the point it loaded.
    let skipped = cluster.applied[0].len() - cluster.applied[1].len();
    assert_eq!(cluster.applied[0][skipped..], cluster.applied[1][..]);
    assert_eq!(cluster.applied[1].len(), 2);
}

#[test]
fn step_refuses_local_types_other_targets_and_garbage() {
    let mut replica = Replication::create(1, &group()).unwrap();
    let term = replica.term();
    let mut message = raft::eraftpb::Message {
        to: 1,
        from: 2,
        ..Default::default()
    };
    for local in [
        MessageType::MsgHup,
        MessageType::MsgBeat,
        MessageType::MsgPropose,
        MessageType::MsgSnapStatus,
    ] {
        message.set_msg_type(local);
        assert!(matches!(
            replica.step(2, &Replication::encode_message(&message)),
            Err(Error::InvalidArgument(_))
        ));
    }
    message.set_msg_type(MessageType::MsgHeartbeat);
    message.to = 3;
    assert!(
        replica
            .step(2, &Replication::encode_message(&message))
            .is_err()
    );
    assert!(replica.step(2, &[0xff, 0xff, 0xff]).is_err());
    assert_eq!(replica.term(), term, "refused messages change nothing");
}

#[test]
fn storage_never_offers_a_snapshot() {
    let storage = EnclaveStorage::new(raft::eraftpb::ConfState::from((vec![1], vec![])));
    assert!(matches!(
        raft::Storage::snapshot(&storage, 0, 2),
        Err(raft::Error::Store(
            raft::StorageError::SnapshotTemporarilyUnavailable
        ))
    ));
}

// Raft §5.3: after a rejection the leader backs up to the follower's last matching entry and
// names its term. The leader must keep that entry when it compacts what the others applied.
#[test]
fn a_follower_that_missed_entries_the_others_applied_catches_up() {
    let mut leader = Replication::create(1, &group()).unwrap();
    while leader.has_ready() {
        leader.ready();
        leader.advance_apply();
    }
    let mut cluster = Cluster {
        replicas: vec![(1, leader)],
        applied: vec![Vec::new(); 3],
    };
    for id in [2, 3] {
        let leader = cluster.replica(1);
        leader
            .propose_conf_change(change(ConfChangeType::AddLearnerNode, id))
            .unwrap();
        cluster.settle();
        let leader = cluster.replica(1);
        let (applied, term, conf_state) =
            (leader.applied_index(), leader.term(), leader.conf_state());
        let learner = Replication::load(id, &group(), applied, term, conf_state).unwrap();
        cluster.replicas.push((id, learner));
        for _ in 0..3 {
            cluster.replica(1).tick();
            cluster.settle();
        }
        let voter = change(ConfChangeType::AddNode, id);
        cluster.replica(1).propose_conf_change(voter).unwrap();
        cluster.settle();
    }
    cluster.replica(1).propose(b"all three".to_vec()).unwrap();
    cluster.settle();
    let matched = cluster.replica(1).members()[2].2;
    assert_eq!(matched, cluster.replica(1).commit_index());
    // Replica 3 misses two entries (its appends are lost); 1 and 2 commit and apply them.
    let held = cluster.replicas.pop().unwrap();
    cluster.replica(1).propose(b"missed 1".to_vec()).unwrap();
    cluster.replica(1).propose(b"missed 2".to_vec()).unwrap();
    cluster.settle();
    let commit = cluster.replica(1).commit_index();
    assert_eq!(commit, matched + 2);
    assert!(
        cluster.replica(1).first_index() <= matched,
        "its last entry is kept"
    );
    cluster.replicas.push(held);
    // Heartbeats: the next append from beyond its log is rejected, then the leader backs up.
    for _ in 0..3 {
        cluster.replica(1).tick();
        cluster.settle();
    }
    assert_eq!(cluster.replica(3).commit_index(), commit);
    assert_eq!(
        cluster.applied[2], cluster.applied[1],
        "the same entries, in order"
    );
    // What every member holds is dropped in chunks, never more than a chunk kept.
    assert!(commit - cluster.replica(1).first_index() < COMPACT_ENTRIES_MIN);
}

#[test]
fn the_applied_tail_is_trimmed_in_chunks_not_one_entry_per_apply() {
    let mut config = group();
    config.log_bytes_max = 64 * 1024;
    let mut leader = Replication::create(1, &config).unwrap();
    let settle = |leader: &mut Replication| {
        while leader.has_ready() {
            leader.ready();
            leader.advance_apply();
        }
    };
    settle(&mut leader);
    let half = config.log_bytes_max / 2;
    let mut trims = 0;
    let mut first = leader.first_index();
    for _ in 0..400 {
        leader.propose(vec![7; 1000]).unwrap();
        settle(&mut leader);
        assert!(
            leader.log_bytes() <= half,
            "{} bytes held",
            leader.log_bytes()
        );
        if leader.first_index() != first {
            trims += 1;
            // A trim takes the tail down to three eighths of the cap, not just under half.
            assert!(leader.log_bytes() <= half - half / 4 + 1000);
            first = leader.first_index();
        }
    }
    // 400 KB through a 32 KB tail: a trim every eighth of the cap, about 50, not 370.
    assert!((30..=60).contains(&trims), "{trims} trims");
}
