//! Test doubles: a simulated enclave identity, and a scripted fake host+enclave server.

pub(crate) mod server;

use cloister_attest::sim;
use cloister_noise::ClientHandshake;
use cloister_proto::attest::{AttestationData, Evidence, GroupConfig};
use cloister_proto::prost::Message;
use cloister_proto::svr2::client::ClientHandshakeStart;
use snow::HandshakeState;

use crate::handshake::NOISE_PATTERN;

/// A simulated enclave's identity: a Noise static key pair and a group.
pub(crate) struct SimulatedEnclave {
    private: Vec<u8>,
    public: [u8; 32],
    group_id: u64,
}

impl SimulatedEnclave {
    pub(crate) fn new(group_id: u64) -> Self {
        let keys = snow::Builder::new(NOISE_PATTERN.parse().unwrap())
            .generate_keypair()
            .unwrap();
        Self {
            private: keys.private,
            public: keys.public.try_into().unwrap(),
            group_id,
        }
    }

    pub(crate) fn public_key(&self) -> [u8; 32] {
        self.public
    }

    /// Simulated evidence for this key, with the group config adjusted by `adjust`.
    pub(crate) fn evidence(&self, now: u64, adjust: impl FnOnce(&mut GroupConfig)) -> Evidence {
        let mut group = GroupConfig {
            group_id: self.group_id,
            simulated: true,
            db_version: 2,
            ..Default::default()
        };
        adjust(&mut group);
        let data = AttestationData {
            public_key: self.public.to_vec(),
            group_config: Some(group),
            minimum_limits: None,
        };
        sim::attest(&data, now)
    }

    /// The first frame, as the host sends it (with `test_only_pubkey`, as a simulated
    /// group does).
    pub(crate) fn handshake_start(&self, now: u64) -> Vec<u8> {
        handshake_start_bytes(&self.evidence(now, |_| {}), &self.public)
    }

    /// The first frame of a `client_pq` group.
    pub(crate) fn handshake_start_pq(&self, now: u64) -> Vec<u8> {
        handshake_start_bytes(
            &self.evidence(now, |group| group.client_pq = true),
            &self.public,
        )
    }

    /// A fresh Noise responder for `pattern` holding this enclave's static key. It runs on
    /// snow's default resolver, whose `Kyber1024` (tests only) is PQClean's, not the SDK's.
    pub(crate) fn responder(&self, pattern: ClientHandshake) -> HandshakeState {
        snow::Builder::new(pattern.params())
            .local_private_key(&self.private)
            .unwrap()
            .build_responder()
            .unwrap()
    }
}

/// Serialize a `ClientHandshakeStart`.
pub(crate) fn handshake_start_bytes(evidence: &Evidence, test_only_pubkey: &[u8]) -> Vec<u8> {
    ClientHandshakeStart {
        test_only_pubkey: test_only_pubkey.to_vec(),
        evidence: evidence.encode_to_vec(),
        endorsement: Vec::new(),
    }
    .encode_to_vec()
}
