//! Groups with SVR2's `client_pq` option: the core answers
//! `Noise_NKhfs_25519+Kyber1024_ChaChaPoly_SHA256` (ML-KEM-1024 under that name), clients
//! built on an independent KEM (snow's own, PQClean's C code) complete it, bad handshake
//! messages leave no session, and the replies replay byte for byte from the seed.

use cloister_attest::{Policy, VerifiedAttestation, sim, verify};
use cloister_proto::enclave::{
    CreateNewRaftGroupRequest, ErrorCode, ExistingClientRequest, NewClientReply, NewClientRequest,
    host_to_enclave_request::Inner as Call, host_to_enclave_response::Inner as Answer,
};
use cloister_proto::svr2::client::{response, restore_response};
use snow::params::{CipherChoice, DHChoice, HashChoice, KemChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Kem, Random};

use super::harness::{Harness, TestClient};
use super::{ALICE, BOB, backup, db_hash, error_code, expose, metric, restore, tries};
use crate::{CLIENT_NOISE_PATTERN, CLIENT_PQ_NOISE_PATTERN, ClientHandshake};

/// NKhfs message sizes with empty payloads: `e, es, e1` and `e, ee, ekem1`.
const PQ_MESSAGE_1_BYTES: usize = 32 + 1568 + 16 + 16;
const PQ_MESSAGE_2_BYTES: usize = 32 + 1568 + 16 + 16;

fn pq_group(seed: u8) -> Harness {
    let mut harness = Harness::bare(seed);
    let create = CreateNewRaftGroupRequest {
        client_pq: true,
        ..Default::default()
    };
    let answer = harness.call(Call::CreateNewRaftGroup(create));
    assert!(matches!(answer, Answer::Status(_)), "{answer:?}");
    harness
}

fn new_client(harness: &mut Harness, backup_id: [u8; 16]) -> NewClientReply {
    match harness.call(Call::NewClient(NewClientRequest {
        client_authenticated_id: backup_id.to_vec(),
    })) {
        Answer::NewClient(reply) => reply,
        other => panic!("new client refused: {other:?}"),
    }
}

/// Verify the handshake start as a client would.
fn attested(harness: &Harness, reply: &NewClientReply) -> VerifiedAttestation {
    let start = reply.handshake_start.as_ref().unwrap();
    let policy = Policy::insecure_allow_simulated(vec![sim::measurement()]);
    verify(
        &start.evidence,
        &start.endorsement,
        &policy,
        harness.enclave.now_unix_secs,
    )
    .unwrap()
}

/// A client initiator on snow's default resolver: its `Kyber1024` is PQClean's, not ours.
fn independent_initiator(pattern: &str, enclave_key: &[u8]) -> snow::HandshakeState {
    snow::Builder::new(pattern.parse().unwrap())
        .remote_public_key(enclave_key)
        .unwrap()
        .build_initiator()
        .unwrap()
}

fn message_1(initiator: &mut snow::HandshakeState) -> Vec<u8> {
    let mut message = vec![0; 4096];
    let length = initiator.write_message(&[], &mut message).unwrap();
    message.truncate(length);
    message
}

fn send(harness: &mut Harness, client_id: u64, data: Vec<u8>) -> Answer {
    harness.call(Call::ExistingClient(ExistingClientRequest {
        client_id,
        data,
    }))
}

/// Finish a handshake whose message 1 the core answered with `answer`.
fn finish(mut initiator: snow::HandshakeState, client_id: u64, answer: Answer) -> TestClient {
    let Answer::ExistingClient(reply) = answer else {
        panic!("handshake refused: {answer:?}")
    };
    assert_eq!(reply.data.len(), PQ_MESSAGE_2_BYTES);
    let mut payload = vec![0; 4096];
    assert_eq!(
        initiator.read_message(&reply.data, &mut payload).unwrap(),
        0
    );
    TestClient {
        client_id,
        transport: initiator.into_transport_mode().unwrap(),
    }
}

fn error_message(answer: &Answer) -> &str {
    match answer {
        Answer::Error(error) => &error.message,
        other => panic!("expected an error, got {other:?}"),
    }
}

