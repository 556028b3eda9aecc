//! Bad input on the peer side of a group: raw bytes on a replica's peer port (garbage,
//! oversized or empty length prefixes, frames out of order, Hellos that lie about who is
//! speaking), and `admin join` pointed at things that are not peer listeners. The group
//! keeps serving throughout, and every refusal is clear and bounded.

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use cloister_client::RestoreOutcome;
use cloister_proto::transport::{Ack, Hello, Ping, transport_frame::Kind};
use common::group::{Group, bounded_group};
use common::peer::{RawPeer, data, frame, hello};
use common::{http, username};

const PIN: [u8; 32] = [0x71; 32];
const DATA: [u8; 48] = [0x72; 48];
/// The transport's bound on a Hello (the only frame accepted before one).
const HELLO_BYTES_MAX: u32 = 6848;

/// Connections that must be refused and closed by the node, each with what it sends.
fn refused_inputs(own_peer_id: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut not_protobuf = 5u32.to_be_bytes().to_vec();
    not_protobuf.extend_from_slice(&[0xff; 5]);
    let mut oversized = (HELLO_BYTES_MAX + 1).to_be_bytes().to_vec();
    oversized.resize(4 + HELLO_BYTES_MAX as usize + 1, 0);
    let mut truncated = 100u32.to_be_bytes().to_vec();
    truncated.extend_from_slice(&[0x0a; 10]);
    let other_version = frame(Kind::Hello(Hello {
        protocol_version: 3,
        peer_id: vec![7; 32],
        ..Hello::default()
    }));
    vec![
        ("garbage", vec![0xab; 64]),
        ("length u32::MAX", vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3]),
        ("length 0", vec![0, 0, 0, 0]),
        ("not protobuf", not_protobuf),
        ("a Hello over its bound", oversized),
        ("a truncated frame", truncated),
        ("Data before Hello", data(1, vec![1, 2, 3])),
        ("Ping before Hello", frame(Kind::Ping(Ping { probe: 0 }))),
        ("protocol version 3", other_version),
        ("a 31-byte peer id", hello(&[7; 31], "", 1, false)),
        ("the node's own peer id", hello(own_peer_id, "", 1, false)),
        (
            "an unparseable listen address",
            hello(&[7; 32], "localhost:1", 1, false),
        ),
    ]
}

fn peer_id(view: &common::group::View) -> Vec<u8> {
    hex::decode(view.json["peer_id"].as_str().unwrap()).unwrap()
}

/// The node's `peer_protocol_violations` counter, from its Prometheus text.
async fn violations(group: &Group, index: usize) -> u64 {
    let metrics = http(group.node(index).admin_addr, "GET", "/metrics", &[], "").await;
    metrics
        .body
        .lines()
        .find(|line| line.contains("peer_protocol_violations") && !line.starts_with('#'))
        .and_then(|line| line.split_whitespace().last())
        .map_or(0, |value| value.parse().unwrap())
}

/// The group serves a fresh backup through `write` and its restore through every replica
/// of `all`, and every replica has the same database.
async fn still_serves(group: &Group, write: usize, all: &[usize], label: &str) {
    let user = username(label);
    group.back_up(write, &user, &DATA, &PIN, 10).await;
    for index in all {
        let restored = group.restore(*index, &user, &PIN).await;
        assert!(
            matches!(&restored, RestoreOutcome::Ok { data, tries: 10 } if **data == DATA),
            "{label}: replica {index}: {restored:?}"
        );
    }
    group.wait_converged(all).await;
}

