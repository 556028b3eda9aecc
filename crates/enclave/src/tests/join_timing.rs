//! A measurement, not a test of speed: how long a new replica takes to load a large
//! database by `ReplicateState`, in-process. Ignored by default: run it in release,
//!
//! ```text
//! cargo test -p cloister-enclave --release join_timing -- --ignored --nocapture
//! JOIN_TIMING_ROWS=200000 JOIN_TIMING_LATENCY_US=0,500 JOIN_TIMING_GBIT=1 cargo test ...
//!   (defaults: 1000000 rows; one-way latencies 0,250,1000 us; links of 10 Gbit/s)
//! ```
//!
//! Both cores run on this one thread. Every `handle` call (and the drain after it) is timed
//! for real, then placed on a virtual timeline as if source and joiner were two machines:
//!
//! ```text
//!  frame emitted when its handle ends ─▶ link (serial, bytes / bandwidth) ─▶ + latency
//!   ─▶ the receiver starts it when it arrives and the receiver is free ─▶ its outputs ...
//!  join time = when the joiner answers JoinRaft
//! ```
//!
//! Timing each call on one thread keeps the figure steady on a shared machine, where two
//! busy threads would measure the scheduler. The source's rows are written straight into
//! its database (not through its log): the stream ships rows as they stand, and a million
//! client sessions would take minutes to set up. The one assertion is the one that matters:
//! the joiner ends with the source's database hash.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cloister_proto::enclave::{
    JoinRaftRequest, PeerMessage, UntrustedMessage, enclave_message,
    host_to_enclave_request::Inner as Call, host_to_enclave_response::Inner as Answer,
    untrusted_message,
};
use cloister_proto::svr2::client::{BackupRequest, Request, request};
use prost::Message;

use super::harness::Harness;
use crate::db::Database;

const SOURCE: usize = 0;
const JOINER: usize = 1;

/// Rows spread over the key space like hashed user names would be.
fn fill(db: &mut Database, rows: u64) {
    let mut backup = Request {
        inner: Some(request::Inner::Backup(BackupRequest {
            data: vec![0x5a; 48],
            pin: vec![0xa5; 32],
            max_tries: 10,
        })),
    };
    for index in 0..rows {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&index.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
        id[8..].copy_from_slice(&index.to_le_bytes());
        if let Some(request::Inner::Backup(backup)) = &mut backup.inner {
            backup.data[0] = index as u8;
        }
        db.apply(&id, &backup).unwrap();
    }
}

/// The two machines: what each core costs, and when each is free, in virtual time.
struct Timeline {
    nodes: [Harness; 2],
    free_at: [Duration; 2],
    /// When the link out of each node is next free.
    link_free_at: [Duration; 2],
    busy: [Duration; 2],
    /// Frames on the way: (arrival, order) -> (receiver, bytes).
    arrivals: BTreeMap<(Duration, u64), (usize, Vec<u8>)>,
    order: u64,
    latency: Duration,
    bytes_per_sec: f64,
}

impl Timeline {
    /// Run `call` on `node` from `arrival` (or when it is free); queue what it emits.
    /// Returns when it ended, and whether it answered `request_id`.
    #[allow(
        clippy::disallowed_methods,
        reason = "the test host keeps time, not the core"
    )]
    fn run(
        &mut self,
        node: usize,
        arrival: Duration,
        request_id: u64,
        call: impl FnOnce(&mut Harness),
    ) -> (Duration, bool) {
        let began = Instant::now();
        call(&mut self.nodes[node]);
        let messages = self.nodes[node].drain();
        let took = began.elapsed();
        self.busy[node] += took;
        let start = arrival.max(self.free_at[node]);
        let end = start + took;
        self.free_at[node] = end;
        let mut answered = false;
        for message in messages {
            match message.inner {
                Some(enclave_message::Inner::PeerMessage(frame)) => {
                    let send =
                        Duration::from_secs_f64(frame.data.len() as f64 / self.bytes_per_sec);
                    let depart = end.max(self.link_free_at[node]);
                    self.link_free_at[node] = depart + send;
                    self.order += 1;
                    let key = (depart + send + self.latency, self.order);
                    self.arrivals.insert(key, (1 - node, frame.data));
                }
                Some(enclave_message::Inner::H2eResponse(response))
                    if response.request_id == request_id =>
                {
                    let answer = response.inner.unwrap();
                    assert!(matches!(answer, Answer::Done(_)), "join failed: {answer:?}");
                    answered = true;
                }
                _ => {}
            }
        }
        (end, answered)
    }
}

/// Join on the timeline; the virtual time to the joiner's answer, and each core's busy time.
fn timed_join(
    source: Harness,
    joiner: Harness,
    latency: Duration,
    bytes_per_sec: f64,
) -> (Duration, [Duration; 2]) {
    let ids = [*source.enclave.peer_id(), *joiner.enclave.peer_id()];
    let mut timeline = Timeline {
        nodes: [source, joiner],
        free_at: [Duration::ZERO; 2],
        link_free_at: [Duration::ZERO; 2],
        busy: [Duration::ZERO; 2],
        arrivals: BTreeMap::new(),
        order: 0,
        latency,
        bytes_per_sec,
    };
    let mut request_id = 0;
    let join = Call::JoinRaft(JoinRaftRequest {
        peer_id: ids[SOURCE].to_vec(),
    });
    timeline.run(JOINER, Duration::ZERO, 0, |joiner| {
        request_id = joiner.send(join);
    });
    while let Some(((arrival, _), (to, data))) = timeline.arrivals.pop_first() {
        let message = UntrustedMessage {
            inner: Some(untrusted_message::Inner::PeerMessage(PeerMessage {
                peer_id: ids[1 - to].to_vec(),
                data,
            })),
        }
        .encode_to_vec();
        let (end, answered) = timeline.run(to, arrival, request_id, |node| {
            let _ = node.enclave.handle(&message);
        });
        if answered {
            let [source, joiner] = &timeline.nodes;
            assert_eq!(
                joiner.enclave.db.hash(),
                source.enclave.db.hash(),
                "the joiner's database differs from the source's"
            );
            return (end, timeline.busy);
        }
    }
    panic!("the join stalled");
}

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[test]
#[ignore = "a measurement of a large join: run in release with --ignored --nocapture"]
fn join_timing() {
    let rows: u64 = setting("JOIN_TIMING_ROWS", "1000000").parse().unwrap();
    let gbit: f64 = setting("JOIN_TIMING_GBIT", "10").parse().unwrap();
    let latencies: Vec<u64> = setting("JOIN_TIMING_LATENCY_US", "0,250,1000")
        .split(',')
        .map(|us| us.trim().parse().unwrap())
        .collect();
    for (run, latency_us) in latencies.into_iter().enumerate() {
        // Each run needs a source whose group has not yet added a learner.
        let mut source = Harness::with_group(91);
        fill(&mut source.enclave.db, rows);
        let joiner = Harness::bare(92 + run as u8);
        let latency = Duration::from_micros(latency_us);
        let (took, [source_busy, joiner_busy]) =
            timed_join(source, joiner, latency, gbit * 1e9 / 8.0);
        println!(
            "join of {rows} rows, one-way latency {latency_us} us, {gbit} Gbit/s: {:.3} s \
             (source busy {:.3} s, joiner busy {:.3} s; database hashes equal)",
            took.as_secs_f64(),
            source_busy.as_secs_f64(),
            joiner_busy.as_secs_f64()
        );
    }
}
