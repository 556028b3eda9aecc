//! SEV-SNP: the real Milan report against AMD's chain, and reports signed by a test chain
//! for what real hardware will not hand us (debug guests, other measurements, bindings).

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cloister_attest::{
    AttestError, Policy, SnpTcb, derived_measurement, report_data_for, verify, verify_evidence,
};
use cloister_proto::attest::{AttestationData, Evidence, EvidenceKind, GroupConfig};
use prost::Message;
use support::sev::{self, MILAN_NOT_AFTER, MILAN_NOT_BEFORE};

const NOW: u64 = 1_750_000_000;

fn measurement_of(report: &[u8]) -> [u8; 32] {
    derived_measurement(
        "sev-snp",
        &[&report[sev::MEASUREMENT..sev::MEASUREMENT + 48]],
    )
}

fn policy_for(report: &[u8]) -> Policy {
    Policy::strict(vec![measurement_of(report)])
}

fn check(report: &[u8], endorsements: &[u8], policy: &Policy, now: u64) -> Result<(), AttestError> {
    verify_evidence(EvidenceKind::SevSnp, report, endorsements, policy, now).map(|_| ())
}

#[test]
fn the_milan_report_verifies_against_amds_chain_inside_the_vceks_window() {
    let report = sev::milan_report();
    let endorsements = sev::milan_endorsements();
    let claims = verify_evidence(
        EvidenceKind::SevSnp,
        &report,
        &endorsements,
        &policy_for(&report),
        NOW,
    )
    .unwrap();
    assert_eq!(claims.kind(), EvidenceKind::SevSnp);
    assert_eq!(claims.measurement(), &measurement_of(&report));
    assert_eq!(
        claims.report_data(),
        &report[sev::REPORT_DATA..sev::REPORT_DATA + 64]
    );
    assert!(!claims.debug());
    assert_eq!(
        claims.snp_tcb(),
        Some(&SnpTcb {
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 115,
            fmc: None
        })
    );
    assert_eq!(claims.validity().not_before_unix_secs, MILAN_NOT_BEFORE);
    assert_eq!(claims.validity().not_after_unix_secs, MILAN_NOT_AFTER);
    assert_eq!(claims.tcb_status(), None);
    let guest_svn = u32::from_le_bytes([report[4], report[5], report[6], report[7]]);
    let expected: Vec<(&str, Vec<u8>)> = vec![
        ("snp.bootloader", vec![3]),
        ("snp.guest_svn", guest_svn.to_be_bytes().to_vec()),
        ("snp.microcode", vec![115]),
        ("snp.snp", vec![8]),
        ("snp.tee", vec![0]),
    ];
    assert_eq!(
        claims
            .attested_values()
            .iter()
            .map(|(name, value)| (name.as_str(), value.clone()))
            .collect::<Vec<_>>(),
        expected
    );
}

#[test]
fn the_milan_report_fails_outside_the_vceks_window() {
    let (report, endorsements) = (sev::milan_report(), sev::milan_endorsements());
    let policy = policy_for(&report);
    for now in [MILAN_NOT_BEFORE, MILAN_NOT_AFTER] {
        assert_eq!(
            check(&report, &endorsements, &policy, now),
            Ok(()),
            "at {now}"
        );
    }
    for now in [MILAN_NOT_BEFORE - 1, MILAN_NOT_AFTER + 1] {
        assert!(
            matches!(
                check(&report, &endorsements, &policy, now),
                Err(AttestError::OutsideValidityWindow { now: at, .. }) if at == now
            ),
            "at {now}"
        );
    }
}

#[test]
fn flipping_any_byte_of_the_report_fails() {
    let (report, endorsements) = (sev::milan_report(), sev::milan_endorsements());
    let policy = policy_for(&report).insecure_any_measurement();
    for index in 0..report.len() {
        let mut forged = report.clone();
        forged[index] ^= 0x01;
        let result = check(&forged, &endorsements, &policy, NOW);
        assert!(result.is_err(), "byte {index:#x} flipped still verifies");
    }
}

