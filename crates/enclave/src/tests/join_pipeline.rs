//! The `ReplicateState` pipeline (crates/enclave/src/join) through the door: a join that
//! streams many pushes, writes committing while it streams, and more than one push in
//! flight.

use cloister_proto::enclave::host_to_enclave_response::Inner as Answer;

use super::join_net::{JOINER, Net, SmallPushes, backup, key};
use crate::join::{
    REPLICATE_PUSHES_IN_FLIGHT_MAX, REPLICATE_PUSHES_PER_REQUEST, REPLICATE_REQUESTS_IN_FLIGHT_MAX,
};

#[test]
fn a_join_streams_many_pushes_and_ends_with_the_sources_database() {
    let _small = SmallPushes::new();
    let mut net = Net::with_rows(110, 300);
    let request_id = net.join();
    net.settle();
    assert!(matches!(
        net.answer(JOINER, request_id),
        Some(Answer::Done(_))
    ));
    let joiner = &net.nodes[JOINER].enclave;
    assert!(joiner.group.is_some());
    assert_eq!(joiner.db.len(), 300);
    assert!(net.hashes_equal());
    // 300 rows of 83 bytes, 1,000 bytes a push: at least 25 pushes.
    assert!(
        joiner.counters.replicate_state_pushes >= 25,
        "{} pushes",
        joiner.counters.replicate_state_pushes
    );
    assert!(net.nodes[JOINER].enclave.join_stream().is_none());
}

#[test]
fn writes_committed_while_streaming_reach_the_joiner() {
    let _small = SmallPushes::new();
    let mut net = Net::with_rows(120, 240);
    let request_id = net.join();
    let first = net.stream_until(1);
    let mut step = 0u64;
    while net.answers[JOINER].iter().all(|(id, _)| *id != request_id) {
        if step < 30 {
            net.write_burst(step);
            step += 1;
        }
        assert!(net.round() > 0, "the stream stalled");
    }
    assert!(matches!(
        net.answer(JOINER, request_id),
        Some(Answer::Done(_))
    ));
    assert_eq!(
        step, 30,
        "every burst was written while the joiner streamed"
    );
    let last = net.views.last().unwrap().cursor.since_index;
    assert!(
        last > first.cursor.since_index + 30 * 8,
        "entries streamed: from index {} to {last}",
        first.cursor.since_index
    );
    assert!(net.hashes_equal(), "the joiner missed or doubled a write");
    // After loading, Raft carries on from the streamed index.
    net.tick(3);
    for index in 0..20 {
        net.write(key(index), backup(index, 99));
    }
    net.tick(3);
    assert!(
        net.hashes_equal(),
        "the joiner did not follow the log after loading"
    );
}

#[test]
fn the_pipeline_keeps_more_than_one_push_in_flight() {
    let _small = SmallPushes::new();
    let mut net = Net::with_rows(130, 400);
    let request_id = net.join();
    net.stream_until(1);
    let rounds = net.settle();
    assert!(matches!(
        net.answer(JOINER, request_id),
        Some(Answer::Done(_))
    ));
    assert!(net.hashes_equal());
    let pushes = net.nodes[JOINER].enclave.counters.replicate_state_pushes;
    let most_pushes = net.views.iter().map(|v| v.pushes_in_flight).max().unwrap();
    let most_requests = net
        .views
        .iter()
        .map(|v| v.requests_in_flight)
        .max()
        .unwrap();
    // The next request leaves once an answer's first push is loaded: the rest of that
    // answer and the whole next one are in flight.
    assert!(most_pushes > 1, "never more than one push in flight");
    assert_eq!(most_pushes, 2 * u64::from(REPLICATE_PUSHES_PER_REQUEST) - 1);
    assert!(most_pushes <= REPLICATE_PUSHES_IN_FLIGHT_MAX);
    assert_eq!(most_requests, REPLICATE_REQUESTS_IN_FLIGHT_MAX);
    assert!(
        net.views
            .iter()
            .all(|v| v.pushes_in_flight <= REPLICATE_PUSHES_IN_FLIGHT_MAX)
    );
    // A push per round trip (stop and wait) takes two rounds a push; an answer per round
    // trip takes two rounds for three pushes.
    assert!(pushes >= 30, "{pushes} pushes");
    assert!(
        (rounds as u64) < pushes,
        "{rounds} rounds for {pushes} pushes"
    );
}
