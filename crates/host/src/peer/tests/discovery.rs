//! Finding peers: discovery Hellos, `known_peers`, seeds from the configuration.

use super::*;

#[tokio::test]
async fn discovery_returns_the_peer_id_and_keeps_no_link() {
    let alice = Host::start(1, fast()).await;
    let bob = Host::start(2, fast()).await;
    assert_eq!(
        alice.transport.discover(bob.addr()).await.unwrap(),
        bob.id()
    );
    assert_eq!(alice.transport.address(bob.id()), Some(bob.addr()));
    // Bob learned Alice's announced address too, but neither keeps a link.
    eventually("Bob learned Alice", || {
        bob.transport.address(alice.id()) == Some(alice.addr())
    })
    .await;
    assert!(alice.transport.connected_peers().is_empty());
    assert!(bob.transport.connected_peers().is_empty());
    alice.stop().await;
    bob.stop().await;
}

#[tokio::test]
async fn discovery_failures_are_clear() {
    let alice = Host::start(1, fast()).await;
    assert!(matches!(
        alice.transport.discover(alice.addr()).await,
        Err(PeerError::SelfConnection(_))
    ));
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    assert!(matches!(
        alice.transport.discover(closed).await,
        Err(PeerError::Io { .. })
    ));
    // Something that is not a peer: it answers garbage, then hangs up.
    let impostor = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let impostor_addr = impostor.local_addr().unwrap();
    let answer = tokio::spawn(async move {
        let (mut stream, _) = impostor.accept().await.unwrap();
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    });
    let result = alice.transport.discover(impostor_addr).await;
    assert!(matches!(result, Err(PeerError::Violation(_))), "{result:?}");
    answer.await.unwrap();
    alice.stop().await;
}

#[tokio::test]
async fn addresses_spread_through_known_peers() {
    let alice = Host::start(1, fast()).await;
    let bob = Host::start(2, fast()).await;
    let mut carol = Host::start(3, fast()).await;
    // Bob knows Carol; Alice only knows Bob's address.
    bob.transport.add_address(carol.id(), carol.addr()).unwrap();
    assert_eq!(
        alice.transport.discover(bob.addr()).await.unwrap(),
        bob.id()
    );
    assert_eq!(alice.transport.address(carol.id()), Some(carol.addr()));
    // Enough to reach Carol, who learns Alice's address from her Hello.
    alice.send(&carol, b"hello carol");
    assert_eq!(
        carol.messages(alice.id(), 1).await,
        vec![b"hello carol".to_vec()]
    );
    assert_eq!(carol.transport.address(alice.id()), Some(alice.addr()));
    alice.stop().await;
    bob.stop().await;
    carol.stop().await;
}

#[tokio::test]
async fn seeds_are_resolved_once_they_answer() {
    let mut bob = Host::start(2, fast()).await;
    let carol = Host::start(3, fast()).await;
    bob.transport.add_address(carol.id(), carol.addr()).unwrap();
    // The second seed is not up yet: it is retried with backoff.
    let late = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let late_addr = late.local_addr().unwrap();
    drop(late);
    let alice = Host::start_with_seeds(1, fast(), vec![bob.addr(), late_addr]).await;
    eventually("Alice resolved Bob and heard of Carol", || {
        alice.transport.address(bob.id()) == Some(bob.addr())
            && alice.transport.address(carol.id()) == Some(carol.addr())
    })
    .await;
    let metrics = Arc::new(HostMetrics::default());
    let (dave, _dave_events) = PeerTransport::start(id(4), late_addr, vec![], fast(), metrics)
        .await
        .unwrap();
    eventually("Alice resolved the late seed", || {
        alice.transport.address(id(4)) == Some(late_addr)
    })
    .await;
    alice.send(&bob, b"seeded");
    assert_eq!(bob.messages(alice.id(), 1).await, vec![b"seeded".to_vec()]);
    dave.shutdown().await;
    alice.stop().await;
    bob.stop().await;
    carol.stop().await;
}
