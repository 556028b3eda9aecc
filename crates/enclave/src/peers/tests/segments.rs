//! Segments a misbehaving peer enclave could send: well encrypted, badly framed. (The host
//! cannot make these: it cannot encrypt.) Each resets exactly that connection.

use cloister_proto::e2e::Segment;
use prost::Message;

use super::{Net, Node, group, only_reason, ping};
use crate::peers::channels::Connection;
use crate::peers::{PeerLimits, SEGMENT_DATA_BYTES_MAX};

const FULL: usize = SEGMENT_DATA_BYTES_MAX;

fn segment(message_seq: u64, index: u32, count: u32, data: Vec<u8>) -> Vec<u8> {
    Segment {
        message_seq,
        index,
        count,
        data,
    }
    .encode_to_vec()
}

/// Connect 0–1 and 0–2, have node 0 encrypt `plaintexts` to node 1, and return node 1's
/// reason for resetting; check that 0–2 still works and 0–1 reconnects.
fn forged(receiver: Node, plaintexts: &[Vec<u8>]) -> String {
    let mut net = Net::new(vec![Node::new(1), receiver, Node::new(3)]);
    net.connect(0, 1);
    net.connect(0, 2);
    let id1 = net.id(1);
    let Some(Connection::Connected(connected)) = net.nodes[0].channels.connections.get_mut(&id1)
    else {
        panic!("0 and 1 are connected");
    };
    // connect() sent message 0; the next message is 1.
    let frames: Vec<Vec<u8>> = plaintexts
        .iter()
        .map(|plaintext| connected.seal_plaintext(plaintext).unwrap())
        .collect();
    let id0 = net.id(0);
    for frame in &frames {
        let _ = net.deliver_as(id0, 1, frame);
    }
    let reason = only_reason(&net.events(1), false);
    net.run();
    assert!(!net.connected(0, 1) && !net.connected(1, 0));
    net.assert_works(0, 2);
    net.assert_works(0, 1);
    reason
}

fn check(plaintexts: &[Vec<u8>], expected: &str) {
    let reason = forged(Node::new(2), plaintexts);
    assert!(
        reason.contains(expected),
        "{reason} (expected {expected:?})"
    );
}

#[test]
fn a_skipped_message_number_resets() {
    check(
        &[segment(5, 0, 1, ping(1).encode_to_vec())],
        "message 5 arrived, expected 1",
    );
}

#[test]
fn a_segment_out_of_order_resets() {
    check(
        &[segment(1, 1, 2, vec![0; FULL])],
        "segment 1 of message 1, expected segment 0",
    );
}

#[test]
fn a_duplicated_segment_resets() {
    let first = segment(1, 0, 2, vec![0; FULL]);
    check(
        &[first.clone(), first],
        "segment 0 of message 1, expected segment 1",
    );
}

#[test]
fn a_changed_count_resets() {
    check(
        &[
            segment(1, 0, 3, vec![0; FULL]),
            segment(1, 1, 2, vec![0; FULL]),
        ],
        "message 1 said 3 segments, now 2",
    );
}

#[test]
fn a_truncated_message_resets() {
    check(
        &[
            segment(1, 0, 2, vec![0; FULL]),
            segment(2, 0, 1, ping(1).encode_to_vec()),
        ],
        "message 2 began while message 1 has 1 of its 2 segments",
    );
}

#[test]
fn zero_or_too_many_segments_reset() {
    check(&[segment(1, 0, 0, Vec::new())], "of 0 segments");
    check(
        &[segment(1, 0, 1_000_000, vec![0; FULL])],
        "of 1000000 segments",
    );
}

#[test]
fn short_middle_or_empty_last_segments_reset() {
    check(
        &[segment(1, 0, 2, vec![0; 10])],
        "segment 0 of 2 carries 10 bytes",
    );
    check(
        &[
            segment(1, 0, 2, vec![0; FULL]),
            segment(1, 1, 2, Vec::new()),
        ],
        "segment 1 of 2 carries 0 bytes",
    );
}

#[test]
fn a_message_over_the_receivers_bound_resets() {
    let limits = PeerLimits {
        message_bytes_max: FULL + 100,
        ..PeerLimits::default()
    };
    let receiver = Node::with(2, Some(group()), limits);
    let reason = forged(
        receiver,
        &[
            segment(1, 0, 2, vec![0; FULL]),
            segment(1, 1, 2, vec![0; 101]),
        ],
    );
    assert!(
        reason.contains(&format!("exceeds {} bytes", FULL + 100)),
        "{reason}"
    );
}

#[test]
fn undecodable_plaintexts_reset() {
    check(&[vec![0xff; 8]], "segment that does not decode");
    check(&[segment(1, 0, 1, vec![0xff])], "not an EnclaveToEnclave");
    check(&[segment(1, 0, 1, Vec::new())], "empty message");
}
