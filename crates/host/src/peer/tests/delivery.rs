//! Delivery on healthy links: both ways, in order, exactly once, whoever dials.

use super::*;

#[tokio::test]
async fn delivers_both_ways_in_order() {
    let mut alice = Host::start(1, fast()).await;
    let mut bob = Host::start(2, fast()).await;
    alice.transport.add_address(bob.id(), bob.addr()).unwrap();
    let to_bob = numbered(1..=300);
    for message in &to_bob {
        alice.send(&bob, message);
    }
    assert_eq!(bob.messages(alice.id(), 300).await, to_bob);
    // Bob learned Alice's address from her Hello, and answers over the same link.
    assert_eq!(bob.transport.address(alice.id()), Some(alice.addr()));
    let to_alice = numbered(1..=200);
    for message in &to_alice {
        bob.send(&alice, message);
    }
    assert_eq!(alice.messages(bob.id(), 200).await, to_alice);
    eventually("everything acknowledged", || {
        alice.transport.queued_frames(bob.id()) == 0 && bob.transport.queued_frames(alice.id()) == 0
    })
    .await;
    assert_eq!(alice.transport.connected_peers(), vec![bob.id()]);
    assert_eq!(bob.transport.connected_peers(), vec![alice.id()]);
    assert_eq!(alice.metrics.peers_connected(), 1);
    assert_eq!(bob.counter(Counter::PeerMessagesDelivered), 300);
    assert_eq!(alice.counter(Counter::PeerMessagesDelivered), 200);
    for host in [&alice, &bob] {
        assert_eq!(host.counter(Counter::PeerDuplicates), 0);
        assert_eq!(host.counter(Counter::PeerResends), 0);
        assert_eq!(host.counter(Counter::PeerViolations), 0);
        assert!(host.counter(Counter::PeerFramesOut) >= 200);
        assert!(host.counter(Counter::PeerBytesIn) > host.counter(Counter::PeerFramesIn) * 4);
    }
    assert!(alice.is_quiet(Duration::from_millis(50)).await);
    alice.stop().await;
    bob.stop().await;
}

#[tokio::test]
async fn the_largest_message_and_an_empty_one_arrive_intact() {
    let alice = Host::start(1, fast()).await;
    let mut bob = Host::start(2, fast()).await;
    alice.transport.add_address(bob.id(), bob.addr()).unwrap();
    let largest: Vec<u8> = (0..DATA_BYTES_MAX)
        .map(|index| (index % 251) as u8)
        .collect();
    alice.send(&bob, &largest);
    alice.send(&bob, b"");
    alice.send(&bob, &largest[..1000]);
    let received = bob.messages(alice.id(), 3).await;
    assert_eq!(received[0], largest);
    assert!(received[1].is_empty());
    assert_eq!(received[2], largest[..1000]);
    assert_eq!(
        alice
            .transport
            .send(bob.id().as_bytes(), vec![0; DATA_BYTES_MAX + 1]),
        Err(SendRefusal::TooLarge(DATA_BYTES_MAX + 1))
    );
    alice.stop().await;
    bob.stop().await;
}

#[tokio::test]
async fn simultaneous_dials_settle_on_one_link_without_loss() {
    let mut alice = Host::start(1, fast()).await;
    let mut bob = Host::start(2, fast()).await;
    alice.transport.add_address(bob.id(), bob.addr()).unwrap();
    bob.transport.add_address(alice.id(), alice.addr()).unwrap();
    // Both sides have frames and an address, so both dial at once.
    let messages = numbered(1..=200);
    for message in &messages {
        alice.send(&bob, message);
        bob.send(&alice, message);
    }
    assert_eq!(bob.messages(alice.id(), 200).await, messages);
    assert_eq!(alice.messages(bob.id(), 200).await, messages);
    eventually("one link each way, everything acknowledged", || {
        alice.transport.connected_peers() == vec![bob.id()]
            && bob.transport.connected_peers() == vec![alice.id()]
            && alice.transport.queued_frames(bob.id()) == 0
            && bob.transport.queued_frames(alice.id()) == 0
    })
    .await;
    // Still one working link afterwards.
    alice.send(&bob, b"after");
    assert_eq!(bob.messages(alice.id(), 1).await, vec![b"after".to_vec()]);
    assert!(bob.is_quiet(Duration::from_millis(50)).await);
    alice.stop().await;
    bob.stop().await;
}

#[tokio::test]
async fn sends_are_refused_once_stopped_and_bad_peer_ids_are_refused() {
    let alice = Host::start(1, fast()).await;
    let transport = alice.transport.clone();
    assert_eq!(
        transport.send(&[1; 31], b"x".to_vec()),
        Err(SendRefusal::InvalidPeerId(31))
    );
    assert_eq!(
        transport.send(alice.id().as_bytes(), b"x".to_vec()),
        Err(SendRefusal::ToSelf)
    );
    assert!(matches!(
        transport.add_address(alice.id(), alice.addr()),
        Err(PeerError::SelfConnection(_))
    ));
    alice.stop().await;
    assert_eq!(
        transport.send(&[2; 32], b"x".to_vec()),
        Err(SendRefusal::ShuttingDown)
    );
    // Stopping twice is harmless, and the listener is gone.
    transport.shutdown().await;
    assert!(TcpStream::connect(transport.local_addr()).await.is_err());
}
