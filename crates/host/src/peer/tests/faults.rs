//! Failures: cut connections, restarts, full buffers, unreachable peers, garbage.

use cloister_proto::transport::{self as proto, transport_frame::Kind};

use super::*;
use crate::peer::wire;

#[tokio::test]
async fn a_cut_connection_reconnects_and_resends_without_loss_or_duplicates() {
    let alice = Host::start(1, fast()).await;
    let mut bob = Host::start(2, fast()).await;
    let proxy = Proxy::start(bob.addr()).await;
    alice.transport.add_address(bob.id(), proxy.addr).unwrap();
    let messages = numbered(1..=150);
    for message in &messages[..50] {
        alice.send(&bob, message);
    }
    assert_eq!(bob.messages(alice.id(), 50).await, messages[..50]);
    eventually("the first 50 acknowledged", || {
        alice.transport.queued_frames(bob.id()) == 0
    })
    .await;
    // Bob's acknowledgements stop reaching Alice: the next 50 arrive but stay queued.
    proxy.mute_replies();
    for message in &messages[50..100] {
        alice.send(&bob, message);
    }
    assert_eq!(bob.messages(alice.id(), 50).await, messages[50..100]);
    assert_eq!(alice.transport.queued_frames(bob.id()), 50);
    // Cut mid-stream: Alice redials through the proxy and resends whatever is still
    // unacknowledged (Bob's first Ack on the new link may already release some of it; the
    // rest arrives twice and Bob drops the copies: see the `sequencing` tests).
    proxy.cut();
    for message in &messages[100..] {
        alice.send(&bob, message);
    }
    assert_eq!(bob.messages(alice.id(), 50).await, messages[100..]);
    eventually("everything acknowledged after the reconnect", || {
        alice.transport.queued_frames(bob.id()) == 0
    })
    .await;
    assert!(
        bob.is_quiet(Duration::from_millis(100)).await,
        "no duplicate delivered"
    );
    assert!(alice.counter(Counter::PeerReconnects) >= 1);
    assert_eq!(bob.counter(Counter::PeerMessagesDelivered), 150);
    assert_eq!(alice.counter(Counter::PeerResets), 0, "nothing was lost");
    proxy.stop();
    alice.stop().await;
    bob.stop().await;
}

#[tokio::test]
async fn a_restarted_peer_starts_over_and_the_enclave_is_told() {
    let mut alice = Host::start(1, fast()).await;
    let mut bob = Host::start(2, fast()).await;
    alice.transport.add_address(bob.id(), bob.addr()).unwrap();
    for message in numbered(1..=5) {
        alice.send(&bob, &message);
        bob.send(&alice, &message);
    }
    assert_eq!(bob.messages(alice.id(), 5).await, numbered(1..=5));
    assert_eq!(alice.messages(bob.id(), 5).await, numbered(1..=5));
    eventually("everything acknowledged", || {
        alice.transport.queued_frames(bob.id()) == 0
    })
    .await;
    let bob_id = bob.id();
    bob.stop().await;
    // Queued while Bob is down; lost when he comes back as a new process.
    for message in numbered(6..=8) {
        alice.transport.send(bob_id.as_bytes(), message).unwrap();
    }
    let mut bob = Host::start(2, fast()).await;
    assert_ne!(bob.transport.incarnation(), 0);
    alice.transport.add_address(bob.id(), bob.addr()).unwrap();
    assert_eq!(
        alice.next_event().await,
        PeerEvent::Reset { peer_id: bob.id() }
    );
    alice.send(&bob, b"m9");
    assert_eq!(bob.messages(alice.id(), 1).await, vec![b"m9".to_vec()]);
    // The new Bob numbers from 1 again, and Alice delivers it rather than calling it a
    // duplicate of the old Bob's first message.
    bob.send(&alice, b"fresh");
    assert_eq!(alice.messages(bob.id(), 1).await, vec![b"fresh".to_vec()]);
    assert_eq!(alice.counter(Counter::PeerFramesDropped), 3);
    assert_eq!(alice.counter(Counter::PeerDuplicates), 0);
    alice.stop().await;
    bob.stop().await;
}

#[tokio::test]
async fn a_full_buffer_refuses_and_resets_the_peer_once() {
    let settings = PeerSettings {
        send_buffer_frames_max: 4,
        ..fast()
    };
    let mut alice = Host::start(1, settings).await;
    let mut bob = Host::start(2, fast()).await;
    // Bob's address is unknown: frames pile up.
    for message in numbered(1..=4) {
        alice.send(&bob, &message);
    }
    let refused = alice.transport.send(bob.id().as_bytes(), b"m5".to_vec());
    assert_eq!(refused, Err(SendRefusal::BufferFull { dropped: 4 }));
    assert_eq!(
        alice.next_event().await,
        PeerEvent::Reset { peer_id: bob.id() }
    );
    assert_eq!(alice.counter(Counter::PeerSendRefusals), 1);
    assert_eq!(alice.counter(Counter::PeerFramesDropped), 4);
    assert_eq!(alice.counter(Counter::PeerResets), 1);
    // The re-handshake finds an empty queue, and flows once Bob is reachable.
    alice.send(&bob, b"syn");
    alice.transport.add_address(bob.id(), bob.addr()).unwrap();
    assert_eq!(bob.messages(alice.id(), 1).await, vec![b"syn".to_vec()]);
    assert!(
        alice.is_quiet(Duration::from_millis(50)).await,
        "one reset only"
    );
    alice.stop().await;
    bob.stop().await;
}