// SVR2 client protocol: Session 3, the client_pq option. The client learns the pattern from
// the attested group config, and an independent Kyber1024 completes the handshake.
#[test]
fn a_pq_group_attests_the_option_and_serves_an_independent_client() {
    let mut harness = pq_group(40);
    let reply = new_client(&mut harness, ALICE);
    let attestation = attested(&harness, &reply);
    assert!(attestation.group_config().client_pq);
    assert_eq!(
        ClientHandshake::for_group(attestation.group_config().client_pq).pattern(),
        CLIENT_PQ_NOISE_PATTERN
    );
    let mut initiator = independent_initiator(CLIENT_PQ_NOISE_PATTERN, attestation.public_key());
    let message = message_1(&mut initiator);
    assert_eq!(message.len(), PQ_MESSAGE_1_BYTES);
    let answer = send(&mut harness, reply.client_id, message);
    let mut alice = finish(initiator, reply.client_id, answer);
    harness.request(&mut alice, &backup(&[5; 32], &[6; 32], 3));
    harness.request(&mut alice, &expose(&[5; 32]));
    let Some(response::Inner::Restore(restored)) =
        harness.request(&mut alice, &restore(&[6; 32])).inner
    else {
        panic!("no restore response")
    };
    assert_eq!(restored.status(), restore_response::Status::Ok);
    assert_eq!((restored.data, restored.tries), (vec![5; 32], 3));
    assert_eq!(metric(&mut harness, "client_handshakes_completed"), 1);
}

#[test]
fn each_group_refuses_the_other_groups_pattern() {
    let mut harness = pq_group(41);
    let reply = new_client(&mut harness, ALICE);
    let key = attested(&harness, &reply).public_key().to_vec();
    let classical = message_1(&mut independent_initiator(CLIENT_NOISE_PATTERN, &key));
    let answer = send(&mut harness, reply.client_id, classical);
    assert_eq!(error_code(&answer), ErrorCode::InvalidArgument);
    assert!(
        error_message(&answer).contains("48 bytes")
            && error_message(&answer).contains("exactly 1632"),
        "{answer:?}"
    );
    assert_eq!(metric(&mut harness, "client_sessions"), 0);

    let mut classical_group = Harness::with_group(42);
    let reply = new_client(&mut classical_group, BOB);
    let key = attested(&classical_group, &reply).public_key().to_vec();
    let post_quantum = message_1(&mut independent_initiator(CLIENT_PQ_NOISE_PATTERN, &key));
    let answer = send(&mut classical_group, reply.client_id, post_quantum);
    assert_eq!(error_code(&answer), ErrorCode::InvalidArgument);
    assert!(error_message(&answer).contains("exactly 48"), "{answer:?}");
    assert_eq!(metric(&mut classical_group, "client_sessions"), 0);
}

// Bounds: the first frame of a PQ session is accepted at exactly 1632 bytes; anything else
// is refused with a clear error, and neither the session nor the database survives it.
#[test]
fn truncated_oversized_and_tampered_pq_messages_leave_no_session() {
    let mut harness = pq_group(43);
    let mut owner = new_client(&mut harness, ALICE);
    let key = attested(&harness, &owner).public_key().to_vec();
    let mut initiator = independent_initiator(CLIENT_PQ_NOISE_PATTERN, &key);
    let good = message_1(&mut initiator);
    let answer = send(&mut harness, owner.client_id, good.clone());
    let mut alice = finish(initiator, owner.client_id, answer);
    harness.request(&mut alice, &backup(&[1; 16], &[1; 32], 5));
    let before = db_hash(&mut harness);

    let mut tampered = good.clone();
    tampered[32 + 700] ^= 1; // inside the encrypted e1: its tag no longer checks
    let cases: [(Vec<u8>, &str); 6] = [
        (good[..good.len() - 1].to_vec(), "1631 bytes"),
        ([good.as_slice(), &[0]].concat(), "1633 bytes"),
        (good[..48].to_vec(), "48 bytes"),
        (Vec::new(), "0 bytes"),
        (vec![0; 65_536], "larger than one Noise message"),
        (tampered, "Noise handshake failed"),
    ];
    for (message, reason) in cases {
        owner = new_client(&mut harness, BOB);
        let answer = send(&mut harness, owner.client_id, message);
        assert_eq!(error_code(&answer), ErrorCode::InvalidArgument, "{reason}");
        assert!(error_message(&answer).contains(reason), "{answer:?}");
        // The session is gone: its next frame finds nothing.
        let again = send(&mut harness, owner.client_id, good.clone());
        assert_eq!(error_code(&again), ErrorCode::NotFound, "{reason}");
    }
    assert_eq!(metric(&mut harness, "client_sessions"), 1, "only alice's");
    assert_eq!(db_hash(&mut harness), before);
    assert!(harness.request(&mut alice, &tries()).inner.is_some());
}

