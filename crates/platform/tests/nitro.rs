//! AWS Nitro through a fake NSM that signs real attestation documents with a test chain:
//! the evidence verifies end to end against that chain's root.

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io;

use ciborium::value::Value;
use cloister_attest::{AttestError, Policy, derived_measurement, verify};
use cloister_platform::nitro::Nitro;
use cloister_platform::{Env, HardwareEnv, PlatformError};
use cloister_proto::attest::EvidenceKind;
use prost::Message;
use support::kernels::{FakeNsm, document_response, encode, requested_user_data, signing_nsm};
use support::nitro::{self, Fields, ISSUED_AT};

fn open(nsm: FakeNsm) -> Result<HardwareEnv, PlatformError> {
    HardwareEnv::open(Box::new(Nitro::new(Box::new(nsm))))
}

fn measurement(fields: &Fields) -> [u8; 32] {
    let [pcr0, pcr1, pcr2] = &fields.pcrs;
    derived_measurement("nitro", &[pcr0, pcr1, pcr2])
}

#[test]
fn nitro_evidence_verifies_end_to_end() {
    let (chain, fields) = (nitro::chain(), Fields::default());
    let root = chain.root.clone();
    let mut env = open(signing_nsm(chain, fields.clone())).unwrap();
    assert_eq!(env.measurement(), measurement(&fields));
    assert!(!env.simulated());

    let data = support::statement(11);
    let attestation = env.attest(&data, ISSUED_AT).unwrap();
    assert_eq!(attestation.evidence.kind, EvidenceKind::Nitro as i32);
    assert!(attestation.endorsements.is_empty());
    let policy = Policy::strict(vec![measurement(&fields)]).with_nitro_root(root);
    let verified = verify(
        &attestation.evidence.encode_to_vec(),
        &attestation.endorsements,
        &policy,
        ISSUED_AT,
    )
    .unwrap();
    assert_eq!(verified.public_key(), &[9; 32]);
    assert_eq!(verified.group_config().group_id, 11);
    assert_eq!(verified.measurement(), &env.measurement());
    // AWS's own root refuses the test chain: the evidence is only as good as its root.
    let aws = Policy::strict(vec![measurement(&fields)]);
    assert!(matches!(
        verify(&attestation.evidence.encode_to_vec(), &[], &aws, ISSUED_AT),
        Err(AttestError::CertificateChain(_))
    ));
}

#[test]
fn an_nsm_error_is_refused_with_its_code() {
    let nsm = FakeNsm(Box::new(|_| {
        Ok(encode(&Value::Map(vec![(
            Value::Text("Error".into()),
            Value::Text("InvalidArgument".into()),
        )])))
    }));
    let error = open(nsm).unwrap_err();
    assert_eq!(
        error.0,
        "Nitro Secure Module: it answered error \"InvalidArgument\""
    );
}

#[test]
fn garbage_failed_or_unbound_responses_are_refused() {
    let chain = nitro::chain();
    let unbound = nitro::document(&Fields::default(), &chain);
    let nsms: Vec<(FakeNsm, &str)> = vec![
        (
            FakeNsm(Box::new(|_| Ok(b"\xff\x00garbage".to_vec()))),
            "the response is not CBOR",
        ),
        (
            FakeNsm(Box::new(|_| Ok(encode(&Value::Text("Attestation".into()))))),
            "the response is not an attestation document",
        ),
        (
            // ENODEV.
            FakeNsm(Box::new(|_| Err(io::Error::from_raw_os_error(19)))),
            "the request failed",
        ),
        (
            // A real document over someone else's user data.
            FakeNsm(Box::new(move |_| Ok(document_response(unbound.clone())))),
            "does not bind the report data it was given",
        ),
        (
            FakeNsm(Box::new(|_| Ok(document_response(vec![0xA5; 100])))),
            "nitro: the platform's report is unusable",
        ),
    ];
    for (nsm, reason) in nsms {
        let error = open(nsm).unwrap_err();
        assert!(error.0.contains(reason), "{reason}: {error}");
    }
}

#[test]
fn the_request_carries_the_statement_hash_as_user_data() {
    let chain = nitro::chain();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen_by_nsm = seen.clone();
    let fields = Fields::default();
    let nsm = FakeNsm(Box::new(move |request| {
        let user_data = requested_user_data(request);
        seen_by_nsm.lock().unwrap().push(user_data.clone());
        Ok(document_response(nitro::document(
            &Fields {
                user_data: Some(user_data),
                ..fields.clone()
            },
            &chain,
        )))
    }));
    let mut env = open(nsm).unwrap();
    let data = support::statement(3);
    env.attest(&data, ISSUED_AT).unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "the probe, then the statement");
    assert_eq!(
        seen[1],
        cloister_attest::report_data_for(EvidenceKind::Nitro, &data.encode_to_vec())
    );
}
