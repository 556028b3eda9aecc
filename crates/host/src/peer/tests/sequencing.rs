//! Sequencing against a hand-driven peer: exact frames in, exact frames out.

use super::*;

#[tokio::test]
async fn the_receiver_delivers_each_sequence_number_once_and_starts_over_on_a_restart() {
    let mut bob = Host::start(2, fast()).await;
    let mut raw = RawPeer::dial(bob.addr(), 7, 42, 0).await;
    // A link opens with an Ack: where Bob's window stands (nothing from 7 yet).
    assert_eq!(raw.next_frame().await, Frame::Ack { seq: 0 });
    for (seq, bytes) in [(1, b"a"), (2, b"b"), (3, b"c")] {
        raw.data(seq, bytes).await;
    }
    assert_eq!(
        bob.messages(id(7), 3).await,
        [b"a", b"b", b"c"].map(|m| m.to_vec())
    );
    while raw.next_frame().await != (Frame::Ack { seq: 3 }) {}
    drop(raw);
    // The same process reconnects: Bob first says what it has, then drops the copies.
    let mut raw = RawPeer::dial(bob.addr(), 7, 42, 3).await;
    assert_eq!(raw.next_frame().await, Frame::Ack { seq: 3 });
    for (seq, bytes) in [(2, b"b"), (3, b"c"), (4, b"d")] {
        raw.data(seq, bytes).await;
    }
    assert_eq!(bob.messages(id(7), 1).await, vec![b"d".to_vec()]);
    assert_eq!(bob.counter(Counter::PeerDuplicates), 2);
    while raw.next_frame().await != (Frame::Ack { seq: 4 }) {}
    drop(raw);
    // A new process (incarnation) numbers from 1 again: delivered, and Bob's enclave is told
    // to reset the channel, since frames in flight may have been lost.
    let mut raw = RawPeer::dial(bob.addr(), 7, 43, 0).await;
    assert_eq!(raw.next_frame().await, Frame::Ack { seq: 0 });
    raw.data(1, b"fresh").await;
    let mut events = vec![bob.next_event().await, bob.next_event().await];
    events.sort_by_key(|event| matches!(event, PeerEvent::Message { .. }));
    let fresh = PeerEvent::Message {
        peer_id: id(7),
        data: b"fresh".to_vec(),
    };
    assert_eq!(events, vec![PeerEvent::Reset { peer_id: id(7) }, fresh]);
    assert_eq!(raw.next_frame().await, Frame::Ack { seq: 1 });
    assert_eq!(bob.counter(Counter::PeerDuplicates), 2);
    bob.stop().await;
}

#[tokio::test]
async fn the_sender_resends_unacknowledged_frames_in_order_after_a_reconnect() {
    let alice = Host::start(1, fast()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    alice
        .transport
        .add_address(id(7), listener.local_addr().unwrap())
        .unwrap();
    for message in [b"a", b"b", b"c"] {
        alice.transport.send(&[7; 32], message.to_vec()).unwrap();
    }
    let data = |seq: u64, bytes: &[u8]| Frame::Data {
        seq,
        bytes: bytes.to_vec(),
        ack: 0,
    };
    let mut raw = RawPeer::accept(&listener, 7, 42).await;
    assert_eq!(raw.next_frame().await, Frame::Ack { seq: 0 });
    assert_eq!(raw.next_frame().await, data(1, b"a"));
    assert_eq!(raw.next_frame().await, data(2, b"b"));
    assert_eq!(raw.next_frame().await, data(3, b"c"));
    raw.ack(1).await;
    eventually("Alice released frame 1", || {
        alice.transport.queued_frames(id(7)) == 2
    })
    .await;
    drop(raw);
    // Frames 2 and 3 were never acknowledged: Alice redials and sends them again, in order.
    let mut raw = RawPeer::accept(&listener, 7, 42).await;
    assert_eq!(raw.next_frame().await, Frame::Ack { seq: 0 });
    assert_eq!(raw.next_frame().await, data(2, b"b"));
    assert_eq!(raw.next_frame().await, data(3, b"c"));
    assert_eq!(alice.counter(Counter::PeerResends), 2);
    raw.ack(3).await;
    eventually("Alice released everything", || {
        alice.transport.queued_frames(id(7)) == 0
    })
    .await;
    alice.transport.send(&[7; 32], b"d".to_vec()).unwrap();
    assert_eq!(raw.next_frame().await, data(4, b"d"));
    assert_eq!(alice.counter(Counter::PeerReconnects), 1);
    alice.stop().await;
}
