//! Several real cores in one process, their peer frames routed by hand: the replica-group
//! paths (join, forwarding, membership, failover) through the door, deterministically.

use std::collections::BTreeSet;

use cloister_proto::enclave::{
    CreateNewRaftGroupRequest, ExistingClientRequest, GetEnclaveStatusRequest, HashesRequest,
    JoinRaftRequest, PeerMessage, PingPeerRequest, RelinquishLeadershipRequest,
    RequestVotingRequest, UntrustedMessage, enclave_message,
    host_to_enclave_request::Inner as Call, host_to_enclave_response::Inner as Answer,
    untrusted_message,
};
use cloister_proto::svr2::client::{
    BackupRequest, ExposeRequest, Request, Response, RestoreRequest, request, response,
    restore_response,
};
use prost::Message;

use super::harness::{Harness, NOW, TestClient};

pub struct Cluster {
    pub nodes: Vec<Harness>,
    answers: Vec<Vec<(u64, Answer)>>,
    pub down: BTreeSet<usize>,
    now: u64,
    /// Every frame delivered: (from, to, bytes), for replay tests.
    pub delivered: Vec<(usize, usize, Vec<u8>)>,
}

impl Cluster {
    pub fn new(size: usize, seed: u8) -> Self {
        Self::at_versions(&vec![0; size], seed)
    }

    /// Ungrouped nodes whose platforms attest these `sim.security_version`s, one per node.
    pub fn at_versions(versions: &[u32], seed: u8) -> Self {
        let size = versions.len();
        let nodes = versions
            .iter()
            .enumerate()
            .map(|(index, version)| {
                Harness::bare_at_version(seed.wrapping_add(index as u8), *version)
            })
            .collect();
        Self {
            nodes,
            answers: vec![Vec::new(); size],
            down: BTreeSet::new(),
            now: NOW,
            delivered: Vec::new(),
        }
    }

    /// Add a node outside the group; returns its index.
    pub fn add_node(&mut self, node: Harness) -> usize {
        self.nodes.push(node);
        self.answers.push(Vec::new());
        self.nodes.len() - 1
    }

    pub fn peer_id(&self, node: usize) -> [u8; 32] {
        *self.nodes[node].enclave.peer_id()
    }

