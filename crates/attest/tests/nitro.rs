//! Nitro: documents signed by a test chain (no real Nitro vector is public here), checked
//! against that chain's root; AWS's own root refuses them.

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cloister_attest::{
    AttestError, Policy, derived_measurement, report_data_for, verify, verify_evidence,
};
use cloister_proto::attest::{AttestationData, Evidence, EvidenceKind, GroupConfig};
use prost::Message;
use support::nitro::{self, Fields, ISSUED_AT, LEAF_NOT_AFTER, LEAF_NOT_BEFORE};

fn measurement(fields: &Fields) -> [u8; 32] {
    let [pcr0, pcr1, pcr2] = &fields.pcrs;
    derived_measurement("nitro", &[pcr0, pcr1, pcr2])
}

fn policy(chain: &nitro::Chain, fields: &Fields) -> Policy {
    Policy::strict(vec![measurement(fields)]).with_nitro_root(chain.root.clone())
}

fn check(document: &[u8], policy: &Policy, now: u64) -> Result<(), AttestError> {
    verify_evidence(EvidenceKind::Nitro, document, &[], policy, now).map(|_| ())
}

#[test]
fn a_document_verifies_inside_its_window_and_says_what_it_signed() {
    let (chain, fields) = (nitro::chain(), Fields::default());
    let document = nitro::document(&fields, &chain);
    let claims = verify_evidence(
        EvidenceKind::Nitro,
        &document,
        &[],
        &policy(&chain, &fields),
        ISSUED_AT,
    )
    .unwrap();
    assert_eq!(claims.measurement(), &measurement(&fields));
    assert_eq!(claims.report_data(), &[0x5a; 32]);
    assert_eq!(claims.issued_at_unix_secs(), Some(ISSUED_AT));
    assert!(
        claims.attested_values().is_empty(),
        "Nitro attests no versions"
    );
    assert!(!claims.debug());
    assert_eq!(claims.validity().not_before_unix_secs, LEAF_NOT_BEFORE);
    assert_eq!(claims.validity().not_after_unix_secs, LEAF_NOT_AFTER);
    assert!(
        claims
            .details()
            .iter()
            .any(|(name, value)| *name == "pcr0" && value == &hex::encode([0xa0; 48]))
    );
}

#[test]
fn a_document_fails_outside_its_window() {
    let (chain, fields) = (nitro::chain(), Fields::default());
    let document = nitro::document(&fields, &chain);
    let policy = policy(&chain, &fields);
    for now in [ISSUED_AT, LEAF_NOT_AFTER] {
        assert_eq!(check(&document, &policy, now), Ok(()), "at {now}");
    }
    // Before the leaf is valid, and after: the certificate window.
    for now in [LEAF_NOT_BEFORE - 1, LEAF_NOT_AFTER + 1] {
        assert!(
            matches!(
                check(&document, &policy, now),
                Err(AttestError::OutsideValidityWindow { .. })
            ),
            "at {now}"
        );
    }
    // Inside the leaf's window but past the policy's age bound: the document's own time.
    let short = policy.clone().with_evidence_age_max_secs(60);
    assert!(matches!(
        check(&document, &short, ISSUED_AT + 61),
        Err(AttestError::Expired {
            issued: ISSUED_AT,
            ..
        })
    ));
}

#[test]
fn flipping_any_byte_of_the_document_fails() {
    let (chain, fields) = (nitro::chain(), Fields::default());
    let document = nitro::document(&fields, &chain);
    let policy = policy(&chain, &fields).insecure_any_measurement();
    for index in 0..document.len() {
        let mut forged = document.clone();
        forged[index] ^= 0x01;
        assert!(
            check(&forged, &policy, ISSUED_AT).is_err(),
            "byte {index} flipped still verifies"
        );
    }
}

#[test]
fn awss_root_refuses_a_test_chain() {
    let (chain, fields) = (nitro::chain(), Fields::default());
    let document = nitro::document(&fields, &chain);
    assert!(matches!(
        check(&document, &Policy::strict(vec![measurement(&fields)]), ISSUED_AT),
        Err(AttestError::CertificateChain(reason)) if reason.contains("not the trusted Nitro root")
    ));
}

#[test]
fn a_debug_enclave_is_refused() {
    let chain = nitro::chain();
    let fields = Fields {
        pcrs: [[0; 48]; 3],
        ..Fields::default()
    };
    let document = nitro::document(&fields, &chain);
    assert_eq!(
        check(&document, &policy(&chain, &fields), ISSUED_AT),
        Err(AttestError::DebugEnclave)
    );
}