/// A KEM whose public key has every coefficient out of range (FIPS 203's input check fails).
struct UnreducedKey;

impl Kem for UnreducedKey {
    fn name(&self) -> &'static str {
        "Kyber1024"
    }
    fn pub_len(&self) -> usize {
        1568
    }
    fn ciphertext_len(&self) -> usize {
        1568
    }
    fn shared_secret_len(&self) -> usize {
        32
    }
    fn generate(&mut self, _random: &mut dyn Random) {}
    fn pubkey(&self) -> &[u8] {
        &[0xff; 1568]
    }
    fn encapsulate(
        &self,
        _: &[u8],
        _: &mut [u8],
        _: &mut [u8],
    ) -> Result<(usize, usize), snow::Error> {
        Err(snow::Error::Kem)
    }
    fn decapsulate(&self, _: &[u8], _: &mut [u8]) -> Result<usize, snow::Error> {
        Err(snow::Error::Kem)
    }
}

struct UnreducedResolver;

impl CryptoResolver for UnreducedResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        DefaultResolver.resolve_rng()
    }
    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }
    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }
    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
    fn resolve_kem(&self, _choice: &KemChoice) -> Option<Box<dyn Kem>> {
        Some(Box::new(UnreducedKey))
    }
}

#[test]
fn a_client_kem_key_that_fails_the_input_check_is_refused() {
    let mut harness = pq_group(44);
    let reply = new_client(&mut harness, ALICE);
    let key = attested(&harness, &reply).public_key().to_vec();
    let mut initiator = snow::Builder::with_resolver(
        CLIENT_PQ_NOISE_PATTERN.parse().unwrap(),
        Box::new(UnreducedResolver),
    )
    .remote_public_key(&key)
    .unwrap()
    .build_initiator()
    .unwrap();
    let answer = send(&mut harness, reply.client_id, message_1(&mut initiator));
    assert_eq!(error_code(&answer), ErrorCode::InvalidArgument);
    assert!(error_message(&answer).contains("ML-KEM-1024"), "{answer:?}");
    assert_eq!(metric(&mut harness, "client_sessions"), 0);
    assert_eq!(metric(&mut harness, "client_handshakes_failed"), 1);
}

// Determinism: the enclave's X25519 ephemeral and its encapsulation both come from the Env,
// so two cores with one seed answer one message 1 with the same bytes, and so on after.
#[test]
fn the_same_seed_gives_byte_identical_pq_replies() {
    let (mut first, mut second) = (pq_group(45), pq_group(45));
    let reply = new_client(&mut first, ALICE);
    assert_eq!(reply, new_client(&mut second, ALICE));
    let key = attested(&first, &reply).public_key().to_vec();
    let mut initiator = independent_initiator(CLIENT_PQ_NOISE_PATTERN, &key);
    let message = message_1(&mut initiator);
    let answer = send(&mut first, reply.client_id, message.clone());
    assert_eq!(answer, send(&mut second, reply.client_id, message.clone()));
    let Answer::ExistingClient(enclave_reply) = &answer else {
        panic!("handshake refused: {answer:?}")
    };
    let message_2 = enclave_reply.data.clone();
    let mut alice = finish(initiator, reply.client_id, answer);
    // The sessions hold the same keys: one client frame works on both cores alike.
    let frame = alice.encrypt(&prost::Message::encode_to_vec(&tries()));
    let answer = send(&mut first, reply.client_id, frame.clone());
    assert_eq!(answer, send(&mut second, reply.client_id, frame));
    assert!(matches!(answer, Answer::ExistingClient(_)));
    assert_eq!(first.transcript, second.transcript);
    // Each session draws afresh: the same message 1 to another session gets other bytes.
    let other = new_client(&mut first, ALICE);
    let Answer::ExistingClient(again) = send(&mut first, other.client_id, message) else {
        panic!("a second session may take the same message 1")
    };
    assert_eq!(again.data.len(), PQ_MESSAGE_2_BYTES);
    assert_ne!(again.data, message_2);
}