    /// Drain every live node and deliver peer frames until nothing moves.
    pub fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut frames = Vec::new();
            for (index, node) in self.nodes.iter_mut().enumerate() {
                if self.down.contains(&index) {
                    continue;
                }
                for message in node.drain() {
                    match message.inner {
                        Some(enclave_message::Inner::PeerMessage(frame)) => {
                            frames.push((index, frame))
                        }
                        Some(enclave_message::Inner::H2eResponse(response)) => {
                            self.answers[index]
                                .push((response.request_id, response.inner.unwrap()));
                        }
                        _ => {}
                    }
                }
            }
            if frames.is_empty() {
                return;
            }
            for (from, frame) in frames {
                let Some(to) = (0..self.nodes.len())
                    .find(|i| self.nodes[*i].enclave.peer_id().as_slice() == frame.peer_id)
                else {
                    continue;
                };
                if self.down.contains(&to) {
                    continue; // lost
                }
                self.deliver(from, to, frame.data);
            }
        }
        panic!("the cluster did not settle");
    }

    /// Drain `node` alone: keep its answers, and return its peer frames as (to, bytes)
    /// without delivering them, so a test can hold messages in the network.
    pub fn take_frames_from(&mut self, node: usize) -> Vec<(usize, Vec<u8>)> {
        let mut frames = Vec::new();
        for message in self.nodes[node].drain() {
            match message.inner {
                Some(enclave_message::Inner::PeerMessage(frame)) => {
                    if let Some(to) = (0..self.nodes.len())
                        .find(|i| self.nodes[*i].enclave.peer_id().as_slice() == frame.peer_id)
                    {
                        frames.push((to, frame.data));
                    }
                }
                Some(enclave_message::Inner::H2eResponse(response)) => {
                    self.answers[node].push((response.request_id, response.inner.unwrap()));
                }
                _ => {}
            }
        }
        frames
    }

    /// The answers `node` already gave to `request_ids`, in that order (panics if one is
    /// missing: the caller settled first).
    pub fn answered(&mut self, node: usize, request_ids: &[u64]) -> Vec<Answer> {
        request_ids
            .iter()
            .map(|request_id| {
                let position = self.answers[node]
                    .iter()
                    .position(|(id, _)| id == request_id)
                    .unwrap_or_else(|| panic!("node {node} has not answered {request_id}"));
                self.answers[node].remove(position).1
            })
            .collect()
    }

    /// Hand `data` to `to` as a frame from `from` (what a host does, honestly or not).
    pub fn deliver(&mut self, from: usize, to: usize, data: Vec<u8>) {
        if self.delivered.len() < 100_000 {
            self.delivered.push((from, to, data.clone()));
        }
        let message = UntrustedMessage {
            inner: Some(untrusted_message::Inner::PeerMessage(PeerMessage {
                peer_id: self.peer_id(from).to_vec(),
                data,
            })),
        };
        let _ = self.nodes[to].enclave.handle(&message.encode_to_vec());
    }

    pub fn tick(&mut self, rounds: usize) {
        for _ in 0..rounds {
            self.now += 1;
            for index in 0..self.nodes.len() {
                if !self.down.contains(&index) {
                    let tick = UntrustedMessage {
                        inner: Some(untrusted_message::Inner::TimerTick(
                            cloister_proto::enclave::TimerTick {
                                new_timestamp_unix_secs: self.now,
                            },
                        )),
                    };
                    self.nodes[index]
                        .enclave
                        .handle(&tick.encode_to_vec())
                        .unwrap();
                }
            }
            self.settle();
        }
    }

    /// Send a call to `node` and wait (ticking) for its answer.
    pub fn call(&mut self, node: usize, call: Call) -> Answer {
        let request_id = self.nodes[node].send(call);
        for _ in 0..60 {
            self.settle();
            if let Some(position) = self.answers[node]
                .iter()
                .position(|(id, _)| *id == request_id)
            {
                return self.answers[node].remove(position).1;
            }
            self.tick(1);
        }
        panic!("node {node} never answered request {request_id}");
    }

    pub fn connect(&mut self, node: usize, backup_id: [u8; 16]) -> TestClient {
        self.nodes[node].connect(backup_id)
    }

    pub fn request(&mut self, node: usize, client: &mut TestClient, request: &Request) -> Response {
        let frame = client.encrypt(&request.encode_to_vec());
        match self.call(
            node,
            Call::ExistingClient(ExistingClientRequest {
                client_id: client.client_id,
                data: frame,
            }),
        ) {
            Answer::ExistingClient(reply) => client.decrypt(&reply.data),
            other => panic!("request refused: {other:?}"),
        }
    }

    pub fn status(&mut self, node: usize) -> cloister_proto::enclave::EnclaveStatus {
        match self.call(node, Call::GetEnclaveStatus(GetEnclaveStatusRequest {})) {
            Answer::Status(status) => status,
            other => panic!("{other:?}"),
        }
    }

    pub fn leader(&mut self) -> Option<usize> {
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|node| !self.down.contains(node))
            .collect();
        live.into_iter()
            .find(|node| self.status(*node).role == "leader")
    }

    /// A group of `size`: node 0 creates it, the others join through it and ask to vote.
    pub fn group(size: usize, seed: u8) -> Self {
        Self::group_with(size, seed, CreateNewRaftGroupRequest::default())
    }

    pub fn group_with(size: usize, seed: u8, create: CreateNewRaftGroupRequest) -> Self {
        Self::formed(Self::new(size, seed), create)
    }

    /// A group of nodes attesting these security versions, formed as [`Self::group`] does.
    pub fn group_at_versions(versions: &[u32], seed: u8) -> Self {
        Self::formed(
            Self::at_versions(versions, seed),
            CreateNewRaftGroupRequest::default(),
        )
    }

    fn formed(mut cluster: Self, create: CreateNewRaftGroupRequest) -> Self {
        let size = cluster.nodes.len();
        assert!(matches!(
            cluster.call(0, Call::CreateNewRaftGroup(create)),
            Answer::Status(_)
        ));
        let founder = cluster.peer_id(0).to_vec();
        for node in 1..size {
            let joined = cluster.call(
                node,
                Call::JoinRaft(JoinRaftRequest {
                    peer_id: founder.clone(),
                }),
            );
            assert!(
                matches!(joined, Answer::Done(_)),
                "join of {node}: {joined:?}"
            );
            // A fresh learner learns who leads from the next heartbeat.
            cluster.tick(2);
            let voting = cluster.call(node, Call::RequestVoting(RequestVotingRequest {}));
            assert!(
                matches!(voting, Answer::Done(_)),
                "voting of {node}: {voting:?}"
            );
        }
        cluster
    }
}

