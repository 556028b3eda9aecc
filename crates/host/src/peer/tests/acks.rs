//! Acknowledgements: carried by Data frames when there is an answer, written alone when
//! there is none after `ack_delay`, or at once past a bound (see `ack.rs`).

use super::*;
use crate::peer::ack::ACK_PENDING_FRAMES_MAX;

/// A delay long enough that whatever the test does next happens before it ends.
const SLOW_ACKS: Duration = Duration::from_secs(1);

fn slow_acks() -> PeerSettings {
    PeerSettings {
        ack_delay: SLOW_ACKS,
        ..fast()
    }
}

// Host peer transport: "a receiver holds its acknowledgement back so that its own next Data
// frame carries it". Bob answers each message, and the answer is the only frame he writes.
#[tokio::test]
async fn an_answer_carries_the_acknowledgement() {
    let mut bob = Host::start(2, slow_acks()).await;
    let mut raw = RawPeer::dial(bob.addr(), 7, 42, 0).await;
    assert_eq!(raw.next_frame().await, Frame::Ack { seq: 0 });
    for seq in 1..=3u64 {
        let question = format!("question {seq}");
        raw.data(seq, question.as_bytes()).await;
        assert_eq!(bob.messages(id(7), 1).await, vec![question.into_bytes()]);
        bob.transport.send(&[7; 32], b"answer".to_vec()).unwrap();
        let answer = Frame::Data {
            seq,
            bytes: b"answer".to_vec(),
            ack: seq,
        };
        assert_eq!(raw.next_frame().await, answer, "no Ack frame before it");
        raw.ack(seq).await;
    }
    eventually("Bob released his answers", || {
        bob.transport.queued_frames(id(7)) == 0
    })
    .await;
    bob.stop().await;
}

// Host peer transport: with nothing to answer, the acknowledgement goes out alone once the
// delay passes (a probe answered meanwhile shows it was held back), and at once when
// ACK_PENDING_FRAMES_MAX frames wait for one.
#[tokio::test]
async fn without_an_answer_a_standalone_ack_follows_the_delay_or_the_bound() {
    let mut bob = Host::start(2, slow_acks()).await;
    let mut raw = RawPeer::dial(bob.addr(), 7, 42, 0).await;
    assert_eq!(raw.next_frame().await, Frame::Ack { seq: 0 });
    let ping = |probe| {
        wire::encode(cloister_proto::transport::transport_frame::Kind::Ping(
            cloister_proto::transport::Ping { probe },
        ))
    };
    raw.data(1, b"one").await;
    raw.write(&ping(5)).await;
    assert_eq!(bob.messages(id(7), 1).await, vec![b"one".to_vec()]);
    assert_eq!(raw.next_frame().await, Frame::Pong { probe: 5 });
    assert_eq!(raw.next_frame().await, Frame::Ack { seq: 1 });
    let last = 1 + ACK_PENDING_FRAMES_MAX;
    for seq in 2..=last {
        raw.data(seq, b"more").await;
    }
    raw.write(&ping(6)).await;
    let pending = ACK_PENDING_FRAMES_MAX as usize;
    assert_eq!(bob.messages(id(7), pending).await.len(), pending);
    assert_eq!(raw.next_frame().await, Frame::Ack { seq: last });
    assert_eq!(raw.next_frame().await, Frame::Pong { probe: 6 });
    bob.stop().await;
}

// Host peer transport: a sender whose buffer is full gets its acknowledgements though the
// receiver never answers and the buffer is far below ACK_PENDING_FRAMES_MAX: the delay
// alone frees it, and sending goes on without a refusal.
#[tokio::test]
async fn a_full_send_buffer_drains_without_traffic_the_other_way() {
    let small = PeerSettings {
        send_buffer_frames_max: 4,
        ..fast()
    };
    let alice = Host::start(1, small).await;
    let mut bob = Host::start(2, slow_acks()).await;
    alice.transport.add_address(bob.id(), bob.addr()).unwrap();
    let messages = numbered(1..=12);
    for chunk in messages.chunks(4) {
        for message in chunk {
            alice.send(&bob, message);
        }
        assert_eq!(bob.messages(alice.id(), 4).await, chunk);
        eventually("Bob's delayed Ack freed Alice's buffer", || {
            alice.transport.queued_frames(bob.id()) == 0
        })
        .await;
    }
    assert_eq!(alice.counter(Counter::PeerSendRefusals), 0);
    assert_eq!(alice.counter(Counter::PeerResets), 0);
    alice.stop().await;
    bob.stop().await;
}

// Host peer transport: request and answer between two hosts cost one frame per message on
// each side (plus each link's opening Ack), where every message used to cost an Ack frame
// too.
#[tokio::test]
async fn request_and_answer_cost_one_frame_each() {
    let quiet = PeerSettings {
        ping_interval: WAIT,
        idle_timeout: WAIT * 2,
        ack_delay: SLOW_ACKS,
        ..fast()
    };
    let mut alice = Host::start(1, quiet.clone()).await;
    let mut bob = Host::start(2, quiet).await;
    alice.transport.add_address(bob.id(), bob.addr()).unwrap();
    let rounds = 50;
    for round in 0..rounds {
        let request = format!("request {round}").into_bytes();
        alice.send(&bob, &request);
        assert_eq!(bob.messages(alice.id(), 1).await, vec![request]);
        let answer = format!("answer {round}").into_bytes();
        bob.send(&alice, &answer);
        assert_eq!(alice.messages(bob.id(), 1).await, vec![answer]);
    }
    for host in [&alice, &bob] {
        let written = host.counter(Counter::PeerFramesOut);
        // Hello, the opening Ack, one Data per round; Alice's last answer is acknowledged
        // alone (after the delay, perhaps not yet).
        assert!(
            written <= rounds + 3,
            "{written} frames for {rounds} messages"
        );
    }
    alice.stop().await;
    bob.stop().await;
}
