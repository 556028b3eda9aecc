//! Mutual attestation: who may connect, attestation updates, and expiry.

use cloister_proto::attest::GroupConfig;
use cloister_proto::e2e::{AttestationUpdate, EnclaveToEnclave, enclave_to_enclave};

use super::{NOW, Net, Node, TIMEOUT_SECS, evidence_for, group, only_reason, ping};
use crate::peers::channels::Connection;
use crate::peers::{ConnectionState, PeerEvent, PeerLimits};

/// Node 0 (changed by `setup`) tries to connect to node 1, which is also connected to node
/// 2. Returns node 1's reason for refusing; checks that node 0 heard it and that 1–2 works.
fn refused_by_1(setup: impl FnOnce(&mut Net)) -> String {
    let mut net = Net::new(vec![Node::new(1), Node::new(2), Node::new(3)]);
    net.connect(1, 2);
    setup(&mut net);
    net.send(0, 1, &ping(1)).unwrap();
    net.run();
    let reason = only_reason(&net.events(1), true);
    let told = only_reason(&net.events(0), false);
    assert!(told.contains("reset the connection"), "{told}");
    assert!(!net.connected(0, 1) && !net.connected(1, 0));
    assert_eq!(net.nodes[1].channels.len(), 1);
    net.assert_works(1, 2);
    reason
}

#[test]
fn a_different_measurement_is_refused() {
    // The simulated backend has one measurement, so node 1 plays a different build.
    let reason = refused_by_1(|net| net.nodes[1].measurement = [9; 32]);
    assert!(
        reason.contains("measurement") && reason.contains("not accepted"),
        "{reason}"
    );
}

#[test]
fn a_simulated_peer_is_refused_by_a_real_enclave() {
    // Node 1 plays a hardware enclave: its policy is strict.
    let reason = refused_by_1(|net| net.nodes[1].simulated = false);
    assert!(reason.contains("simulated evidence refused"), "{reason}");
}

#[test]
fn a_different_group_config_is_refused() {
    let reason = refused_by_1(|net| {
        let other = GroupConfig {
            group_id: 8,
            ..group()
        };
        net.nodes[0].group = Some(other);
        net.nodes[0].reattest();
    });
    assert!(
        reason.contains("ours is group 0000000000000007, the peer's is group 0000000000000008"),
        "{reason}"
    );
    let reason = refused_by_1(|net| {
        net.nodes[0].group = Some(GroupConfig {
            election_ticks: 99,
            ..group()
        });
        net.nodes[0].reattest();
    });
    assert!(
        reason.contains("group 0000000000000007 with different parameters"),
        "{reason}"
    );
}

#[test]
fn stale_evidence_in_a_syn_is_refused() {
    let reason = refused_by_1(|net| {
        let id0 = net.id(0);
        net.nodes[0].evidence =
            evidence_for(&id0, Some(group()), NOW - u64::from(TIMEOUT_SECS) - 1);
    });
    assert!(reason.contains("older than 3600s"), "{reason}");
}

#[test]
fn a_replica_without_a_group_is_accepted_and_reported() {
    let joiner = Node::with(1, None, PeerLimits::default());
    let mut net = Net::new(vec![joiner, Node::new(2)]);
    net.send(0, 1, &ping(1)).unwrap();
    net.run();
    let connected = |events: Vec<PeerEvent>| {
        events.into_iter().find_map(|event| match event {
            PeerEvent::Connected { attestation, .. } => Some(attestation.group_config().copied()),
            _ => None,
        })
    };
    // The member sees a peer with no group; the joiner sees the member's group.
    assert_eq!(connected(net.events(1)), Some(None));
    assert_eq!(connected(net.events(0)), Some(Some(group())));
    net.assert_works(0, 1);
}

fn update(evidence: Vec<u8>) -> EnclaveToEnclave {
    EnclaveToEnclave {
        inner: Some(enclave_to_enclave::Inner::AttestationUpdate(
            AttestationUpdate {
                evidence,
                endorsements: Vec::new(),
            },
        )),
    }
}

/// Node 0 sends `message` to node 1 on their connection, bypassing `send`'s checks.
fn push(net: &mut Net, message: &EnclaveToEnclave) {
    let id1 = net.id(1);
    let Some(Connection::Connected(connected)) = net.nodes[0].channels.connections.get_mut(&id1)
    else {
        panic!("0 and 1 are connected");
    };
    let frames = connected.seal(message).unwrap();
    let id0 = net.id(0);
    for frame in frames {
        net.deliver_as(id0, 1, &frame).unwrap();
    }
}