#[test]
fn a_wrong_measurement_is_refused() {
    let chain = nitro::chain();
    let mut fields = Fields::default();
    let accepted = policy(&chain, &fields);
    fields.pcrs[2][0] ^= 1;
    let document = nitro::document(&fields, &chain);
    assert_eq!(
        check(&document, &accepted, ISSUED_AT),
        Err(AttestError::MeasurementNotAccepted(hex::encode(
            measurement(&fields)
        )))
    );
}

#[test]
fn truncated_oversized_and_unexpected_input_is_refused() {
    let (chain, fields) = (nitro::chain(), Fields::default());
    let document = nitro::document(&fields, &chain);
    let policy = policy(&chain, &fields);
    for cut in [0, 1, document.len() / 2, document.len() - 1] {
        assert!(
            matches!(
                check(&document[..cut], &policy, ISSUED_AT),
                Err(AttestError::Truncated { .. })
            ),
            "cut at {cut}"
        );
    }
    let mut longer = document.clone();
    longer.push(0);
    assert_eq!(
        check(&longer, &policy, ISSUED_AT),
        Err(AttestError::TrailingBytes {
            what: "Nitro attestation document",
            extra: 1
        })
    );
    assert_eq!(
        verify_evidence(EvidenceKind::Nitro, &document, &[1], &policy, ISSUED_AT).map(|_| ()),
        Err(AttestError::UnexpectedEndorsements("nitro", 1))
    );
    // A byte string that claims 2^62 bytes: refused as truncated, without allocating them.
    let claims_huge = [0x5b, 0x40, 0, 0, 0, 0, 0, 0, 0];
    assert!(matches!(
        check(&claims_huge, &policy, ISSUED_AT),
        Err(AttestError::Truncated { .. }) | Err(AttestError::Malformed(_))
    ));
}

#[test]
fn a_document_bound_to_its_statement_verifies_and_any_other_statement_is_refused() {
    let chain = nitro::chain();
    let statement = AttestationData {
        public_key: vec![6; 32],
        group_config: Some(GroupConfig {
            group_id: 9,
            ..Default::default()
        }),
        minimum_limits: None,
    };
    let attestation_data = statement.encode_to_vec();
    let fields = Fields {
        user_data: Some(report_data_for(EvidenceKind::Nitro, &attestation_data)),
        ..Fields::default()
    };
    let policy = policy(&chain, &fields);
    let document = nitro::document(&fields, &chain);
    let evidence = |attestation_data: Vec<u8>| {
        Evidence {
            kind: EvidenceKind::Nitro as i32,
            report: document.clone(),
            attestation_data,
        }
        .encode_to_vec()
    };
    let verified = verify(&evidence(attestation_data.clone()), &[], &policy, ISSUED_AT).unwrap();
    assert_eq!(verified.public_key(), &[6; 32]);
    assert_eq!(verified.timestamp_unix_secs(), ISSUED_AT);

    let mut tampered = attestation_data;
    tampered[3] ^= 1;
    assert_eq!(
        verify(&evidence(tampered), &[], &policy, ISSUED_AT).unwrap_err(),
        AttestError::ReportDataMismatch
    );
    // No user_data at all: nothing is bound.
    let unbound = nitro::document(
        &Fields {
            user_data: None,
            ..fields
        },
        &chain,
    );
    let envelope = Evidence {
        kind: EvidenceKind::Nitro as i32,
        report: unbound,
        attestation_data: statement.encode_to_vec(),
    };
    assert_eq!(
        verify(&envelope.encode_to_vec(), &[], &policy, ISSUED_AT).unwrap_err(),
        AttestError::ReportDataMismatch
    );
}

/// `tests/data/nitro/` holds the default test document and its root, for tools (the CLI's
/// tests) that cannot build them. They are exactly what the generator makes; set
/// `CLOISTER_WRITE_VECTORS=1` to write them again after changing the generator.
#[test]
fn the_committed_nitro_vector_is_the_generators() {
    let chain = nitro::chain();
    let document = nitro::document(&Fields::default(), &chain);
    let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nitro");
    if std::env::var_os("CLOISTER_WRITE_VECTORS").is_some() {
        std::fs::create_dir_all(&directory).unwrap();
        std::fs::write(directory.join("test_document.cose"), &document).unwrap();
        std::fs::write(directory.join("test_root.der"), &chain.root).unwrap();
    }
    assert_eq!(support::read("nitro/test_document.cose"), document);
    assert_eq!(support::read("nitro/test_root.der"), chain.root);
}
