//! Connecting: the KK handshake, simultaneous open, replacement, bounds, resets.

use cloister_proto::e2e::{PeerFrame, Rst, peer_frame};
use prost::Message;

use super::{Net, Node, evidence_for, group, only_reason, ping};
use crate::Error;
use crate::peers::{ConnectionState, PeerEvent, PeerLimits};

#[test]
fn handshake_then_messages_both_ways() {
    let mut net = Net::new(vec![Node::new(1), Node::new(2)]);
    net.send(0, 1, &ping(1)).unwrap();
    assert_eq!(
        net.nodes[0].channels.connection_state(&net.id(1)),
        Some(ConnectionState::AwaitSynAck { queued: 1 })
    );
    net.run();
    let (id0, id1) = (net.id(0), net.id(1));
    match net.events(0).as_slice() {
        [PeerEvent::Connected { peer, attestation }] => {
            assert_eq!((peer, attestation.peer()), (&id1, &id1));
            assert_eq!(attestation.group_config(), Some(&group()));
        }
        other => panic!("{other:?}"),
    }
    match net.events(1).as_slice() {
        [
            PeerEvent::Connected { peer, attestation },
            PeerEvent::Received { message, .. },
        ] => {
            assert_eq!((peer, attestation.peer()), (&id0, &id0));
            assert_eq!(message, &ping(1));
        }
        other => panic!("{other:?}"),
    }
    net.send(1, 0, &ping(2)).unwrap();
    net.run();
    assert_eq!(net.received(0), vec![ping(2)]);
    assert_eq!(net.nodes[0].channels.connected_peers(), vec![id1]);
    assert_eq!(
        net.nodes[1].channels.connection_state(&id0),
        Some(ConnectionState::Connected {
            attested_at_unix_secs: super::NOW
        })
    );
}

