use cloister_proto::attest::{AttestationData, Evidence, GroupConfig, SimQuote};
use prost::Message;

use super::*;

const NOW: u64 = 1_750_000_000;

fn statement(simulated: bool) -> AttestationData {
    AttestationData {
        public_key: vec![9; 32],
        group_config: Some(GroupConfig {
            group_id: 42,
            simulated,
            ..Default::default()
        }),
        minimum_limits: None,
    }
}

fn good_evidence() -> Vec<u8> {
    sim::attest(&statement(true), NOW).encode_to_vec()
}

fn lenient() -> Policy {
    Policy::insecure_allow_simulated(vec![sim::measurement()])
}

#[test]
fn simulated_evidence_verifies_under_a_lenient_policy() {
    let verified = verify(&good_evidence(), &[], &lenient(), NOW + 10).unwrap();
    assert_eq!(verified.public_key(), &[9; 32]);
    assert_eq!(verified.group_config().group_id, 42);
    assert_eq!(verified.measurement(), &sim::measurement());
    assert!(verified.simulated());
}

#[test]
fn strict_policy_refuses_simulated_evidence() {
    let strict = Policy::strict(vec![sim::measurement()]);
    assert_eq!(
        verify(&good_evidence(), &[], &strict, NOW).unwrap_err(),
        AttestError::SimulatedNotAllowed
    );
}

#[test]
fn every_flipped_byte_of_the_signed_report_fails() {
    let envelope = Evidence::decode(good_evidence().as_slice()).unwrap();
    let quote = SimQuote::decode(envelope.report.as_slice()).unwrap();
    for index in 0..quote.report.len() {
        let mut report = quote.report.clone();
        report[index] ^= 1;
        let forged = Evidence {
            report: SimQuote {
                report,
                signature: quote.signature.clone(),
            }
            .encode_to_vec(),
            ..envelope.clone()
        };
        assert!(
            verify(&forged.encode_to_vec(), &[], &lenient(), NOW).is_err(),
            "byte {index}"
        );
    }
}

#[test]
fn changed_statement_breaks_the_binding() {
    let mut envelope = Evidence::decode(good_evidence().as_slice()).unwrap();
    envelope.attestation_data = statement(true)
        .encode_to_vec()
        .into_iter()
        .map(|byte| if byte == 9 { 8 } else { byte })
        .collect();
    assert_eq!(
        verify(&envelope.encode_to_vec(), &[], &lenient(), NOW).unwrap_err(),
        AttestError::ReportDataMismatch
    );
}

#[test]
fn wrong_measurement_is_refused() {
    let policy = Policy::insecure_allow_simulated(vec![[0; 32]]);
    assert!(matches!(
        verify(&good_evidence(), &[], &policy, NOW),
        Err(AttestError::MeasurementNotAccepted(_))
    ));
}

#[test]
fn evidence_outside_its_window_is_refused() {
    let age = Policy::EVIDENCE_AGE_MAX_SECS;
    assert!(verify(&good_evidence(), &[], &lenient(), NOW + age).is_ok());
    assert!(matches!(
        verify(&good_evidence(), &[], &lenient(), NOW + age + 1),
        Err(AttestError::Expired { .. })
    ));
    assert!(matches!(
        verify(
            &good_evidence(),
            &[],
            &lenient(),
            NOW - Policy::CLOCK_SKEW_MAX_SECS - 1
        ),
        Err(AttestError::FromTheFuture { .. })
    ));
}

#[test]
fn simulated_evidence_must_say_simulated() {
    let evidence = sim::attest(&statement(false), NOW).encode_to_vec();
    assert!(matches!(
        verify(&evidence, &[], &lenient(), NOW),
        Err(AttestError::InvalidStatement(_))
    ));
}

#[test]
fn garbage_truncated_and_oversized_evidence_is_refused() {
    let good = good_evidence();
    for cut in [0, 1, good.len() / 2, good.len() - 1] {
        assert!(
            verify(&good[..cut], &[], &lenient(), NOW).is_err(),
            "cut at {cut}"
        );
    }
    assert!(verify(&[0xff; 64], &[], &lenient(), NOW).is_err());
    assert_eq!(
        verify(&vec![0; EVIDENCE_BYTES_MAX + 1], &[], &lenient(), NOW).unwrap_err(),
        AttestError::EvidenceTooLarge(EVIDENCE_BYTES_MAX + 1)
    );
    assert!(matches!(
        verify(&good, &vec![0; ENDORSEMENTS_BYTES_MAX + 1], &lenient(), NOW),
        Err(AttestError::EndorsementsTooLarge(_))
    ));
}

#[test]
fn hardware_kinds_are_not_yet_supported() {
    let mut envelope = Evidence::decode(good_evidence().as_slice()).unwrap();
    envelope.kind = cloister_proto::attest::EvidenceKind::SgxDcap as i32;
    assert!(matches!(
        verify(&envelope.encode_to_vec(), &[], &lenient(), NOW),
        Err(AttestError::UnsupportedKind(_))
    ));
}