#[tokio::test]
async fn an_unreachable_peer_is_abandoned_with_a_reset_and_retried_on_the_next_send() {
    let settings = PeerSettings {
        abandon_after: Duration::from_millis(300),
        ..fast()
    };
    let mut alice = Host::start(1, settings).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let nobody = id(9);
    alice.transport.add_address(nobody, closed).unwrap();
    alice
        .transport
        .send(nobody.as_bytes(), b"m1".to_vec())
        .unwrap();
    assert_eq!(
        alice.next_event().await,
        PeerEvent::Reset { peer_id: nobody }
    );
    assert_eq!(alice.counter(Counter::PeerAbandons), 1);
    assert_eq!(alice.transport.queued_frames(nobody), 0);
    assert_eq!(
        alice.transport.address(nobody),
        Some(closed),
        "the address is kept"
    );
    let failures = alice.counter(Counter::PeerDialFailures);
    assert!(failures >= 1);
    // Abandoned: no more attempts until the enclave sends again.
    assert!(alice.is_quiet(Duration::from_millis(400)).await);
    assert_eq!(alice.counter(Counter::PeerDialFailures), failures);
    alice
        .transport
        .send(nobody.as_bytes(), b"m2".to_vec())
        .unwrap();
    assert_eq!(
        alice.next_event().await,
        PeerEvent::Reset { peer_id: nobody }
    );
    assert!(alice.counter(Counter::PeerDialFailures) > failures);
    assert_eq!(alice.counter(Counter::PeerAbandons), 2);
    alice.stop().await;
}

/// Connects a raw client to `addr`, writes `bytes`, and says whether the transport closed
/// the connection (rather than leaving it open).
async fn closed_after(addr: SocketAddr, bytes: &[u8], half_close: bool) -> bool {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    if half_close {
        stream.shutdown().await.unwrap();
    }
    let mut sink = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut sink)).await;
    matches!(read, Ok(Ok(_)) | Ok(Err(_)))
}

fn raw_hello(byte: u8) -> Vec<u8> {
    let hello = wire::Hello {
        peer_id: id(byte),
        listen_addr: None,
        incarnation: 5,
        known_peers: vec![],
        discovery_only: false,
        sent_through: 0,
    };
    wire::encode_hello(&hello)
}

#[tokio::test]
async fn garbage_is_refused_and_the_good_peer_is_still_served() {
    let alice = Host::start(1, fast()).await;
    let mut bob = Host::start(2, fast()).await;
    alice.transport.add_address(bob.id(), bob.addr()).unwrap();
    alice.send(&bob, b"before");
    assert_eq!(bob.messages(alice.id(), 1).await, vec![b"before".to_vec()]);
    let data_before_hello = wire::encode(Kind::Data(proto::Data {
        seq: 1,
        bytes: b"x".to_vec(),
        ack: 0,
    }));
    let bad_after_hello = [
        raw_hello(3),
        wire::encode(Kind::Data(proto::Data {
            seq: 0,
            bytes: vec![],
            ack: 0,
        })),
    ]
    .concat();
    let unsent_ack = [raw_hello(4), wire::encode(Kind::Ack(proto::Ack { seq: 9 }))].concat();
    let cases: [(&str, Vec<u8>, bool); 7] = [
        ("http", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), false),
        ("oversized", u32::MAX.to_be_bytes().to_vec(), false),
        ("oversized hello", 100_000u32.to_be_bytes().to_vec(), false),
        (
            "truncated",
            [&100u32.to_be_bytes()[..], &[1; 10]].concat(),
            true,
        ),
        ("data before hello", data_before_hello, false),
        ("invalid data after hello", bad_after_hello, false),
        ("ack for nothing sent", unsent_ack, false),
    ];
    for (name, bytes, half_close) in cases {
        assert!(
            closed_after(alice.addr(), &bytes, half_close).await,
            "{name}"
        );
        alice.send(&bob, name.as_bytes());
        assert_eq!(
            bob.messages(alice.id(), 1).await,
            vec![name.as_bytes().to_vec()]
        );
    }
    assert_eq!(alice.counter(Counter::PeerViolations), 7);
    eventually("only Bob stays linked", || {
        alice.transport.connected_peers() == vec![bob.id()]
    })
    .await;
    bob.send(&alice, b"after");
    let mut alice = alice;
    assert_eq!(alice.messages(bob.id(), 1).await, vec![b"after".to_vec()]);
    alice.stop().await;
    bob.stop().await;
}
