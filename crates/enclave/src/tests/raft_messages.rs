//! What a write costs in peer messages: a host batch's entries travel to each follower in one
//! append, and the commit that follows is announced once, not once per advance.

use cloister_proto::enclave::{
    ExistingClientRequest, host_to_enclave_request::Inner as Call,
    host_to_enclave_response::Inner as Answer,
};
use prost::Message;

use super::cluster::{Cluster, backup, db_hashes};

/// Frames `from` sent to `to` since `mark` (an index into `Cluster::delivered`).
fn frames_between(cluster: &Cluster, mark: usize, from: usize, to: usize) -> usize {
    cluster.delivered[mark..]
        .iter()
        .filter(|(sender, receiver, _)| *sender == from && *receiver == to)
        .count()
}

#[test]
fn one_host_batch_costs_each_follower_one_append_and_one_commit_announcement() {
    let mut cluster = Cluster::group(3, 80);
    cluster.tick(2);
    let leader = cluster.leader().unwrap();
    let followers: Vec<usize> = (0..3).filter(|node| *node != leader).collect();
    const WRITES: u8 = 8;
    let mut clients: Vec<_> = (0..WRITES)
        .map(|index| cluster.connect(leader, [0x80 + index; 16]))
        .collect();
    let mark = cluster.delivered.len();
    // One host batch: every request handed to the core before anything is polled.
    let mut request_ids = Vec::new();
    for (index, client) in clients.iter_mut().enumerate() {
        let frame = client.encrypt(&backup(&[index as u8; 48], &[1; 32]).encode_to_vec());
        request_ids.push(
            cluster.nodes[leader].send(Call::ExistingClient(ExistingClientRequest {
                client_id: client.client_id,
                data: frame,
            })),
        );
    }
    cluster.settle();
    for follower in &followers {
        // Without batching: 8 appends; with raft-rs's own commit broadcast: one more per
        // advance of the commit index.
        assert_eq!(
            frames_between(&cluster, mark, leader, *follower),
            2,
            "leader -> follower {follower}: one append with all entries, one commit"
        );
        assert_eq!(frames_between(&cluster, mark, *follower, leader), 2);
    }
    // Every write was answered, and the followers learnt the commit: they applied it all.
    let answered = cluster.answered(leader, &request_ids);
    assert!(
        answered
            .iter()
            .all(|answer| matches!(answer, Answer::ExistingClient(_))),
        "{answered:?}"
    );
    let hashes = db_hashes(&mut cluster);
    assert!(
        hashes.windows(2).all(|pair| pair[0] == pair[1]),
        "{hashes:?}"
    );
}

#[test]
fn a_commit_overtaken_by_new_entries_rides_on_their_append() {
    let mut cluster = Cluster::group(3, 81);
    cluster.tick(2);
    let leader = cluster.leader().unwrap();
    let followers: Vec<usize> = (0..3).filter(|node| *node != leader).collect();
    let mut first = cluster.connect(leader, [0x90; 16]);
    let mut second = cluster.connect(leader, [0x91; 16]);
    let mark = cluster.delivered.len();
    let frame = first.encrypt(&backup(&[1; 48], &[1; 32]).encode_to_vec());
    let first_id = cluster.nodes[leader].send(Call::ExistingClient(ExistingClientRequest {
        client_id: first.client_id,
        data: frame,
    }));
    // The first entry reaches the followers; their acknowledgements wait in the network
    // while a second write arrives at the leader.
    let appends = cluster.take_frames_from(leader);
    let mut acknowledgements = Vec::new();
    for (to, data) in appends {
        cluster.deliver(leader, to, data);
        for (back_to, reply) in cluster.take_frames_from(to) {
            acknowledgements.push((to, back_to, reply));
        }
    }
    let frame = second.encrypt(&backup(&[2; 48], &[1; 32]).encode_to_vec());
    let second_id = cluster.nodes[leader].send(Call::ExistingClient(ExistingClientRequest {
        client_id: second.client_id,
        data: frame,
    }));
    for (to, data) in cluster.take_frames_from(leader) {
        cluster.deliver(leader, to, data);
    }
    for (from, to, data) in acknowledgements {
        cluster.deliver(from, to, data);
    }
    cluster.settle();
    for follower in &followers {
        // Append 1, append 2 (which carries commit 1 or is followed by it in one message),
        // then the announcement of commit 2: never one message per commit advance.
        let sent = frames_between(&cluster, mark, leader, *follower);
        assert!(sent <= 3, "leader -> follower {follower}: {sent} frames");
    }
    let answered = cluster.answered(leader, &[first_id, second_id]);
    assert_eq!(answered.len(), 2);
    let hashes = db_hashes(&mut cluster);
    assert!(
        hashes.windows(2).all(|pair| pair[0] == pair[1]),
        "{hashes:?}"
    );
}
