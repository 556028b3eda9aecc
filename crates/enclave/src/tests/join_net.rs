//! A hand-routed pair of cores (and a bystander) for the `ReplicateState` tests: frames move
//! one round at a time, a direction can be held, and a push can be slipped in. Push limits
//! are shrunk so a few hundred rows make dozens of pushes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use cloister_proto::e2e::ReplicateStatePush;
use cloister_proto::e2e::transaction_response::Inner as Reply;
use cloister_proto::enclave::{
    DeleteBackupRequest, JoinRaftRequest, PeerMessage, TimerTick, UntrustedMessage,
    enclave_message, host_to_enclave_request::Inner as Call,
    host_to_enclave_response::Inner as Answer, untrusted_message,
};
use cloister_proto::log::{ClientOperation, LogEntry, log_entry};
use cloister_proto::svr2::client::{
    BackupRequest, ExposeRequest, Request, RestoreRequest, request,
};
use prost::Message;

use super::harness::{Harness, NOW};
use crate::core::Origin;
use crate::join::{PushLimits, REPLICATE_PUSHES_PER_REQUEST, StreamView, set_test_push_limits};

pub(super) const SOURCE: usize = 0;
pub(super) const JOINER: usize = 1;
pub(super) const OTHER: usize = 2;

/// About a dozen rows, or five entries, per push.
pub(super) const SMALL: PushLimits = PushLimits {
    rows_bytes_max: 1_000,
    entries_bytes_max: 600,
};

/// Small pushes on this thread while it lives.
pub(super) struct SmallPushes;

impl SmallPushes {
    pub(super) fn new() -> Self {
        set_test_push_limits(Some(SMALL));
        Self
    }
}

impl Drop for SmallPushes {
    fn drop(&mut self) {
        set_test_push_limits(None);
    }
}

/// Cores whose frames move only when a test says so.
pub(super) struct Net {
    pub(super) nodes: Vec<Harness>,
    pub(super) queues: BTreeMap<(usize, usize), VecDeque<Vec<u8>>>,
    pub(super) answers: Vec<Vec<(u64, Answer)>>,
    /// Directions `round` leaves alone.
    pub(super) held: BTreeSet<(usize, usize)>,
    /// The joiner's stream after every frame it was handed.
    pub(super) views: Vec<StreamView>,
    pub(super) now: u64,
    pub(super) host_request_id_next: u64,
}

impl Net {
    /// A group on `SOURCE` holding `rows` backups written through its log, a bare joiner,
    /// and a bare bystander.
    pub(super) fn with_rows(seed: u8, rows: u64) -> Self {
        let nodes = vec![
            Harness::with_group(seed),
            Harness::bare(seed.wrapping_add(1)),
            Harness::bare(seed.wrapping_add(2)),
        ];
        let mut net = Self {
            answers: vec![Vec::new(); nodes.len()],
            nodes,
            queues: BTreeMap::new(),
            held: BTreeSet::new(),
            views: Vec::new(),
            now: NOW,
            host_request_id_next: 1_000_000,
        };
        for index in 0..rows {
            net.write(key(index), backup(index, 0));
            net.write(key(index), expose(index, 0));
        }
        net
    }

    pub(super) fn peer_id(&self, node: usize) -> [u8; 32] {
        *self.nodes[node].enclave.peer_id()
    }

    /// Take everything `node` emitted: frames queue per direction, answers are kept.
    pub(super) fn pump(&mut self, node: usize) {
        for message in self.nodes[node].drain() {
            match message.inner {
                Some(enclave_message::Inner::PeerMessage(frame)) => {
                    let to = (0..self.nodes.len())
                        .find(|index| self.peer_id(*index).as_slice() == frame.peer_id)
                        .unwrap();
                    self.queues
                        .entry((node, to))
                        .or_default()
                        .push_back(frame.data);
                }
                Some(enclave_message::Inner::H2eResponse(response)) => {
                    self.answers[node].push((response.request_id, response.inner.unwrap()));
                }
                _ => {}
            }
        }
    }

