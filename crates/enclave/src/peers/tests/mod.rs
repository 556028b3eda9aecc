//! Peer channels driven against each other in-process, with simulated evidence and a
//! scripted host in between that can drop, replay, reorder or forge frames.

mod attestation;
mod handshake;
mod messages;
mod segments;

use std::collections::VecDeque;

use cloister_attest::sim;
use cloister_proto::attest::{AttestationData, GroupConfig};
use cloister_proto::e2e::{
    EnclaveToEnclave, TransactionRequest, enclave_to_enclave, transaction_request,
};
use prost::Message;
use x25519_dalek::{PublicKey, StaticSecret};

use super::{PeerChannels, PeerContext, PeerEvent, PeerId, PeerLimits, ungrouped_config};
use crate::Error;

pub(super) const NOW: u64 = 1_750_000_000;
pub(super) const TIMEOUT_SECS: u32 = 3600;

pub(super) fn group() -> GroupConfig {
    GroupConfig {
        group_id: 7,
        simulated: true,
        attestation_timeout_secs: TIMEOUT_SECS,
        ..GroupConfig::default()
    }
}

/// Simulated evidence binding `key` and `group` (or the no-group placeholder) at `at`.
pub(super) fn evidence_for(key: &PeerId, group: Option<GroupConfig>, at: u64) -> Vec<u8> {
    let data = AttestationData {
        public_key: key.to_vec(),
        group_config: Some(group.unwrap_or_else(|| ungrouped_config(true))),
        minimum_limits: None,
    };
    sim::attest(&data, at).encode_to_vec()
}

pub(super) fn ping(transaction_id: u64) -> EnclaveToEnclave {
    EnclaveToEnclave {
        inner: Some(enclave_to_enclave::Inner::TransactionRequest(
            TransactionRequest {
                transaction_id,
                inner: Some(transaction_request::Inner::Ping(true)),
            },
        )),
    }
}

pub(super) fn raft(bytes: Vec<u8>) -> EnclaveToEnclave {
    EnclaveToEnclave {
        inner: Some(enclave_to_enclave::Inner::RaftMessage(bytes)),
    }
}

/// One enclave: its channels and what its core would put in each call's context.
pub(super) struct Node {
    pub(super) channels: PeerChannels,
    pub(super) id: PeerId,
    pub(super) measurement: [u8; 32],
    pub(super) simulated: bool,
    pub(super) group: Option<GroupConfig>,
    pub(super) evidence: Vec<u8>,
    pub(super) now: u64,
    seed: u8,
    calls: u64,
}

impl Node {
    /// A simulated member of [`group`] whose key is drawn from `seed`.
    pub(super) fn new(seed: u8) -> Self {
        Self::with(seed, Some(group()), PeerLimits::default())
    }

    pub(super) fn with(seed: u8, group: Option<GroupConfig>, limits: PeerLimits) -> Self {
        let private = [seed; 32];
        let id = PublicKey::from(&StaticSecret::from(private)).to_bytes();
        Self {
            channels: PeerChannels::new(&private, limits),
            id,
            measurement: sim::measurement(),
            simulated: true,
            group,
            evidence: evidence_for(&id, group, NOW),
            now: NOW,
            seed,
            calls: 0,
        }
    }

    /// Run `call` with a fresh context, as the core would build it.
    pub(super) fn call<R>(
        &mut self,
        call: impl FnOnce(&mut PeerChannels, &PeerContext<'_>) -> R,
    ) -> R {
        self.calls += 1;
        let mut seed = [self.seed; 32];
        seed[..8].copy_from_slice(&self.calls.to_be_bytes());
        let ctx = PeerContext {
            evidence: &self.evidence,
            endorsements: &[],
            measurement: self.measurement,
            simulated: self.simulated,
            group_config: self.group,
            minimums: &crate::minimums::Minimums::NONE,
            now_unix_secs: self.now,
            seed,
        };
        call(&mut self.channels, &ctx)
    }

    /// Produce fresh evidence at the node's current time.
    pub(super) fn reattest(&mut self) {
        self.evidence = evidence_for(&self.id, self.group, self.now);
    }
}

/// A frame in flight between two nodes.
#[derive(Clone)]
pub(super) struct Wire {
    pub(super) from: usize,
    pub(super) to: usize,
    pub(super) frame: Vec<u8>,
}

/// Nodes and the host network between them. Delivery is FIFO unless a test intervenes.
pub(super) struct Net {
    pub(super) nodes: Vec<Node>,
    pub(super) wire: VecDeque<Wire>,
    events: Vec<Vec<PeerEvent>>,
}

impl Net {
    pub(super) fn new(nodes: Vec<Node>) -> Self {
        let events = nodes.iter().map(|_| Vec::new()).collect();
        Self {
            nodes,
            wire: VecDeque::new(),
            events,
        }
    }

