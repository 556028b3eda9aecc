//! No attestation work on the per-session path: the core produces evidence when its key
//! changes (group creation, refresh), and every client session reuses it. Clients verify;
//! the server never verifies anything for a client.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cloister_proto::attest::{AttestationData, Evidence};
use cloister_proto::enclave::{
    CreateNewRaftGroupRequest, InitConfig, RefreshAttestationRequest,
    host_to_enclave_request::Inner as Call, host_to_enclave_response::Inner as Answer,
};
use cloister_proto::svr2::client::{Request, TriesRequest, request};
use prost::Message;

use super::harness::{Harness, NOW};
use crate::{Enclave, Env, InsecureSimulatedEnv};

/// The simulated platform, counting the evidence it is asked to produce.
struct CountingEnv {
    inner: InsecureSimulatedEnv,
    attestations: Arc<AtomicU64>,
}

impl Env for CountingEnv {
    fn fill_random(&mut self, buffer: &mut [u8]) {
        self.inner.fill_random(buffer);
    }
    fn attest(&mut self, data: &AttestationData, now_unix_secs: u64) -> Evidence {
        self.attestations.fetch_add(1, Ordering::Relaxed);
        self.inner.attest(data, now_unix_secs)
    }
    fn measurement(&self) -> [u8; cloister_attest::MEASUREMENT_BYTES] {
        self.inner.measurement()
    }
    fn simulated(&self) -> bool {
        self.inner.simulated()
    }
}

#[test]
fn sessions_reuse_the_evidence_made_once_per_key() {
    let attestations = Arc::new(AtomicU64::new(0));
    let env = CountingEnv {
        inner: InsecureSimulatedEnv::from_seed([0x61; 32]),
        attestations: attestations.clone(),
    };
    let init = InitConfig {
        config: None,
        initial_timestamp_unix_secs: NOW,
    };
    let mut harness =
        Harness::from_enclave(Enclave::init(&init.encode_to_vec(), Box::new(env)).unwrap());
    assert!(matches!(
        harness.call(Call::CreateNewRaftGroup(
            CreateNewRaftGroupRequest::default()
        )),
        Answer::Status(_)
    ));
    let after_creation = attestations.load(Ordering::Relaxed);
    assert!(after_creation >= 1, "the group's client key is attested");
    let tries = Request {
        inner: Some(request::Inner::Tries(TriesRequest {})),
    };
    // Fifty sessions, each a full handshake and a request: not one more piece of evidence.
    for index in 0..50u8 {
        let mut client = harness.connect([index; 16]);
        harness.request(&mut client, &tries);
    }
    assert_eq!(attestations.load(Ordering::Relaxed), after_creation);
    // A refresh makes fresh evidence (a new client key, and the peer key's update) once.
    assert!(matches!(
        harness.call(Call::RefreshAttestation(RefreshAttestationRequest {})),
        Answer::Done(_)
    ));
    let after_refresh = attestations.load(Ordering::Relaxed);
    assert!(after_refresh > after_creation);
    for index in 0..50u8 {
        let mut client = harness.connect([index; 16]);
        harness.request(&mut client, &tries);
    }
    assert_eq!(attestations.load(Ordering::Relaxed), after_refresh);
}
