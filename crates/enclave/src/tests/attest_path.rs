//! The core's use of its platform's evidence.
//!
//! No attestation work on the per-session path: the core produces evidence when its key
//! changes (group creation, refresh), and every client session reuses it. Clients verify;
//! the server never verifies anything for a client. A platform that fails to attest changes
//! nothing: the core keeps the key and evidence it had, and says why.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use cloister_proto::attest::AttestationData;
use cloister_proto::enclave::{
    CreateNewRaftGroupRequest, InitConfig, NewClientRequest, RefreshAttestationRequest,
    host_to_enclave_request::Inner as Call, host_to_enclave_response::Inner as Answer,
};
use cloister_proto::svr2::client::{ClientHandshakeStart, Request, TriesRequest, request};
use prost::Message;

use super::harness::{Harness, NOW};
use super::metric;
use crate::{Attestation, Enclave, Env, InsecureSimulatedEnv, PlatformError};

/// The simulated platform, counting the evidence it is asked to produce, failing while
/// `failing` is set, and handing out `endorsements` beside its evidence.
struct CountingEnv {
    inner: InsecureSimulatedEnv,
    attestations: Arc<AtomicU64>,
    failing: Arc<AtomicBool>,
    endorsements: Vec<u8>,
}

impl CountingEnv {
    fn new(seed: u8) -> Self {
        CountingEnv {
            inner: InsecureSimulatedEnv::from_seed([seed; 32]),
            attestations: Arc::default(),
            failing: Arc::default(),
            endorsements: Vec::new(),
        }
    }
}

impl Env for CountingEnv {
    fn fill_random(&mut self, buffer: &mut [u8]) {
        self.inner.fill_random(buffer);
    }
    fn attest(
        &mut self,
        data: &AttestationData,
        now_unix_secs: u64,
    ) -> Result<Attestation, PlatformError> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(PlatformError("the quoting enclave is busy".into()));
        }
        self.attestations.fetch_add(1, Ordering::Relaxed);
        let mut attestation = self.inner.attest(data, now_unix_secs)?;
        attestation.endorsements = self.endorsements.clone();
        Ok(attestation)
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
    let env = CountingEnv::new(0x61);
    let attestations = env.attestations.clone();
    let mut harness = Harness::from_enclave(Enclave::init(&init(), Box::new(env)).unwrap());
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

fn init() -> Vec<u8> {
    InitConfig {
        config: None,
        initial_timestamp_unix_secs: NOW,
    }
    .encode_to_vec()
}

fn handshake_start(harness: &mut Harness) -> ClientHandshakeStart {
    match harness.call(Call::NewClient(NewClientRequest {
        client_authenticated_id: vec![7; 16],
    })) {
        Answer::NewClient(reply) => reply.handshake_start.unwrap(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_platform_that_cannot_attest_at_start_fails_init() {
    let env = CountingEnv::new(0x62);
    env.failing.store(true, Ordering::Relaxed);
    let error = Enclave::init(&init(), Box::new(env)).unwrap_err();
    assert!(
        matches!(&error, crate::Error::Platform(text) if text.contains("quoting enclave is busy")),
        "{error}"
    );
}

#[test]
fn a_failed_refresh_keeps_the_key_and_evidence_and_says_why() {
    let env = CountingEnv::new(0x63);
    let failing = env.failing.clone();
    let mut harness = Harness::from_enclave(Enclave::init(&init(), Box::new(env)).unwrap());
    // Creating a group while the platform fails creates nothing.
    failing.store(true, Ordering::Relaxed);
    let Answer::Error(error) = harness.call(Call::CreateNewRaftGroup(
        CreateNewRaftGroupRequest::default(),
    )) else {
        panic!("a group without evidence")
    };
    assert!(
        error.message.contains("could not attest the client key"),
        "{}",
        error.message
    );
    assert_eq!(metric(&mut harness, "attestation_failures"), 1);
    failing.store(false, Ordering::Relaxed);
    assert!(matches!(
        harness.call(Call::CreateNewRaftGroup(
            CreateNewRaftGroupRequest::default()
        )),
        Answer::Status(_)
    ));
    let before = handshake_start(&mut harness);
    let refreshes = metric(&mut harness, "attestation_refreshes");

    failing.store(true, Ordering::Relaxed);
    let Answer::Error(error) = harness.call(Call::RefreshAttestation(RefreshAttestationRequest {}))
    else {
        panic!("a refresh without evidence succeeded")
    };
    assert!(
        error.message.contains("quoting enclave is busy"),
        "{}",
        error.message
    );
    // Unchanged: the same evidence (so the same key) for new clients, no refresh counted.
    assert_eq!(handshake_start(&mut harness), before);
    assert_eq!(metric(&mut harness, "attestation_refreshes"), refreshes);
    assert!(metric(&mut harness, "attestation_failures") >= 2);
    // Clients still connect and are served on the evidence the core kept.
    let tries = Request {
        inner: Some(request::Inner::Tries(TriesRequest {})),
    };
    let mut client = harness.connect([3; 16]);
    harness.request(&mut client, &tries);

    failing.store(false, Ordering::Relaxed);
    assert!(matches!(
        harness.call(Call::RefreshAttestation(RefreshAttestationRequest {})),
        Answer::Done(_)
    ));
    assert_ne!(
        handshake_start(&mut harness),
        before,
        "a new key once the platform is back"
    );
}

#[test]
fn endorsements_travel_beside_the_evidence_to_clients() {
    let mut env = CountingEnv::new(0x64);
    env.endorsements = b"collateral the verifier needs".to_vec();
    let mut harness = Harness::from_enclave(Enclave::init(&init(), Box::new(env)).unwrap());
    assert!(matches!(
        harness.call(Call::CreateNewRaftGroup(
            CreateNewRaftGroupRequest::default()
        )),
        Answer::Status(_)
    ));
    let start = handshake_start(&mut harness);
    assert_eq!(start.endorsement, b"collateral the verifier needs");
    assert!(!start.evidence.is_empty());
}