    pub(super) fn deliver_one(&mut self, from: usize, to: usize) {
        let Some(data) = self
            .queues
            .get_mut(&(from, to))
            .and_then(VecDeque::pop_front)
        else {
            return;
        };
        let message = UntrustedMessage {
            inner: Some(untrusted_message::Inner::PeerMessage(PeerMessage {
                peer_id: self.peer_id(from).to_vec(),
                data,
            })),
        };
        let _ = self.nodes[to].enclave.handle(&message.encode_to_vec());
        self.pump(to);
        if to == JOINER {
            self.views.extend(self.nodes[JOINER].enclave.join_stream());
        }
    }

    /// Deliver the frames queued when the round began (not those they cause), except on
    /// held directions. Returns how many moved.
    pub(super) fn round(&mut self) -> usize {
        for node in 0..self.nodes.len() {
            self.pump(node);
        }
        let ready: Vec<((usize, usize), usize)> = self
            .queues
            .iter()
            .filter(|(direction, _)| !self.held.contains(direction))
            .map(|(direction, queue)| (*direction, queue.len()))
            .collect();
        for ((from, to), count) in &ready {
            for _ in 0..*count {
                self.deliver_one(*from, *to);
            }
        }
        ready.iter().map(|(_, count)| count).sum()
    }

    /// Rounds until nothing moves; returns how many rounds moved something.
    pub(super) fn settle(&mut self) -> usize {
        for rounds in 0..10_000 {
            if self.round() == 0 {
                return rounds;
            }
        }
        panic!("the frames never settled");
    }

    pub(super) fn tick(&mut self, rounds: usize) {
        for _ in 0..rounds {
            self.now += 1;
            for node in 0..self.nodes.len() {
                let tick = UntrustedMessage {
                    inner: Some(untrusted_message::Inner::TimerTick(TimerTick {
                        new_timestamp_unix_secs: self.now,
                    })),
                };
                self.nodes[node]
                    .enclave
                    .handle(&tick.encode_to_vec())
                    .unwrap();
            }
            self.settle();
        }
    }

    pub(super) fn send(&mut self, node: usize, call: Call) -> u64 {
        let request_id = self.nodes[node].send(call);
        self.pump(node);
        request_id
    }

    pub(super) fn answer(&mut self, node: usize, request_id: u64) -> Option<Answer> {
        let position = self.answers[node]
            .iter()
            .position(|(id, _)| *id == request_id)?;
        Some(self.answers[node].remove(position).1)
    }

    /// Commit a client operation on the source through its log, as a client's would.
    pub(super) fn write(&mut self, id: [u8; 16], request: Request) {
        let entry = LogEntry {
            inner: Some(log_entry::Inner::Client(ClientOperation {
                backup_id: id.to_vec(),
                request: Some(request),
            })),
            forwarded_by: None,
        };
        let request_id = self.host_request_id_next;
        self.host_request_id_next += 1;
        self.nodes[SOURCE]
            .enclave
            .propose(entry.encode_to_vec(), Origin::Host { request_id })
            .unwrap();
        self.pump(SOURCE);
    }

    /// Writes on the source while the joiner streams: on both sides of the joiner's cursor
    /// (where an entry applied twice, or not at all, shows), on rows anywhere, new rows and
    /// host deletes. A burst is more entries than one push carries.
    pub(super) fn write_burst(&mut self, step: u64) {
        for offset in 0..6 {
            let index = (step * 6 + offset) * 7 % 240;
            match offset % 3 {
                0 => self.write(key(index), backup(index, 1 + step as u8)),
                1 => self.write(key(index), expose(index, 1 + step as u8)),
                _ => self.write(key(1_000 + step * 6 + offset), backup(index, 2)),
            }
        }
        let delete = DeleteBackupRequest {
            backup_id: key(step * 13 % 240).to_vec(),
        };
        self.send(SOURCE, Call::DeleteBackup(delete));
        // Last, so that they travel in the push that also carries rows (the first pushes of
        // a split carry entries only), and not idempotent: one apply too many shows.
        let view = self.nodes[JOINER].enclave.join_stream();
        if let Some(last) = view.and_then(|view| view.cursor.last_key) {
            let next = self.nodes[SOURCE]
                .enclave
                .db
                .stream_rows(Some(&last), 1)
                .rows;
            let next = next
                .first()
                .map(|row| <[u8; 16]>::try_from(&row[..16]).unwrap());
            for boundary in [Some(last), next].into_iter().flatten() {
                self.write(boundary, wrong_pin());
            }
        }
    }