    pub(super) fn id(&self, node: usize) -> PeerId {
        self.nodes[node].id
    }

    /// `from` sends `message` to `to`; its frames go on the wire.
    pub(super) fn send(
        &mut self,
        from: usize,
        to: usize,
        message: &EnclaveToEnclave,
    ) -> Result<(), Error> {
        let target = self.id(to);
        let frames = self.nodes[from].call(|channels, ctx| channels.send(&target, message, ctx))?;
        self.absorb(from, frames.into_iter().map(PeerEvent::Send).collect());
        Ok(())
    }

    /// Deliver `frame` to `to` as if it came from `from_id`; record what happened.
    pub(super) fn deliver_as(
        &mut self,
        from_id: PeerId,
        to: usize,
        frame: &[u8],
    ) -> Result<(), Error> {
        let events =
            self.nodes[to].call(|channels, ctx| channels.on_frame(&from_id, frame, ctx))?;
        self.absorb(to, events);
        Ok(())
    }

    /// Deliver one frame; errors are returned, not recorded.
    pub(super) fn deliver(&mut self, wire: &Wire) -> Result<(), Error> {
        let from_id = self.id(wire.from);
        self.deliver_as(from_id, wire.to, &wire.frame)
    }

    /// Deliver everything in flight, in order, until the network is quiet.
    pub(super) fn run(&mut self) {
        for _ in 0..100_000 {
            let Some(wire) = self.wire.pop_front() else {
                return;
            };
            // Refusals that change nothing are part of some tests; they leave no events.
            let _ = self.deliver(&wire);
        }
        panic!("the network never went quiet");
    }

    /// Take the frames in flight without delivering them.
    pub(super) fn take_wire(&mut self) -> Vec<Wire> {
        self.wire.drain(..).collect()
    }

    pub(super) fn absorb(&mut self, node: usize, events: Vec<PeerEvent>) {
        for event in events {
            match event {
                PeerEvent::Send(outbound) => {
                    // Frames to ids outside the net (forged peers) are lost.
                    if let Some(to) = self.nodes.iter().position(|n| n.id == outbound.peer) {
                        self.wire.push_back(Wire {
                            from: node,
                            to,
                            frame: outbound.frame,
                        });
                    }
                }
                other => self.events[node].push(other),
            }
        }
    }

    /// Events `node` reported since the last call (frames excluded: they are on the wire).
    pub(super) fn events(&mut self, node: usize) -> Vec<PeerEvent> {
        std::mem::take(&mut self.events[node])
    }

    /// Messages `node` received since the last call; fails on any other event.
    pub(super) fn received(&mut self, node: usize) -> Vec<EnclaveToEnclave> {
        self.events(node)
            .into_iter()
            .map(|event| match event {
                PeerEvent::Received { message, .. } => message,
                other => panic!("expected only messages, got {other:?}"),
            })
            .collect()
    }

    pub(super) fn connected(&self, node: usize, peer: usize) -> bool {
        self.nodes[node]
            .channels
            .attestation(&self.id(peer))
            .is_some()
    }

    /// Connect `a` and `b` (a initiates) and clear the events.
    pub(super) fn connect(&mut self, a: usize, b: usize) {
        self.send(a, b, &ping(0)).unwrap();
        self.run();
        assert!(self.connected(a, b) && self.connected(b, a));
        self.events(a);
        self.events(b);
    }

    /// A message each way between `a` and `b` arrives intact, connecting them if needed,
    /// and nothing fails on the way.
    pub(super) fn assert_works(&mut self, a: usize, b: usize) {
        self.events(a);
        self.events(b);
        self.send(a, b, &ping(100)).unwrap();
        self.send(b, a, &ping(200)).unwrap();
        self.run();
        assert_eq!(self.messages(b), vec![ping(100)]);
        assert_eq!(self.messages(a), vec![ping(200)]);
    }

    /// Messages `node` received since the last call; fails on a disconnection or refusal.
    pub(super) fn messages(&mut self, node: usize) -> Vec<EnclaveToEnclave> {
        let mut messages = Vec::new();
        for event in self.events(node) {
            match event {
                PeerEvent::Received { message, .. } => messages.push(message),
                PeerEvent::Connected { .. } | PeerEvent::Reattested { .. } => {}
                other => panic!("node {node}: {other:?}"),
            }
        }
        messages
    }
}

/// The reason of the single `Disconnected` (or `Refused`, if `refused`) event in `events`.
pub(super) fn only_reason(events: &[PeerEvent], refused: bool) -> String {
    let reasons: Vec<String> = events
        .iter()
        .filter_map(|event| match (event, refused) {
            (PeerEvent::Disconnected { reason, .. }, false)
            | (PeerEvent::Refused { reason, .. }, true) => Some(reason.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 1, "{events:?}");
    reasons[0].clone()
}
