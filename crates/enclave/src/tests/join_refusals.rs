//! What a joiner refuses while streaming (crates/enclave/src/join/stream.rs), and what the
//! source refuses to serve: each bad push ends the join, leaves the joiner as before
//! JoinRaft, and a second JoinRaft succeeds. The bad pushes are a good answer built by the
//! source with one field changed.

use cloister_proto::e2e::{ReplicateStatePush, ReplicateStateRequest};
use cloister_proto::enclave::{ErrorCode, host_to_enclave_response::Inner as Answer};

use super::join_net::{
    JOINER, Net, OTHER, SMALL, SOURCE, SmallPushes, backup, inject, key, next_answer, paused,
};
use crate::join::cursor::Cursor;
use crate::join::{PushLimits, REPLICATE_PUSHES_PER_REQUEST, set_test_push_limits};

/// The join ended with `phrase`, and the joiner is as it was before JoinRaft. Then the
/// `held` requests reach the source, whose pushes now find no stream and change nothing,
/// and JoinRaft again succeeds.
fn assert_refused_then_rejoin(net: &mut Net, request_id: u64, held: u64, phrase: &str) {
    let Some(Answer::Error(error)) = net.answer(JOINER, request_id) else {
        panic!("the join was not answered with an error");
    };
    assert_eq!(
        error.code(),
        ErrorCode::InvalidArgument,
        "{}",
        error.message
    );
    assert!(error.message.contains(phrase), "{}", error.message);
    let unchanged = |net: &Net| {
        let joiner = &net.nodes[JOINER].enclave;
        joiner.group.is_none()
            && !joiner.joining
            && joiner.db.is_empty()
            && joiner.join_stream().is_none()
    };
    assert!(unchanged(net));
    let refused = net.refused_frames(JOINER);
    net.held.clear();
    net.settle();
    assert_eq!(
        net.refused_frames(JOINER),
        refused + held * u64::from(REPLICATE_PUSHES_PER_REQUEST),
        "the answers to the held requests are refused ({phrase})"
    );
    assert!(unchanged(net));
    let retry = net.join();
    net.settle();
    assert!(matches!(net.answer(JOINER, retry), Some(Answer::Done(_))));
    assert!(net.hashes_equal());
}

#[test]
fn the_next_answer_built_by_hand_is_accepted() {
    // The good vector the refusal tests below change one field of.
    let _small = SmallPushes::new();
    let (mut net, _, view) = paused(140);
    let answer = next_answer(&net, &view);
    assert!(answer[0].rows.is_empty() && !answer[1].rows.is_empty());
    inject(&mut net, SOURCE, &view, &answer);
    let after = net.nodes[JOINER].enclave.join_stream().unwrap();
    assert_eq!(
        after.pushes_loaded,
        view.pushes_loaded + answer.len() as u64
    );
    assert!(after.rows > view.rows);
    // Its first push sent the request after it, held with the first.
    assert_eq!(after.requests_in_flight, 1);
    assert_eq!(net.queues[&(JOINER, SOURCE)].len(), 2);
}

/// One push of the next answer made bad: the pushes before it go in as built, then it.
struct BadPush {
    /// Commit writes on the source first, so the answer carries entries.
    writes: bool,
    /// Limits the source builds with (the joiner checks with `SMALL`).
    limits: PushLimits,
    /// Which push of the answer is changed and sent last.
    target: usize,
    change: fn(&mut [ReplicateStatePush]),
    phrase: &'static str,
    /// Requests held when the push is refused: the paused one, and the one the answer's
    /// first push sends unless it said the stream ends.
    held: u64,
}

const fn bad(
    target: usize,
    change: fn(&mut [ReplicateStatePush]),
    phrase: &'static str,
) -> BadPush {
    BadPush {
        writes: false,
        limits: SMALL,
        target,
        change,
        phrase,
        held: if target == 0 { 1 } else { 2 },
    }
}

const fn with_writes(bad: BadPush) -> BadPush {
    BadPush {
        writes: true,
        ..bad
    }
}

const BAD_PUSHES: &[BadPush] = &[
    bad(0, |answer| answer[0].sequence -= 1, "arrived again"),
    bad(0, |answer| answer[0].sequence += 1, "out of order"),
    bad(
        0,
        |answer| answer[0].rows = answer[1].rows.clone(),
        "opens its answer with rows",
    ),
    BadPush {
        limits: PushLimits {
            rows_bytes_max: 2 * SMALL.rows_bytes_max,
            ..SMALL
        },
        ..bad(1, |_| {}, "bytes of rows")
    },
    with_writes(BadPush {
        limits: PushLimits {
            entries_bytes_max: 1 << 20,
            ..SMALL
        },
        ..bad(0, |_| {}, "bytes of entries")
    }),
    bad(1, |answer| answer[1].rows.swap(0, 1), "not in key order"),
    bad(
        1,
        |answer| {
            let elsewhere = Cursor {
                since_index: answer[1].applied_index,
                last_key: Some([0xff; 16]),
            };
            answer[1].cursor = elsewhere.encode();
        },
        "cursor is elsewhere",
    ),
    with_writes(bad(
        0,
        |answer| {
            answer[0].entries.remove(0);
        },
        "after index",
    )),
    with_writes(bad(
        0,
        |answer| answer[0].entries[0] = vec![0xff; 3],
        "does not decode",
    )),
    bad(0, |answer| answer[0].done = true, "said continues"),
    bad(
        1,
        |answer| answer[1].batch_cursor = answer[0].cursor.clone(),
        "disagrees with its answer's first push",
    ),
    bad(
        2,
        |answer| {
            let middle = answer[1].cursor.clone();
            answer
                .iter_mut()
                .for_each(|push| push.batch_cursor = middle.clone());
        },
        "away from the announced end",
    ),
    BadPush {
        held: 1,
        ..bad(
            2,
            |answer| answer.iter_mut().for_each(|push| push.batch_done = true),
            "said the stream ends in it",
        )
    },
];

