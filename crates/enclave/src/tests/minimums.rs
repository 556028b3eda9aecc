//! Minimums through the door: raised on the leader, applied everywhere, bound into evidence,
//! enforced on peers (connected ones before proposing, new ones at the handshake), and
//! handed to joiners with the replicated state.

use cloister_attest::{Policy, sim, verify};
use cloister_proto::attest::MinimumLimits;
use cloister_proto::enclave::{
    ErrorCode, JoinRaftRequest, NewClientRequest, PingPeerRequest, UpdateMinimumsRequest,
    host_to_enclave_request::Inner as Call, host_to_enclave_response::Inner as Answer,
};

use super::cluster::{Cluster, backup};
use super::harness::Harness;

const SVN: &str = "sim.security_version";

fn limits(pairs: &[(&str, &[u8])]) -> MinimumLimits {
    MinimumLimits {
        limits: pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_vec()))
            .collect(),
    }
}

fn update(cluster: &mut Cluster, node: usize, limits: MinimumLimits) -> Answer {
    cluster.call(
        node,
        Call::UpdateMinimums(UpdateMinimumsRequest {
            limits: Some(limits),
        }),
    )
}

fn refusal(answer: Answer) -> (ErrorCode, String) {
    match answer {
        Answer::Error(error) => (error.code(), error.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The minimums `node`'s status shows (empty when none).
fn status_minimums(cluster: &mut Cluster, node: usize) -> MinimumLimits {
    cluster.status(node).minimum_limits.unwrap_or_default()
}

/// The minimums a new client of `node` sees in the verified evidence.
fn client_sees(cluster: &mut Cluster, node: usize) -> Option<MinimumLimits> {
    let Answer::NewClient(reply) = cluster.call(
        node,
        Call::NewClient(NewClientRequest {
            client_authenticated_id: vec![0xc1; 16],
        }),
    ) else {
        panic!("new client refused")
    };
    let start = reply.handshake_start.unwrap();
    let policy = Policy::insecure_allow_simulated(vec![sim::measurement()])
        .with_evidence_age_max_secs(u64::MAX);
    let now = cluster.nodes[node].enclave.now_unix_secs;
    let verified = verify(&start.evidence, &start.endorsement, &policy, now).unwrap();
    verified.attestation_data().minimum_limits.clone()
}

fn leader(cluster: &mut Cluster) -> usize {
    cluster.leader().expect("a leader")
}

#[test]
fn raised_minimums_apply_on_every_replica_and_bind_into_client_evidence() {
    let mut cluster = Cluster::group_at_versions(&[5, 5, 5], 140);
    let leader = leader(&mut cluster);
    assert_eq!(client_sees(&mut cluster, leader), None, "no minimums yet");
    let raised = limits(&[(SVN, &[0, 3])]);
    assert!(matches!(
        update(&mut cluster, leader, raised.clone()),
        Answer::Done(_)
    ));
    cluster.tick(3);
    for node in 0..3 {
        assert_eq!(status_minimums(&mut cluster, node), raised, "node {node}");
        assert_eq!(
            client_sees(&mut cluster, node),
            Some(raised.clone()),
            "node {node}"
        );
    }
    // Raising again to the same value changes nothing; a higher one applies.
    assert!(matches!(
        update(&mut cluster, leader, limits(&[(SVN, &[5])])),
        Answer::Done(_)
    ));
    cluster.tick(3);
    for node in 0..3 {
        assert_eq!(status_minimums(&mut cluster, node), limits(&[(SVN, &[5])]));
    }
    // Peers re-attested with the new minimums and still accept each other: writes replicate.
    let mut alice = cluster.connect(leader, [0xa1; 16]);
    let response = cluster.request(leader, &mut alice, &backup(&[1; 16], &[1; 32]));
    assert!(response.inner.is_some());
    cluster.tick(3);
    let hashes = super::cluster::db_hashes(&mut cluster);
    assert!(
        hashes.windows(2).all(|pair| pair[0] == pair[1]),
        "{hashes:?}"
    );
}

#[test]
fn lowering_malformed_and_follower_updates_are_refused_and_change_nothing() {
    let mut cluster = Cluster::group_at_versions(&[5, 5], 150);
    let leader = leader(&mut cluster);
    let follower = 1 - leader;
    let current = limits(&[(SVN, &[4])]);
    assert!(matches!(
        update(&mut cluster, leader, current.clone()),
        Answer::Done(_)
    ));
    cluster.tick(3);

    let (code, message) = refusal(update(&mut cluster, leader, limits(&[(SVN, &[3])])));
    assert_eq!(code, ErrorCode::InvalidArgument);
    assert!(
        message.contains("can only grow") && message.contains(SVN),
        "{message}"
    );

    let too_long = [1u8; 33];
    for (bad, expected) in [
        (limits(&[("Not A Name", &[1])]), "minimum name"),
        (limits(&[(SVN, &[])]), "byte value"),
        (limits(&[(SVN, &too_long)]), "byte value"),
        (limits(&[]), "no minimums"),
    ] {
        let (code, message) = refusal(update(&mut cluster, leader, bad));
        assert_eq!(code, ErrorCode::InvalidArgument);
        assert!(message.contains(expected), "{message}");
    }

    let (code, message) = refusal(update(&mut cluster, follower, limits(&[(SVN, &[5])])));
    assert_eq!(code, ErrorCode::FailedPrecondition);
    assert!(message.contains("not the leader"), "{message}");

    cluster.tick(3);
    for node in 0..2 {
        assert_eq!(status_minimums(&mut cluster, node), current, "node {node}");
    }
}

#[test]
fn an_update_this_replica_or_a_connected_peer_would_fail_is_refused() {
    let mut cluster = Cluster::group_at_versions(&[5, 5, 2], 160);
    let leader = leader(&mut cluster);
    let (code, message) = refusal(update(&mut cluster, leader, limits(&[(SVN, &[3])])));
    assert_eq!(code, ErrorCode::FailedPrecondition);
    let low_peer = super::super::peers::short(&cluster.peer_id(2));
    assert!(
        message.contains(&low_peer) && message.contains(SVN) && message.contains("below"),
        "{message}"
    );
    // A limit on a value no replica attests would fail every one of them.
    let (code, message) = refusal(update(
        &mut cluster,
        leader,
        limits(&[("sgx.isv_svn", &[1])]),
    ));
    assert_eq!(code, ErrorCode::FailedPrecondition);
    assert!(message.contains("does not attest"), "{message}");
    // Above the leader's own version.
    let (_, message) = refusal(update(&mut cluster, leader, limits(&[(SVN, &[6])])));
    assert!(message.contains("would not meet"), "{message}");

    cluster.tick(3);
    for node in 0..3 {
        assert_eq!(
            status_minimums(&mut cluster, node),
            MinimumLimits::default()
        );
    }
    // What every replica meets still goes through.
    assert!(matches!(
        update(&mut cluster, leader, limits(&[(SVN, &[2])])),
        Answer::Done(_)
    ));
}

#[test]
fn a_joiner_learns_the_minimums_and_one_below_them_cannot_join() {
    let mut cluster = Cluster::group_at_versions(&[5, 5], 170);
    let leader = leader(&mut cluster);
    let raised = limits(&[(SVN, &[4])]);
    assert!(matches!(
        update(&mut cluster, leader, raised.clone()),
        Answer::Done(_)
    ));
    cluster.tick(3);
    let founder = cluster.peer_id(leader).to_vec();

    let low = cluster.add_node(Harness::bare_at_version(180, 3));
    let join = Call::JoinRaft(JoinRaftRequest {
        peer_id: founder.clone(),
    });
    let (_, message) = refusal(cluster.call(low, join.clone()));
    assert!(
        message.contains(SVN) && message.contains("minimum"),
        "{message}"
    );
    assert_eq!(cluster.status(low).role, "none");
    assert_eq!(cluster.status(leader).members.len(), 2);

    let good = cluster.add_node(Harness::bare_at_version(190, 4));
    assert!(matches!(cluster.call(good, join), Answer::Done(_)));
    cluster.tick(3);
    assert_eq!(status_minimums(&mut cluster, good), raised);
    assert_eq!(client_sees(&mut cluster, good), Some(raised));
}

#[test]
fn replicas_below_raised_minimums_are_disconnected_and_cannot_reconnect() {
    let mut cluster = Cluster::group_at_versions(&[5, 5], 200);
    let leader = leader(&mut cluster);
    let follower = 1 - leader;
    // A replica outside the group, below the coming minimums, talks to the follower only: the
    // leader does not see it when it checks the update.
    let low = cluster.add_node(Harness::bare_at_version(210, 2));
    let low_id = cluster.peer_id(low);
    let ping = Call::PingPeer(PingPeerRequest {
        peer_id: cluster.peer_id(follower).to_vec(),
    });
    assert!(matches!(cluster.call(low, ping.clone()), Answer::Done(_)));
    let connected_to_low = |cluster: &mut Cluster, node: usize| {
        cluster
            .status(node)
            .peers
            .iter()
            .any(|peer| peer.peer_id == low_id && peer.state == "connected")
    };
    assert!(connected_to_low(&mut cluster, follower));

    assert!(matches!(
        update(&mut cluster, leader, limits(&[(SVN, &[3])])),
        Answer::Done(_)
    ));
    cluster.tick(3);
    assert_eq!(
        status_minimums(&mut cluster, follower),
        limits(&[(SVN, &[3])])
    );
    assert!(
        !connected_to_low(&mut cluster, follower),
        "applying the minimums drops the replica below them"
    );
    // And it cannot come back.
    let (_, message) = refusal(cluster.call(low, ping));
    assert!(message.contains(SVN), "{message}");
    assert!(!connected_to_low(&mut cluster, follower));
}