    /// JoinRaft on the joiner, through the source.
    pub(super) fn join(&mut self) -> u64 {
        let peer_id = self.peer_id(SOURCE).to_vec();
        self.send(JOINER, Call::JoinRaft(JoinRaftRequest { peer_id }))
    }

    /// Rounds until the joiner's stream has loaded `pushes` pushes.
    pub(super) fn stream_until(&mut self, pushes: u64) -> StreamView {
        for _ in 0..1_000 {
            if let Some(view) = self.nodes[JOINER].enclave.join_stream()
                && view.pushes_loaded >= pushes
            {
                return view;
            }
            assert!(self.round() > 0, "the stream stalled");
        }
        panic!("the stream never loaded {pushes} pushes");
    }

    pub(super) fn hashes_equal(&self) -> bool {
        self.nodes[SOURCE].enclave.db.hash() == self.nodes[JOINER].enclave.db.hash()
    }

    pub(super) fn refused_frames(&self, node: usize) -> u64 {
        self.nodes[node].enclave.counters.peer_frames_refused
    }
}

/// Keys spread over the key space, so a stream's order is not the order of writing.
pub(super) fn key(index: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&index.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    id[8..].copy_from_slice(&index.to_le_bytes());
    id
}

pub(super) fn backup(index: u64, version: u8) -> Request {
    Request {
        inner: Some(request::Inner::Backup(BackupRequest {
            data: vec![index as u8 ^ version; 32],
            pin: vec![version; 32],
            max_tries: 5,
        })),
    }
}

pub(super) fn expose(index: u64, version: u8) -> Request {
    Request {
        inner: Some(request::Inner::Expose(ExposeRequest {
            data: vec![index as u8 ^ version; 32],
        })),
    }
}

pub(super) fn wrong_pin() -> Request {
    Request {
        inner: Some(request::Inner::Restore(RestoreRequest {
            pin: vec![0xee; 32],
        })),
    }
}

/// A stream paused between answers: the joiner loaded the first answer, and its request for
/// the next one is held on the way to the source.
pub(super) fn paused(seed: u8) -> (Net, u64, StreamView) {
    let mut net = Net::with_rows(seed, 120);
    let request_id = net.join();
    net.stream_until(1);
    net.held.insert((JOINER, SOURCE));
    net.settle();
    let view = net.nodes[JOINER].enclave.join_stream().unwrap();
    assert_eq!(view.pushes_loaded, u64::from(REPLICATE_PUSHES_PER_REQUEST));
    assert_eq!(view.requests_in_flight, 1);
    (net, request_id, view)
}

/// The answer the source would send to the held request.
pub(super) fn next_answer(net: &Net, view: &StreamView) -> Vec<ReplicateStatePush> {
    let pushes = REPLICATE_PUSHES_PER_REQUEST;
    let source = &net.nodes[SOURCE].enclave;
    let answer = source.build_answer(view.cursor, pushes, view.pushes_loaded);
    let answer = answer.unwrap();
    assert_eq!(
        answer.len(),
        pushes as usize,
        "the stream is not near its end"
    );
    answer
}

/// `from` answers the stream's transaction with `pushes`; frames move (held requests stay
/// held).
pub(super) fn inject(net: &mut Net, from: usize, view: &StreamView, pushes: &[ReplicateStatePush]) {
    let joiner = net.peer_id(JOINER);
    for push in pushes {
        let push = Reply::ReplicateState(push.clone());
        net.nodes[from]
            .enclave
            .reply(joiner, view.transaction_id, Ok(push));
    }
    net.settle();
}