#[test]
fn bad_pushes_end_the_join_and_leave_the_joiner_as_it_was() {
    let _small = SmallPushes::new();
    for (case, bad) in BAD_PUSHES.iter().enumerate() {
        let (mut net, request_id, mut view) = paused(150 + case as u8);
        if bad.writes {
            for index in 0..12 {
                net.write(key(index), backup(index, 3));
            }
            net.settle();
            view = net.nodes[JOINER].enclave.join_stream().unwrap();
        }
        set_test_push_limits(Some(bad.limits));
        let mut answer = next_answer(&net, &view);
        set_test_push_limits(Some(SMALL));
        (bad.change)(&mut answer);
        inject(&mut net, SOURCE, &view, &answer[..=bad.target]);
        assert_refused_then_rejoin(&mut net, request_id, bad.held, bad.phrase);
    }
}

#[test]
fn a_push_from_another_peer_or_after_the_stream_is_refused_and_changes_nothing() {
    let _small = SmallPushes::new();
    let (mut net, request_id, view) = paused(180);
    // A bystander answers the stream's transaction with pushes that would be good from the
    // source.
    let answer = next_answer(&net, &view);
    let refused = net.refused_frames(JOINER);
    inject(&mut net, OTHER, &view, &answer);
    assert_eq!(net.refused_frames(JOINER), refused + answer.len() as u64);
    assert_eq!(net.nodes[JOINER].enclave.join_stream(), Some(view));
    // The stream carries on and completes.
    net.held.clear();
    net.settle();
    assert!(matches!(
        net.answer(JOINER, request_id),
        Some(Answer::Done(_))
    ));
    assert!(net.hashes_equal());
    // A push for the finished stream finds nothing to load into.
    let hash = net.nodes[JOINER].enclave.db.hash();
    let refused = net.refused_frames(JOINER);
    inject(&mut net, SOURCE, &view, &answer[..1]);
    assert_eq!(net.refused_frames(JOINER), refused + 1);
    assert_eq!(net.nodes[JOINER].enclave.db.hash(), hash);
}

#[test]
fn a_source_that_falls_silent_ends_the_join_and_a_retry_succeeds() {
    let _small = SmallPushes::new();
    let (mut net, request_id, _) = paused(190);
    // The held request never arrives; the stream's deadline passes.
    net.tick(crate::transactions::TRANSACTION_TIMEOUT_SECS as usize + 1);
    let Some(Answer::Error(error)) = net.answer(JOINER, request_id) else {
        panic!("the join did not time out");
    };
    assert_eq!(error.code(), ErrorCode::Unavailable, "{}", error.message);
    assert!(net.nodes[JOINER].enclave.db.is_empty());
    net.held.clear();
    let retry = net.join();
    net.settle();
    assert!(matches!(net.answer(JOINER, retry), Some(Answer::Done(_))));
    assert!(net.hashes_equal());
}

#[test]
fn the_source_refuses_bad_requests_and_sends_nothing() {
    let _small = SmallPushes::new();
    let (mut net, _, view) = paused(200);
    let joiner = net.peer_id(JOINER);
    let stranger = net.peer_id(OTHER);
    let good = ReplicateStateRequest {
        cursor: view.cursor.encode(),
        pushes: REPLICATE_PUSHES_PER_REQUEST,
        sequence: view.pushes_loaded,
    };
    let asking = |pushes| ReplicateStateRequest {
        pushes,
        ..good.clone()
    };
    let cases = [
        (joiner, asking(0), ErrorCode::InvalidArgument),
        // A first push carries no rows: one push would never move the stream on.
        (joiner, asking(1), ErrorCode::InvalidArgument),
        (
            joiner,
            asking(REPLICATE_PUSHES_PER_REQUEST + 1),
            ErrorCode::InvalidArgument,
        ),
        (
            joiner,
            ReplicateStateRequest {
                cursor: vec![1; 9],
                ..good.clone()
            },
            ErrorCode::InvalidArgument,
        ),
        (stranger, good.clone(), ErrorCode::FailedPrecondition),
    ];
    let source = &mut net.nodes[SOURCE].enclave;
    let queued = source.outbox_len();
    for (peer, request, code) in cases {
        let error = source
            .serve_replicate_state(peer, 77, &request)
            .unwrap_err();
        assert_eq!(error.code(), code, "{error}");
        assert_eq!(source.outbox_len(), queued, "nothing sent");
    }
    // The good request is answered with as many pushes as asked.
    source.serve_replicate_state(joiner, 77, &good).unwrap();
    assert!(source.outbox_len() >= queued + REPLICATE_PUSHES_PER_REQUEST as usize);
}
