//! Connections that only claim a peer's id (a Hello is not proof; only the enclaves' Noise
//! channel is): they may delay traffic while they are connected, and never take a working
//! link away or leave the real peer's stream broken after they leave.

use super::*;

impl RawPeer {
    /// Reads until the transport closes the connection; false if it stays open for [`WAIT`].
    async fn closed_by_remote(&mut self) -> bool {
        let mut sink = Vec::new();
        let read = tokio::time::timeout(WAIT, self.stream.read_to_end(&mut sink)).await;
        matches!(read, Ok(Ok(_)) | Ok(Err(_)))
    }
}

// Host peer transport: "a connection never replaces a peer's working link". A burst of
// impostors claiming Alice (new incarnations, and Alice's own) while Alice's link to Bob
// works: each is refused once that link answers a probe, and nothing they send reaches
// Bob's enclave, which is never told to reset.
#[tokio::test]
async fn impostors_cannot_displace_a_working_link() {
    let mut alice = Host::start(1, fast()).await;
    let mut bob = Host::start(2, fast()).await;
    alice.transport.add_address(bob.id(), bob.addr()).unwrap();
    alice.send(&bob, b"m1");
    assert_eq!(bob.messages(alice.id(), 1).await, vec![b"m1".to_vec()]);
    let incarnations = [1, 2, alice.transport.incarnation()];
    for (round, incarnation) in incarnations.into_iter().enumerate() {
        let mut impostor = RawPeer::dial(bob.addr(), 1, incarnation, 1 << 40).await;
        impostor.data(1 << 40, b"garbage").await;
        assert!(impostor.closed_by_remote().await, "impostor {round}");
        let message = format!("after impostor {round}");
        alice.send(&bob, message.as_bytes());
        assert_eq!(
            bob.messages(alice.id(), 1).await,
            vec![message.into_bytes()]
        );
    }
    bob.send(&alice, b"back");
    assert_eq!(alice.messages(bob.id(), 1).await, vec![b"back".to_vec()]);
    for host in [&alice, &bob] {
        assert_eq!(host.counter(Counter::PeerResets), 0);
        assert_eq!(
            host.counter(Counter::PeerReconnects),
            0,
            "the link never moved"
        );
        assert_eq!(host.counter(Counter::PeerFramesDropped), 0);
    }
    assert!(bob.is_quiet(Duration::from_millis(50)).await);
    alice.stop().await;
    bob.stop().await;
}

// Host peer transport: an impostor that gets in while no link is up (claiming Alice's own
// incarnation) can push Bob's window for Alice far ahead and acknowledge Bob's frames for
// her. When Alice comes back, her Hello takes the window back (her frames are not dropped as
// duplicates) and her first Ack shows what Bob released in vain (his enclave is told).
#[tokio::test]
async fn the_real_peer_repairs_what_an_impostor_did_between_links() {
    let mut alice = Host::start(1, fast()).await;
    let mut bob = Host::start(2, fast()).await;
    let proxy = Proxy::start(bob.addr()).await;
    alice.transport.add_address(bob.id(), proxy.addr).unwrap();
    alice.send(&bob, b"a1");
    assert_eq!(bob.messages(alice.id(), 1).await, vec![b"a1".to_vec()]);
    bob.send(&alice, b"b1");
    assert_eq!(alice.messages(bob.id(), 1).await, vec![b"b1".to_vec()]);
    eventually("everything acknowledged", || {
        alice.transport.queued_frames(bob.id()) == 0 && bob.transport.queued_frames(alice.id()) == 0
    })
    .await;
    proxy.cut();
    eventually("the link is gone", || {
        bob.transport.connected_peers().is_empty()
    })
    .await;

    let incarnation = alice.transport.incarnation();
    let mut impostor = RawPeer::dial(bob.addr(), 1, incarnation, 0).await;
    // (Its Hello says nothing was sent: Bob's window for Alice goes back to 0, too.)
    assert_eq!(impostor.next_frame().await, Frame::Ack { seq: 0 });
    bob.send(&alice, b"b2");
    assert_eq!(
        impostor.next_frame().await,
        Frame::Data {
            seq: 2,
            bytes: b"b2".to_vec(),
            ack: 0,
        }
    );
    impostor.ack(2).await;
    eventually("Bob released b2", || {
        bob.transport.queued_frames(alice.id()) == 0
    })
    .await;
    let far = 1 << 40;
    impostor.data(far, b"junk").await;
    assert_eq!(bob.messages(alice.id(), 1).await, vec![b"junk".to_vec()]);
    drop(impostor);

    // Alice is back: a3 is delivered, not taken for a copy of something before `far`.
    alice.send(&bob, b"a3");
    let mut events = vec![bob.next_event().await, bob.next_event().await];
    events.sort_by_key(|event| matches!(event, PeerEvent::Message { .. }));
    let a3 = PeerEvent::Message {
        peer_id: alice.id(),
        data: b"a3".to_vec(),
    };
    assert_eq!(
        events,
        vec![
            PeerEvent::Reset {
                peer_id: alice.id()
            },
            a3
        ]
    );
    assert_eq!(bob.counter(Counter::PeerFramesDropped), 1, "b2 was lost");
    eventually("a3 acknowledged", || {
        alice.transport.queued_frames(bob.id()) == 0
    })
    .await;
    // Bob's stream to Alice goes on past the gap.
    bob.send(&alice, b"b3");
    assert_eq!(alice.messages(bob.id(), 1).await, vec![b"b3".to_vec()]);
    assert_eq!(alice.counter(Counter::PeerViolations), 0);
    assert_eq!(alice.counter(Counter::PeerResets), 0);
    proxy.stop();
    alice.stop().await;
    bob.stop().await;
}

// Host peer transport: a peer whose host vanished leaves a link that stays open but silent.
// When it comes back as a new process, the probe of that link goes unanswered, and the new
// connection replaces it within `probe_timeout` (idle links here end only after far longer
// than any wait of these tests).
#[tokio::test]
async fn a_restarted_peer_replaces_a_silent_link_once_its_probe_times_out() {
    let patient = PeerSettings {
        idle_timeout: WAIT * 4,
        ..fast()
    };
    let old_alice = Host::start(1, patient.clone()).await;
    let mut bob = Host::start(2, patient.clone()).await;
    let proxy = Proxy::start(bob.addr()).await;
    old_alice
        .transport
        .add_address(bob.id(), proxy.addr)
        .unwrap();
    old_alice.send(&bob, b"old");
    assert_eq!(bob.messages(old_alice.id(), 1).await, vec![b"old".to_vec()]);
    // Nothing from Bob reaches the old process any more (its probe included).
    proxy.mute_replies();
    let mut alice = Host::start(1, patient).await;
    alice.transport.add_address(bob.id(), bob.addr()).unwrap();
    alice.send(&bob, b"new");
    let mut events = vec![bob.next_event().await, bob.next_event().await];
    events.sort_by_key(|event| matches!(event, PeerEvent::Message { .. }));
    let new = PeerEvent::Message {
        peer_id: alice.id(),
        data: b"new".to_vec(),
    };
    assert_eq!(
        events,
        vec![
            PeerEvent::Reset {
                peer_id: alice.id()
            },
            new
        ]
    );
    bob.send(&alice, b"hello again");
    assert_eq!(
        alice.messages(bob.id(), 1).await,
        vec![b"hello again".to_vec()]
    );
    proxy.stop();
    old_alice.stop().await;
    alice.stop().await;
    bob.stop().await;
}