#[test]
fn flipping_any_byte_of_the_vcek_fails() {
    let report = sev::milan_report();
    let (ask, ark) = sev::chain_from_pem("sev-snp/cert_chain_milan");
    let vcek = support::read("sev-snp/vcek_milan.der");
    let policy = policy_for(&report);
    for index in 0..vcek.len() {
        let mut forged = vcek.clone();
        forged[index] ^= 0x01;
        let endorsements = sev::endorsements(&forged, &ask, &ark);
        assert!(
            check(&report, &endorsements, &policy, NOW).is_err(),
            "VCEK byte {index}"
        );
    }
}

#[test]
fn another_chips_certificates_are_refused() {
    let report = sev::milan_report();
    let (milan_ask, milan_ark) = sev::chain_from_pem("sev-snp/cert_chain_milan");
    let (turin_ask, turin_ark) = sev::chain_from_pem("sev-snp/cert_chain_turin");
    let turin_vcek = support::read("sev-snp/vcek_turin.der");
    let policy = policy_for(&report);
    // A Turin VCEK under Milan's ASK: the ASK did not sign it.
    let mixed = sev::endorsements(&turin_vcek, &milan_ask, &milan_ark);
    assert!(matches!(
        check(&report, &mixed, &policy, NOW),
        Err(AttestError::CertificateChain(_))
    ));
    // Turin's whole, valid chain: its VCEK did not sign a Milan report.
    let turin = sev::endorsements(&turin_vcek, &turin_ask, &turin_ark);
    assert!(matches!(
        check(&report, &turin, &policy, NOW),
        Err(AttestError::BadSignature(_))
    ));
}

#[test]
fn a_chain_to_an_untrusted_root_is_refused() {
    let report = sev::milan_report();
    let chain = sev::chain_for(&report);
    let signed = sev::signed(&report, &chain.vcek_key, |_| {});
    assert!(matches!(
        check(&signed, &chain.endorsements(), &policy_for(&report), NOW),
        Err(AttestError::CertificateChain(reason)) if reason.contains("not a trusted AMD root")
    ));
    // The same evidence passes once the test ARK is the trusted root.
    let policy = policy_for(&report).with_amd_root_keys(vec![chain.ark.clone()]);
    assert_eq!(check(&signed, &chain.endorsements(), &policy, NOW), Ok(()));
}

#[test]
fn a_debug_guest_is_refused() {
    let report = sev::milan_report();
    let chain = sev::chain_for(&report);
    let policy = policy_for(&report).with_amd_root_keys(vec![chain.ark.clone()]);
    let debug = sev::signed(&report, &chain.vcek_key, |report| sev::set_debug(report));
    assert_eq!(
        check(&debug, &chain.endorsements(), &policy, NOW),
        Err(AttestError::DebugEnclave)
    );
}

#[test]
fn a_wrong_measurement_is_refused() {
    let report = sev::milan_report();
    let chain = sev::chain_for(&report);
    let policy = policy_for(&report).with_amd_root_keys(vec![chain.ark.clone()]);
    let other = sev::signed(&report, &chain.vcek_key, |report| {
        report[sev::MEASUREMENT] ^= 0xff;
    });
    assert_eq!(
        check(&other, &chain.endorsements(), &policy, NOW),
        Err(AttestError::MeasurementNotAccepted(hex::encode(
            measurement_of(&other)
        )))
    );
}

#[test]
fn a_tcb_below_the_policys_minimum_is_refused() {
    let report = sev::milan_report();
    let endorsements = sev::milan_endorsements();
    let minimum = |snp| SnpTcb {
        bootloader: 3,
        tee: 0,
        snp,
        microcode: 115,
        fmc: None,
    };
    let at_minimum = policy_for(&report).with_snp_minimum_tcb(minimum(8));
    assert_eq!(check(&report, &endorsements, &at_minimum, NOW), Ok(()));
    let above = policy_for(&report).with_snp_minimum_tcb(minimum(9));
    assert_eq!(
        check(&report, &endorsements, &above, NOW),
        Err(AttestError::TcbBelowMinimum {
            component: "snp",
            reported: 8,
            minimum: 9
        })
    );
}

