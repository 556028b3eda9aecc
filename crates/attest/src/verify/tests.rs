use cloister_proto::attest::{AttestationData, Evidence, GroupConfig, SimQuote};
use prost::Message;

use super::*;
use crate::TcbStatus;

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
fn simulated_evidence_attests_its_security_version() {
    let plain = verify(&good_evidence(), &[], &lenient(), NOW).unwrap();
    assert_eq!(
        plain.claims().attested_values()["sim.security_version"],
        0u32.to_be_bytes()
    );
    let evidence = sim::attest_with_security_version(&statement(true), NOW, 7).encode_to_vec();
    let versioned = verify(&evidence, &[], &lenient(), NOW).unwrap();
    assert_eq!(
        versioned
            .claims()
            .attested_values()
            .iter()
            .collect::<Vec<_>>(),
        [(
            &"sim.security_version".to_owned(),
            &7u32.to_be_bytes().to_vec()
        )]
    );
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
fn an_unspecified_or_unknown_kind_is_unsupported() {
    let mut envelope = Evidence::decode(good_evidence().as_slice()).unwrap();
    for kind in [0, 99] {
        envelope.kind = kind;
        assert!(matches!(
            verify(&envelope.encode_to_vec(), &[], &lenient(), NOW),
            Err(AttestError::UnsupportedKind(_))
        ));
    }
}

#[test]
fn a_sim_quote_labelled_as_hardware_is_refused() {
    let mut envelope = Evidence::decode(good_evidence().as_slice()).unwrap();
    for kind in [
        EvidenceKind::SgxDcap,
        EvidenceKind::Tdx,
        EvidenceKind::SevSnp,
        EvidenceKind::Nitro,
    ] {
        envelope.kind = kind as i32;
        let error = verify(&envelope.encode_to_vec(), &[], &lenient(), NOW).unwrap_err();
        assert!(
            !matches!(
                error,
                AttestError::ReportDataMismatch | AttestError::UnsupportedKind(_)
            ),
            "{kind:?}: {error}"
        );
    }
}

#[test]
fn sim_takes_no_endorsements() {
    assert_eq!(
        verify(&good_evidence(), &[1, 2], &lenient(), NOW).unwrap_err(),
        AttestError::UnexpectedEndorsements("sim", 2)
    );
}

/// Claims as a hardware verifier would return them, with `report_data`.
fn hardware_claims(kind: EvidenceKind, report_data: Vec<u8>) -> Claims {
    Claims {
        kind,
        measurement: [1; 32],
        report_data,
        tcb_status: None,
        advisory_ids: Vec::new(),
        snp_tcb: None,
        debug: false,
        issued_at_unix_secs: None,
        validity: crate::claims::Validity::ALWAYS,
        details: Vec::new(),
        attested_values: Default::default(),
    }
}

#[test]
fn the_binding_layout_per_kind() {
    let data = statement(false).encode_to_vec();
    let hash = report_data(&data);
    for kind in [
        EvidenceKind::SgxDcap,
        EvidenceKind::Tdx,
        EvidenceKind::SevSnp,
    ] {
        let mut bound = hash.to_vec();
        bound.extend([0; 32]);
        assert_eq!(report_data_for(kind, &data), bound);
        assert_eq!(
            check_binding(&hardware_claims(kind, bound.clone()), &data),
            Ok(())
        );
        // The hash alone, a non-zero tail, or another statement's hash: refused.
        let mut tail = bound.clone();
        tail[63] = 1;
        let other = report_data_for(kind, b"another statement");
        for wrong in [hash.to_vec(), tail, other] {
            assert_eq!(
                check_binding(&hardware_claims(kind, wrong), &data),
                Err(AttestError::ReportDataMismatch),
                "{kind:?}"
            );
        }
    }
    for kind in [EvidenceKind::Nitro, EvidenceKind::Sim] {
        assert_eq!(report_data_for(kind, &data), hash.to_vec());
        let mut padded = hash.to_vec();
        padded.extend([0; 32]);
        assert_eq!(
            check_binding(&hardware_claims(kind, hash.to_vec()), &data),
            Ok(())
        );
        for wrong in [padded, Vec::new(), hash[..31].to_vec()] {
            assert_eq!(
                check_binding(&hardware_claims(kind, wrong), &data),
                Err(AttestError::ReportDataMismatch)
            );
        }
    }
}

#[test]
fn policy_refuses_debug_revoked_and_unlisted_tcb_whatever_it_allows() {
    let policy = Policy::strict(vec![[1; 32]])
        .allow_tcb_status(TcbStatus::Revoked)
        .allow_tcb_status(TcbStatus::OutOfDate)
        .allow_advisory("INTEL-SA-00001");
    let mut claims = hardware_claims(EvidenceKind::SgxDcap, Vec::new());
    claims.tcb_status = Some(TcbStatus::UpToDate);
    assert_eq!(policy.check(&claims, NOW), Ok(()));
    claims.debug = true;
    assert_eq!(policy.check(&claims, NOW), Err(AttestError::DebugEnclave));
    claims.debug = false;
    claims.tcb_status = Some(TcbStatus::Revoked);
    assert_eq!(policy.check(&claims, NOW), Err(AttestError::TcbRevoked));
    claims.tcb_status = Some(TcbStatus::OutOfDate);
    claims.advisory_ids = vec!["INTEL-SA-00001".into()];
    assert_eq!(policy.check(&claims, NOW), Ok(()));
    claims.advisory_ids.push("INTEL-SA-00002".into());
    assert!(matches!(
        policy.check(&claims, NOW),
        Err(AttestError::TcbNotAllowed { advisories_not_allowed, .. }) if advisories_not_allowed == ["INTEL-SA-00002"]
    ));
    claims.advisory_ids.clear();
    claims.tcb_status = Some(TcbStatus::SwHardeningNeeded);
    assert!(matches!(
        policy.check(&claims, NOW),
        Err(AttestError::TcbNotAllowed { .. })
    ));
}

#[test]
fn tcb_status_names_round_trip() {
    for status in TcbStatus::ALL {
        assert_eq!(status.as_str().parse::<TcbStatus>(), Ok(status));
    }
    assert!("Fine".parse::<TcbStatus>().is_err());
}