#[test]
fn messages_sent_while_handshaking_arrive_in_order() {
    let mut net = Net::new(vec![Node::new(1), Node::new(2)]);
    for n in 1..=5 {
        net.send(0, 1, &ping(n)).unwrap();
    }
    // Only the Syn left: the rest waits for the SynAck.
    assert_eq!(net.wire.len(), 1);
    net.run();
    let received: Vec<_> = net.events(1).into_iter().skip(1).collect();
    let expected: Vec<_> = (1..=5).map(ping).collect();
    let messages: Vec<_> = received
        .into_iter()
        .map(|event| match event {
            PeerEvent::Received { message, .. } => message,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(messages, expected);
}

#[test]
fn same_seeds_give_the_same_frames() {
    let frames = || {
        let mut net = Net::new(vec![Node::new(1), Node::new(2)]);
        net.send(0, 1, &ping(1)).unwrap();
        let syn = net.wire[0].frame.clone();
        net.run();
        net.send(1, 0, &ping(2)).unwrap();
        (syn, net.wire[0].frame.clone())
    };
    assert_eq!(frames(), frames());
}

#[test]
fn simultaneous_open_converges_to_one_connection() {
    let mut net = Net::new(vec![Node::new(1), Node::new(2)]);
    net.send(0, 1, &ping(1)).unwrap();
    net.send(1, 0, &ping(2)).unwrap();
    net.run();
    let connected = |events: Vec<PeerEvent>| {
        let count = |f: fn(&PeerEvent) -> bool| events.iter().filter(|e| f(e)).count();
        (
            count(|e| matches!(e, PeerEvent::Connected { .. })),
            count(|e| {
                matches!(
                    e,
                    PeerEvent::Disconnected { .. } | PeerEvent::Refused { .. }
                )
            }),
        )
    };
    assert_eq!(connected(net.events(0)), (1, 0));
    assert_eq!(connected(net.events(1)), (1, 0));
    // Both queued pings were delivered on the one connection (checked by assert_works's
    // clean event lists too).
    net.assert_works(0, 1);
}

#[test]
fn simultaneous_open_delivers_both_queues() {
    let mut net = Net::new(vec![Node::new(1), Node::new(2)]);
    net.send(0, 1, &ping(1)).unwrap();
    net.send(1, 0, &ping(2)).unwrap();
    net.run();
    let received = |events: Vec<PeerEvent>| {
        events
            .into_iter()
            .filter_map(|event| match event {
                PeerEvent::Received { message, .. } => Some(message),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(received(net.events(0)), vec![ping(2)]);
    assert_eq!(received(net.events(1)), vec![ping(1)]);
}

#[test]
fn syn_from_a_connected_peer_replaces_the_connection() {
    let mut net = Net::new(vec![Node::new(1), Node::new(2), Node::new(3)]);
    net.connect(0, 1);
    net.connect(0, 2);
    // Node 0 loses its state for node 1 (say its host reset it) and reconnects.
    let id1 = net.id(1);
    net.nodes[0].channels.reset(&id1).unwrap();
    net.take_wire(); // the Rst is lost
    net.events(0);
    net.send(0, 1, &ping(9)).unwrap();
    net.run();
    let events = net.events(1);
    assert!(only_reason(&events, false).contains("replacing this one"));
    assert!(
        matches!(events[1], PeerEvent::Connected { .. }),
        "{events:?}"
    );
    assert!(matches!(&events[2], PeerEvent::Received { message, .. } if *message == ping(9)));
    net.assert_works(0, 1);
    net.assert_works(0, 2);
}

#[test]
fn syn_claiming_another_peer_fails_noise_kk() {
    // Node 2's host claims its Syn comes from node 0, with evidence forged for node 0's key
    // (simulated evidence can be forged): KK fails, since node 2 lacks node 0's key.
    let mut net = Net::new(vec![Node::new(1), Node::new(2), Node::new(3)]);
    net.connect(0, 1);
    let id0 = net.id(0);
    net.nodes[2].evidence = evidence_for(&id0, Some(group()), super::NOW);
    net.send(2, 1, &ping(1)).unwrap();
    let syn = net.take_wire().remove(0);
    net.deliver_as(id0, 1, &syn.frame).unwrap();
    let events = net.events(1);
    let reason = only_reason(&events, true);
    assert!(reason.contains("KK message 1 does not verify"), "{reason}");
    // Node 1's real connection with node 0 is untouched (the Rst goes to node 0, which is
    // connected and would drop; a host could always do that by dropping frames).
    net.take_wire();
    net.assert_works(0, 1);
}

#[test]
fn syn_with_evidence_for_another_key_is_refused() {
    let mut net = Net::new(vec![Node::new(1), Node::new(2), Node::new(3)]);
    net.connect(0, 1);
    net.send(2, 1, &ping(1)).unwrap();
    let syn = net.take_wire().remove(0);
    let id0 = net.id(0);
    net.deliver_as(id0, 1, &syn.frame).unwrap();
    let reason = only_reason(&net.events(1), true);
    assert!(reason.contains("not the peer's id"), "{reason}");
    net.take_wire();
    net.assert_works(0, 1);
}

#[test]
fn connections_max_refuses_new_syns_and_sends() {
    let limits = PeerLimits {
        connections_max: 1,
        ..PeerLimits::default()
    };
    let mut net = Net::new(vec![
        Node::new(1),
        Node::with(2, Some(group()), limits),
        Node::new(3),
    ]);
    net.connect(0, 1);
    net.send(2, 1, &ping(1)).unwrap();
    net.run();
    let reason = only_reason(&net.events(1), true);
    assert!(reason.contains("busy: 1 peer connections"), "{reason}");
    // Node 2 was told why.
    let reason = only_reason(&net.events(2), false);
    assert!(reason.contains("busy"), "{reason}");
    let id2 = net.id(2);
    let error = net.send(1, 2, &ping(2)).unwrap_err();
    assert!(matches!(error, Error::ResourceExhausted(_)), "{error}");
    assert_eq!(net.nodes[1].channels.connection_state(&id2), None);
    assert_eq!(net.nodes[1].channels.len(), 1);
    net.assert_works(0, 1);
}

#[test]
fn reset_then_reconnect() {
    let mut net = Net::new(vec![Node::new(1), Node::new(2), Node::new(3)]);
    net.connect(0, 1);
    net.connect(0, 2);
    let id1 = net.id(1);
    let events = net.nodes[0].channels.reset(&id1).unwrap();
    net.absorb(0, events);
    assert!(only_reason(&net.events(0), false).contains("host reset"));
    net.run(); // the Rst reaches node 1
    assert!(only_reason(&net.events(1), false).contains("reset the connection"));
    assert!(!net.connected(1, 0));
    let error = net.nodes[0].channels.reset(&id1).unwrap_err();
    assert!(matches!(error, Error::NotFound(_)), "{error}");
    net.assert_works(0, 1); // the next send reconnects
    net.assert_works(0, 2);
}

#[test]
fn frames_that_change_nothing_are_errors() {
    let mut net = Net::new(vec![Node::new(1), Node::new(2), Node::new(3)]);
    net.connect(0, 1);
    let id2 = net.id(2);
    let rst = PeerFrame {
        inner: Some(peer_frame::Inner::Rst(Rst { reason: "x".into() })),
    };
    type Expected = fn(&Error) -> bool;
    let cases: Vec<(Vec<u8>, Expected)> = vec![
        (vec![0xff; 40], |e| matches!(e, Error::HostMisbehaved(_))),
        (PeerFrame::default().encode_to_vec(), |e| {
            matches!(e, Error::HostMisbehaved(_))
        }),
        (vec![0; crate::peers::PEER_FRAME_BYTES_MAX + 1], |e| {
            matches!(e, Error::HostMisbehaved(_))
        }),
        (rst.encode_to_vec(), |e| matches!(e, Error::NotFound(_))),
    ];
    for (frame, expected) in cases {
        let error = net.deliver_as(id2, 1, &frame).unwrap_err();
        assert!(expected(&error), "{error}");
        assert!(net.events(1).is_empty());
        assert!(net.wire.is_empty());
    }
    let own = net.id(1);
    assert!(net.deliver_as(own, 1, &rst.encode_to_vec()).is_err());
    net.assert_works(0, 1);
}

#[test]
fn frames_for_no_connection_are_answered_with_rst() {
    let mut net = Net::new(vec![Node::new(1), Node::new(2), Node::new(3)]);
    net.connect(0, 1);
    net.connect(0, 2);
    // Node 1 forgets node 0 without telling it; node 0's next data frame gets an Rst.
    let id0 = net.id(0);
    net.nodes[1].channels.reset(&id0).unwrap();
    net.send(0, 1, &ping(1)).unwrap();
    net.run();
    assert!(only_reason(&net.events(1), true).contains("no connection"));
    assert!(only_reason(&net.events(0), false).contains("no connection"));
    net.assert_works(0, 1);
    net.assert_works(0, 2);
}