#[test]
fn a_vcek_for_another_tcb_or_chip_is_refused() {
    let report = sev::milan_report();
    let chip_id = &report[sev::CHIP_ID..sev::CHIP_ID + 64];
    let mut newer = sev::reported_tcb(&report);
    newer[2] += 1;
    let for_newer_tcb = sev::amd_chain(newer, chip_id);
    let other_chip = sev::amd_chain(sev::reported_tcb(&report), &[0x42; 64]);
    for chain in [for_newer_tcb, other_chip] {
        let policy = policy_for(&report).with_amd_root_keys(vec![chain.ark.clone()]);
        let signed = sev::signed(&report, &chain.vcek_key, |_| {});
        assert!(matches!(
            check(&signed, &chain.endorsements(), &policy, NOW),
            Err(AttestError::CertificateChain(reason)) if reason.contains("VCEK")
        ));
    }
}

#[test]
fn truncated_oversized_and_missing_pieces_are_refused() {
    let (report, endorsements) = (sev::milan_report(), sev::milan_endorsements());
    let policy = policy_for(&report);
    assert_eq!(
        check(&report[..report.len() - 1], &endorsements, &policy, NOW),
        Err(AttestError::Truncated {
            what: "SEV-SNP report",
            bytes: 1183,
            needed: 1184
        })
    );
    let mut longer = report.clone();
    longer.push(0);
    assert_eq!(
        check(&longer, &endorsements, &policy, NOW),
        Err(AttestError::TrailingBytes {
            what: "SEV-SNP report",
            extra: 1
        })
    );
    assert!(matches!(
        check(&report, &[], &policy, NOW),
        Err(AttestError::MissingEndorsements("sev-snp", _))
    ));
    assert_eq!(
        check(&report, &[0xff; 16], &policy, NOW),
        Err(AttestError::Malformed("SEV-SNP endorsements"))
    );
    let huge = vec![0; cloister_attest::EVIDENCE_BYTES_MAX + 1];
    assert_eq!(
        check(&huge, &endorsements, &policy, NOW),
        Err(AttestError::EvidenceTooLarge(huge.len()))
    );
}

fn statement() -> AttestationData {
    AttestationData {
        public_key: vec![3; 32],
        group_config: Some(GroupConfig {
            group_id: 5,
            ..Default::default()
        }),
        minimum_limits: None,
    }
}

#[test]
fn a_report_bound_to_its_statement_verifies_and_any_other_statement_is_refused() {
    let report = sev::milan_report();
    let chain = sev::chain_for(&report);
    let policy = policy_for(&report).with_amd_root_keys(vec![chain.ark.clone()]);
    let attestation_data = statement().encode_to_vec();
    let bound = sev::signed(&report, &chain.vcek_key, |report| {
        let report_data = report_data_for(EvidenceKind::SevSnp, &attestation_data);
        report[sev::REPORT_DATA..sev::REPORT_DATA + 64].copy_from_slice(&report_data);
    });
    let evidence = |attestation_data: Vec<u8>, report: &[u8]| {
        Evidence {
            kind: EvidenceKind::SevSnp as i32,
            report: report.to_vec(),
            attestation_data,
        }
        .encode_to_vec()
    };
    let verified = verify(
        &evidence(attestation_data.clone(), &bound),
        &chain.endorsements(),
        &policy,
        NOW,
    )
    .unwrap();
    assert_eq!(verified.public_key(), &[3; 32]);
    assert_eq!(verified.group_config().group_id, 5);
    assert!(!verified.simulated());
    assert_eq!(verified.timestamp_unix_secs(), NOW);

    let mut other = statement();
    other.public_key = vec![4; 32];
    assert_eq!(
        verify(
            &evidence(other.encode_to_vec(), &bound),
            &chain.endorsements(),
            &policy,
            NOW
        )
        .unwrap_err(),
        AttestError::ReportDataMismatch
    );
    // The real report was not made for a Cloister statement: its platform proof holds, the
    // binding does not.
    let real = Policy::strict(vec![measurement_of(&report)]);
    assert_eq!(
        verify(
            &evidence(attestation_data, &report),
            &sev::milan_endorsements(),
            &real,
            NOW
        )
        .unwrap_err(),
        AttestError::ReportDataMismatch
    );
}