pub(super) fn backup(data: &[u8], pin: &[u8]) -> Request {
    Request {
        inner: Some(request::Inner::Backup(BackupRequest {
            data: data.to_vec(),
            pin: pin.to_vec(),
            max_tries: 5,
        })),
    }
}
fn expose(data: &[u8]) -> Request {
    Request {
        inner: Some(request::Inner::Expose(ExposeRequest {
            data: data.to_vec(),
        })),
    }
}
fn restore(pin: &[u8]) -> Request {
    Request {
        inner: Some(request::Inner::Restore(RestoreRequest {
            pin: pin.to_vec(),
        })),
    }
}

fn restored(response: Response) -> (restore_response::Status, Vec<u8>, u32) {
    match response.inner {
        Some(response::Inner::Restore(r)) => (r.status(), r.data, r.tries),
        other => panic!("{other:?}"),
    }
}

pub(super) fn db_hashes(cluster: &mut Cluster) -> Vec<(Vec<u8>, u64)> {
    let live: Vec<usize> = (0..cluster.nodes.len())
        .filter(|node| !cluster.down.contains(node))
        .collect();
    live.into_iter()
        .map(
            |node| match cluster.call(node, Call::Hashes(HashesRequest {})) {
                Answer::Hashes(hashes) => (hashes.db_hash, hashes.applied_index),
                other => panic!("{other:?}"),
            },
        )
        .collect()
}

#[test]
fn three_replicas_join_vote_serve_from_followers_and_agree() {
    let mut cluster = Cluster::group(3, 50);
    let status = cluster.status(0);
    assert_eq!(status.role, "leader");
    assert_eq!(
        status.members.iter().filter(|m| m.voting).count(),
        3,
        "{:?}",
        status.members
    );
    assert!(status.members.iter().all(|m| m.peer_id.len() == 32));
    // A follower serves a client: its writes are forwarded to the leader (RaftWrite).
    let mut alice = cluster.connect(1, [0xa1; 16]);
    cluster.request(1, &mut alice, &backup(&[7; 32], &[8; 32]));
    cluster.request(1, &mut alice, &expose(&[7; 32]));
    assert_eq!(
        restored(cluster.request(1, &mut alice, &restore(&[0; 32]))).0,
        restore_response::Status::PinMismatch
    );
    let mut other = cluster.connect(2, [0xa1; 16]);
    assert_eq!(
        restored(cluster.request(2, &mut other, &restore(&[8; 32]))),
        (restore_response::Status::Ok, vec![7; 32], 4)
    );
    cluster.tick(3);
    let hashes = db_hashes(&mut cluster);
    assert!(
        hashes.windows(2).all(|pair| pair[0] == pair[1]),
        "{hashes:?}"
    );
}

