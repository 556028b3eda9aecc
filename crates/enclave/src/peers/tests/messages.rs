//! Messages on a connection: segmentation, and what a host can do to the frames.

use super::{Net, Node, only_reason, ping, raft};
use crate::Error;
use crate::peers::{PeerEvent, PeerLimits, SEGMENT_DATA_BYTES_MAX};

/// Three nodes; 0–1 and 0–2 connected.
fn triangle() -> Net {
    let mut net = Net::new(vec![Node::new(1), Node::new(2), Node::new(3)]);
    net.connect(0, 1);
    net.connect(0, 2);
    net
}

fn large(bytes: usize) -> Vec<u8> {
    (0..bytes).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn one_mebibyte_message_is_split_and_reassembled() {
    let mut net = triangle();
    let message = raft(large(1024 * 1024));
    net.send(0, 1, &message).unwrap();
    assert_eq!(net.wire.len(), 1024 * 1024 / SEGMENT_DATA_BYTES_MAX + 1);
    assert!(net.wire.iter().all(|wire| wire.frame.len() <= 65535 + 8));
    net.run();
    assert_eq!(net.received(1), vec![message]);
    net.assert_works(0, 1);
}

#[test]
fn messages_of_every_boundary_size_arrive() {
    let mut net = triangle();
    // Around one and two full segments: these messages encode 4 bytes longer than their
    // payload (tag and a 3-byte length).
    let full = SEGMENT_DATA_BYTES_MAX - 4;
    for size in [
        0,
        1,
        full - 1,
        full,
        full + 1,
        full + SEGMENT_DATA_BYTES_MAX,
        full + SEGMENT_DATA_BYTES_MAX + 1,
    ] {
        let message = raft(large(size));
        net.send(1, 0, &message).unwrap();
        net.run();
        assert_eq!(net.received(0), vec![message], "payload of {size} bytes");
    }
}

/// Send a three-segment message from 0 to 1, let `host` tamper with its frames, and check
/// that exactly the 0–1 connection was reset on both sides and 0–2 still works.
fn tamper(host: impl FnOnce(&mut Vec<super::Wire>)) -> String {
    let mut net = triangle();
    net.send(0, 1, &raft(large(2 * SEGMENT_DATA_BYTES_MAX + 10)))
        .unwrap();
    let mut frames = net.take_wire();
    assert_eq!(frames.len(), 3);
    host(&mut frames);
    for wire in &frames {
        let _ = net.deliver(wire);
    }
    let events = net.events(1);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, PeerEvent::Received { .. })),
        "{events:?}"
    );
    let reason = only_reason(&events, false);
    net.run(); // the Rst
    assert!(only_reason(&net.events(0), false).contains("reset the connection"));
    assert!(!net.connected(0, 1) && !net.connected(1, 0));
    net.assert_works(0, 2);
    net.assert_works(0, 1); // and 0–1 reconnects on the next send
    reason
}

#[test]
fn replayed_frame_resets_the_connection() {
    let reason = tamper(|frames| {
        let first = frames[0].clone();
        frames.insert(1, first);
    });
    assert!(reason.contains("does not decrypt"), "{reason}");
}

#[test]
fn reordered_frames_reset_the_connection() {
    let reason = tamper(|frames| frames.swap(1, 2));
    assert!(reason.contains("does not decrypt"), "{reason}");
}

#[test]
fn dropped_frame_resets_the_connection() {
    let reason = tamper(|frames| {
        frames.remove(1);
    });
    assert!(reason.contains("does not decrypt"), "{reason}");
}

#[test]
fn flipped_bit_resets_the_connection() {
    let reason = tamper(|frames| {
        let last = frames[1].frame.len() - 1;
        frames[1].frame[last] ^= 1;
    });
    assert!(reason.contains("does not decrypt"), "{reason}");
}

#[test]
fn garbage_frame_resets_the_connection() {
    let reason = tamper(|frames| frames[1].frame = vec![0xff; 20]);
    assert!(reason.contains("not a valid PeerFrame"), "{reason}");
}

#[test]
fn replay_of_a_whole_old_message_fails() {
    let mut net = triangle();
    net.send(0, 1, &ping(1)).unwrap();
    let old = net.wire[0].clone();
    net.run();
    assert_eq!(net.received(1), vec![ping(1)]);
    net.deliver(&old).unwrap();
    assert!(only_reason(&net.events(1), false).contains("does not decrypt"));
    net.run();
    net.assert_works(0, 2);
}

#[test]
fn oversized_and_invalid_sends_change_nothing() {
    let limits = PeerLimits {
        message_bytes_max: 100_000,
        ..PeerLimits::default()
    };
    let mut net = Net::new(vec![
        Node::with(1, Some(super::group()), limits),
        Node::new(2),
    ]);
    net.connect(0, 1);
    let id0 = net.id(0);
    let update = crate::peers::channels::attestation_update(&crate::peers::PeerContext {
        evidence: &[],
        endorsements: &[],
        measurement: [0; 32],
        simulated: true,
        group_config: None,
        minimums: &crate::minimums::Minimums::NONE,
        now_unix_secs: 0,
        seed: [0; 32],
    });
    let cases = [
        (raft(large(100_000))),
        (cloister_proto::e2e::EnclaveToEnclave::default()),
        update,
    ];
    for message in &cases {
        let error = net.send(0, 1, message).unwrap_err();
        assert!(matches!(error, Error::InvalidArgument(_)), "{error}");
        assert!(net.wire.is_empty());
    }
    let error = net.nodes[0].call(|channels, ctx| channels.send(&id0, &ping(1), ctx));
    assert!(matches!(error, Err(Error::InvalidArgument(_))));
    net.assert_works(0, 1);
}

#[test]
fn messages_queued_while_handshaking_are_bounded() {
    let limits = PeerLimits {
        pending_messages_max: 3,
        ..PeerLimits::default()
    };
    let mut net = Net::new(vec![
        Node::with(1, Some(super::group()), limits),
        Node::new(2),
    ]);
    for n in 1..=3 {
        net.send(0, 1, &ping(n)).unwrap();
    }
    let error = net.send(0, 1, &ping(4)).unwrap_err();
    assert!(matches!(error, Error::ResourceExhausted(_)), "{error}");
    net.run();
    let received: Vec<_> = net
        .events(1)
        .into_iter()
        .filter_map(|e| match e {
            PeerEvent::Received { message, .. } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(received, vec![ping(1), ping(2), ping(3)]);
}