#[test]
fn a_key_change_in_an_attestation_update_is_refused() {
    let mut net = Net::new(vec![Node::new(1), Node::new(2), Node::new(3)]);
    net.connect(0, 1);
    net.connect(1, 2);
    let id2 = net.id(2);
    push(&mut net, &update(evidence_for(&id2, Some(group()), NOW)));
    let reason = only_reason(&net.events(1), false);
    assert!(
        reason.contains("attestation update refused: the key changed from"),
        "{reason}"
    );
    assert!(reason.contains("a peer's key may not change"), "{reason}");
    net.run();
    assert!(!net.connected(0, 1));
    net.assert_works(1, 2);
}

#[test]
fn refreshed_evidence_reaches_peers_and_postpones_expiry() {
    let mut net = Net::new(vec![Node::new(1), Node::new(2), Node::new(3)]);
    net.connect(0, 1);
    net.connect(0, 2);
    let later = NOW + 3000;
    for node in &mut net.nodes {
        node.now = later;
    }
    net.nodes[0].reattest();
    let events = net.nodes[0].call(|channels, ctx| channels.refresh_attestation(ctx));
    net.absorb(0, events);
    net.run();
    for peer in [1, 2] {
        match net.events(peer).as_slice() {
            [PeerEvent::Reattested { attestation, .. }] => {
                assert_eq!(attestation.attested_at_unix_secs(), later);
            }
            other => panic!("{other:?}"),
        }
    }
    // Node 1 at a time when the first evidence expired but the fresh one has not.
    net.nodes[1].now = NOW + u64::from(TIMEOUT_SECS) + 10;
    let id0 = net.id(0);
    assert!(
        net.nodes[1]
            .call(|channels, ctx| channels.expire(ctx))
            .is_empty()
    );
    assert_eq!(
        net.nodes[1].channels.connection_state(&id0),
        Some(ConnectionState::Connected {
            attested_at_unix_secs: later
        })
    );
}

#[test]
fn an_expired_peer_is_disconnected() {
    let mut net = Net::new(vec![Node::new(1), Node::new(2), Node::new(3)]);
    net.connect(0, 1);
    net.connect(0, 2);
    // Node 2 refreshed; node 1 did not.
    net.nodes[2].now = NOW + 100;
    net.nodes[2].reattest();
    let events = net.nodes[2].call(|channels, ctx| channels.refresh_attestation(ctx));
    net.absorb(2, events);
    net.run();
    net.events(0);
    net.nodes[0].now = NOW + u64::from(TIMEOUT_SECS);
    assert!(
        net.nodes[0]
            .call(|channels, ctx| channels.expire(ctx))
            .is_empty()
    );
    net.nodes[0].now += 1;
    let events = net.nodes[0].call(|channels, ctx| channels.expire(ctx));
    net.absorb(0, events);
    let reason = only_reason(&net.events(0), false);
    assert!(
        reason.contains(&format!("evidence from {NOW} is older than 3600s")),
        "{reason}"
    );
    net.run();
    assert!(only_reason(&net.events(1), false).contains("reset the connection"));
    assert!(!net.connected(0, 1) && !net.connected(1, 0));
    net.assert_works(0, 2);
}

#[test]
fn a_handshake_without_a_synack_expires() {
    let mut net = Net::new(vec![Node::new(1), Node::new(2)]);
    net.send(0, 1, &ping(1)).unwrap();
    net.take_wire(); // the Syn is lost
    net.nodes[0].now = NOW + 61;
    let events = net.nodes[0].call(|channels, ctx| channels.expire(ctx));
    net.absorb(0, events);
    assert!(only_reason(&net.events(0), false).contains("no SynAck"));
    assert_eq!(net.nodes[0].channels.len(), 0);
    net.take_wire();
    net.assert_works(0, 1);
}

#[test]
fn evidence_refreshed_during_a_handshake_follows_it() {
    let mut net = Net::new(vec![Node::new(1), Node::new(2)]);
    net.send(0, 1, &ping(1)).unwrap();
    net.nodes[0].now = NOW + 50;
    net.nodes[0].reattest();
    net.run();
    let id0 = net.id(0);
    let reattested = net.events(1).into_iter().any(|event| {
        matches!(event, PeerEvent::Reattested { attestation, .. }
            if attestation.attested_at_unix_secs() == NOW + 50)
    });
    assert!(reattested);
    assert_eq!(
        net.nodes[1].channels.connection_state(&id0),
        Some(ConnectionState::Connected {
            attested_at_unix_secs: NOW + 50
        })
    );
}