#[test]
fn a_late_joiner_streams_existing_state() {
    let mut cluster = Cluster::new(2, 60);
    cluster.call(
        0,
        Call::CreateNewRaftGroup(CreateNewRaftGroupRequest::default()),
    );
    for index in 0..300u16 {
        let mut id = [0u8; 16];
        id[..2].copy_from_slice(&index.to_be_bytes());
        let mut client = cluster.connect(0, id);
        cluster.request(0, &mut client, &backup(&[index as u8; 48], &[1; 32]));
    }
    let founder = cluster.peer_id(0).to_vec();
    assert!(matches!(
        cluster.call(1, Call::JoinRaft(JoinRaftRequest { peer_id: founder })),
        Answer::Done(_)
    ));
    cluster.tick(3);
    let hashes = db_hashes(&mut cluster);
    assert_eq!(hashes[0], hashes[1]);
    assert_eq!(cluster.status(1).backups, 300);
    assert_eq!(cluster.status(1).role, "follower");
}

#[test]
fn ping_and_relinquish_and_failover() {
    let mut cluster = Cluster::group(3, 70);
    let target = cluster.peer_id(2).to_vec();
    assert!(matches!(
        cluster.call(0, Call::PingPeer(PingPeerRequest { peer_id: target })),
        Answer::Done(_)
    ));
    let mut alice = cluster.connect(0, [0xa1; 16]);
    cluster.request(0, &mut alice, &backup(&[7; 32], &[8; 32]));
    cluster.request(0, &mut alice, &expose(&[7; 32]));
    // Hand over leadership without failed requests.
    assert!(matches!(
        cluster.call(
            0,
            Call::RelinquishLeadership(RelinquishLeadershipRequest {})
        ),
        Answer::Done(_)
    ));
    cluster.tick(3);
    let leader = cluster.leader().expect("a new leader");
    assert_ne!(leader, 0);
    let mut again = cluster.connect(0, [0xa1; 16]);
    assert_eq!(
        restored(cluster.request(0, &mut again, &restore(&[8; 32]))).0,
        restore_response::Status::Ok
    );
    // The leader dies; the other two elect one and still hold the backup.
    cluster.down.insert(leader);
    cluster.tick(30);
    let survivor_leader = cluster.leader().expect("a leader among the survivors");
    assert_ne!(survivor_leader, leader);
    let survivor = (0..3).find(|node| *node != leader).unwrap();
    let mut client = cluster.connect(survivor, [0xa1; 16]);
    assert_eq!(
        restored(cluster.request(survivor, &mut client, &restore(&[8; 32]))),
        (restore_response::Status::Ok, vec![7; 32], 5)
    );
}

fn voting_of(cluster: &mut Cluster, leader: usize, node: usize) -> Option<bool> {
    let raft_id = cluster.status(node).raft_id;
    cluster
        .status(leader)
        .members
        .iter()
        .find(|m| m.raft_id == raft_id)
        .map(|m| m.voting)
}

#[test]
fn healing_demotes_then_removes_a_silent_voter_and_promotes_learners() {
    let create = CreateNewRaftGroupRequest {
        voting_timeout_secs: 5,
        membership_timeout_secs: 12,
        ..Default::default()
    };
    let mut cluster = Cluster::group_with(3, 80, create);
    // Joined replicas were promoted (by RequestVoting or by healing, whichever came first).
    assert_eq!(voting_of(&mut cluster, 0, 2), Some(true));
    cluster.down.insert(2);
    let raft_id = cluster.nodes[2].enclave.raft_id;
    cluster.tick(8);
    let members = cluster.status(0).members;
    assert_eq!(
        members
            .iter()
            .find(|m| m.raft_id == raft_id)
            .map(|m| m.voting),
        Some(false),
        "demoted"
    );
    cluster.tick(8);
    assert!(
        cluster
            .status(0)
            .members
            .iter()
            .all(|m| m.raft_id != raft_id),
        "removed"
    );
    // The two that remain still serve.
    let mut alice = cluster.connect(1, [0xa1; 16]);
    assert!(
        cluster
            .request(1, &mut alice, &backup(&[1; 16], &[1; 32]))
            .inner
            .is_some()
    );
}