// Replica groups: peer channels ("a wrong sequence, index or count, a failed decryption or
// a replayed frame resets that connection (and only that one)"), host peer transport.
#[tokio::test]
async fn garbage_on_peer_ports_leaves_the_group_serving() {
    bounded_group(async {
        let group = Group::start("bad-peer", 3).await;
        let all = [0, 1, 2];
        let leader = group.wait_leader(&all).await;
        let follower = all.into_iter().find(|index| *index != leader).unwrap();
        let leader_view = group.view(leader).await;
        let term_before = leader_view.term;
        let leader_peer_id = peer_id(&leader_view);

        // Idle connections that never say anything, held through the whole test.
        let mut idle = Vec::new();
        for index in all {
            for _ in 0..3 {
                idle.push(RawPeer::connect(group.node(index).peer_addr.unwrap()).await);
            }
        }

        for target in [follower, leader] {
            let addr = group.node(target).peer_addr.unwrap();
            let own = peer_id(&group.view(target).await);
            let before = violations(&group, target).await;
            let inputs = refused_inputs(&own);
            for (what, bytes) in &inputs {
                let mut raw = RawPeer::connect(addr).await;
                raw.send(bytes).await;
                assert!(
                    raw.closed_by_remote().await,
                    "replica {target} kept a connection that sent {what}"
                );
            }
            let counted = violations(&group, target).await - before;
            assert!(
                counted >= 8,
                "replica {target} counted {counted} violations for {} bad inputs",
                inputs.len()
            );

            // A stranger with a well-formed Hello gets an honest answer, and junk it sends
            // afterwards reaches the enclave, which drops it.
            let mut stranger = RawPeer::connect(addr).await;
            stranger.send(&hello(&[0x5e; 32], "", 42, false)).await;
            let answer = stranger.read_hello().await;
            assert_eq!(
                answer.peer_id, own,
                "replica {target} answered as someone else"
            );
            for seq in 1..=3 {
                stranger.send(&data(seq, vec![seq as u8; 100])).await;
            }
            stranger.send(&frame(Kind::Ack(Ack { seq: 1_000 }))).await;
            stranger.send(&frame(Kind::Ping(Ping { probe: 0 }))).await;
            // A second Hello breaks the protocol: closed.
            stranger.send(&hello(&[0x5e; 32], "", 42, false)).await;
            assert!(stranger.closed_by_remote().await);

            // Discovery: answered with the node's peer id, then closed.
            let mut discovery = RawPeer::connect(addr).await;
            discovery.send(&hello(&[0x5f; 32], "", 43, true)).await;
            assert_eq!(discovery.read_hello().await.peer_id, own);
            assert!(discovery.closed_by_remote().await);

            still_serves(&group, target, &all, &format!("bad-peer-{target}")).await;
        }

        // A stranger claiming to be the leader, talking to a follower: it announces a
        // useless address and sends junk as the leader's enclave. The follower keeps its
        // working link to the leader (it answers the probe), and the group keeps serving.
        let started = Instant::now();
        let mut impostor = RawPeer::connect(group.node(follower).peer_addr.unwrap()).await;
        impostor
            .send(&hello(&leader_peer_id, "127.0.0.1:1", 0x1badd00d, false))
            .await;
        let Hello {
            peer_id: answered, ..
        } = impostor.read_hello().await;
        assert_eq!(answered, peer_id(&group.view(follower).await));
        for seq in 1..=5 {
            impostor.send(&data(seq, vec![0xee; 64])).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        drop(impostor);
        still_serves(&group, follower, &all, "bad-peer-impostor").await;
        let recovered = started.elapsed();

        drop(idle);
        let leader_after = group.wait_leader(&all).await;
        let term_after = group.view(leader_after).await.term;
        println!(
            "bad peer input: impostor of the leader: group serving again after {recovered:?}; \
             leader {leader} term {term_before} -> leader {leader_after} term {term_after}"
        );
        still_serves(&group, leader_after, &all, "bad-peer-after").await;
    })
    .await;
}

// Operating: `cloister admin join --peer` names another replica's peer listener; anything
// else fails with exit 1 and a message that says what went wrong, and changes nothing.
#[tokio::test]
async fn join_through_a_non_peer_address_fails_clearly() {
    bounded_group(async {
        let mut group = Group::start("bad-join", 2).await;
        let members = [0, 1];
        let leader = group.wait_leader(&members).await;
        let fresh = group.spawn().await;

        // A port that accepts and then says nothing at all.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_addr = silent.local_addr().unwrap().to_string();
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = silent.accept().await {
                held.push(stream);
            }
        });
        let closed_port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().to_string()
        };
        let leader_node = group.node(leader);
        let not_peers = [
            ("the admin API", leader_node.admin_addr.to_string()),
            ("the client listener", leader_node.client_addr.to_string()),
            ("a closed port", closed_port),
            ("a port that never answers", silent_addr),
            ("the node's own peer listener", group.peer_addr(fresh)),
        ];
        for (what, addr) in &not_peers {
            let started = Instant::now();
            let output = group.admin(fresh, "join", &["--peer", addr]).await;
            assert_eq!(output.code, 1, "join via {what}: {output:?}");
            assert!(
                output.stderr.contains("error") && output.stderr.contains(addr.as_str()),
                "join via {what}: the message should name the address: {output:?}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "join via {what} took {:?}",
                started.elapsed()
            );
            println!("join via {what}: {}", output.stderr.trim());
            let view = group.view(fresh).await;
            assert!(
                !view.in_group,
                "join via {what} changed the node: {}",
                view.json
            );
        }
        holder.abort();

        // A member asked to join again, through a real peer, or through the admin port.
        let follower = members.into_iter().find(|i| *i != leader).unwrap();
        let again = group
            .admin(follower, "join", &["--peer", &group.peer_addr(leader)])
            .await;
        assert_eq!(again.code, 1, "{again:?}");
        assert!(again.stderr.contains("already belongs"), "{again:?}");
        let wrong = group
            .admin(
                follower,
                "join",
                &["--peer", &leader_node.admin_addr.to_string()],
            )
            .await;
        assert_eq!(wrong.code, 1, "{wrong:?}");

        // The fresh node still joins properly, and the group is whole.
        group.join(fresh, follower).await;
        let all = [0, 1, 2];
        group.wait_leader(&all).await;
        still_serves(&group, fresh, &all, "bad-join").await;
    })
    .await;
}