#[test]
fn writes_wait_for_the_minimum_of_voters() {
    let create = CreateNewRaftGroupRequest {
        min_voting_replicas: 2,
        ..Default::default()
    };
    let mut cluster = Cluster::new(2, 90);
    assert!(matches!(
        cluster.call(0, Call::CreateNewRaftGroup(create)),
        Answer::Status(_)
    ));
    let mut alice = cluster.connect(0, [0xa1; 16]);
    let frame = alice.encrypt(&backup(&[1; 16], &[1; 32]).encode_to_vec());
    let refused = cluster.call(
        0,
        Call::ExistingClient(ExistingClientRequest {
            client_id: alice.client_id,
            data: frame,
        }),
    );
    assert!(
        matches!(refused, Answer::Error(ref e) if e.code() == cloister_proto::enclave::ErrorCode::Unavailable),
        "{refused:?}"
    );
    // A second replica joins; healing promotes it without being asked; writes flow.
    let founder = cluster.peer_id(0).to_vec();
    assert!(matches!(
        cluster.call(1, Call::JoinRaft(JoinRaftRequest { peer_id: founder })),
        Answer::Done(_)
    ));
    cluster.tick(4);
    assert_eq!(voting_of(&mut cluster, 0, 1), Some(true));
    let mut alice = cluster.connect(0, [0xa1; 16]);
    assert!(
        cluster
            .request(0, &mut alice, &backup(&[1; 16], &[1; 32]))
            .inner
            .is_some()
    );
}

#[test]
fn non_members_cannot_change_membership_and_replayed_frames_change_nothing() {
    let mut cluster = Cluster::group(2, 100);
    cluster.nodes.push(Harness::bare(120));
    cluster.answers.push(Vec::new());
    // An outsider (attested, same code, not a member) asks the leader to make it a voter.
    let leader = cluster.peer_id(0);
    let ask = cloister_proto::e2e::transaction_request::Inner::RaftVoting(true);
    let purpose = crate::transactions::Purpose::Host { request_id: 999 };
    cluster.nodes[2]
        .enclave
        .start_transaction(leader, ask, purpose)
        .unwrap();
    cluster.settle();
    let answer = cluster.answers[2]
        .iter()
        .find(|(id, _)| *id == 999)
        .map(|(_, a)| a.clone());
    assert!(matches!(answer, Some(Answer::Error(_))), "{answer:?}");
    assert_eq!(cluster.status(0).members.len(), 2, "membership unchanged");

    // A host replays every frame it ever carried to node 1: nothing changes but connections.
    let mut alice = cluster.connect(0, [0xa1; 16]);
    cluster.request(0, &mut alice, &backup(&[1; 16], &[1; 32]));
    cluster.tick(2);
    let before = db_hashes(&mut cluster);
    let replay: Vec<_> = cluster
        .delivered
        .iter()
        .filter(|(_, to, _)| *to == 1)
        .cloned()
        .collect();
    assert!(replay.len() > 10);
    for (from, to, data) in replay {
        cluster.deliver(from, to, data);
    }
    cluster.settle();
    cluster.tick(3);
    let after = db_hashes(&mut cluster);
    assert_eq!(before[..2], after[..2]);
    // The group still serves through the replayed-at replica.
    let mut bob = cluster.connect(1, [0xb0; 16]);
    assert!(
        cluster
            .request(1, &mut bob, &backup(&[2; 16], &[2; 32]))
            .inner
            .is_some()
    );
}
