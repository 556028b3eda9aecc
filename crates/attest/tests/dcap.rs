//! SGX and TDX: Intel's sample quotes and collateral (tests/data/sgx-dcap, from dcap-qvl).

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cloister_attest::{
    AttestError, Claims, Policy, TcbStatus, derived_measurement, report_data_for, verify,
    verify_evidence,
};
use cloister_proto::attest::{AttestationData, Evidence, EvidenceKind, GroupConfig};
use prost::Message;
use support::dcap::{self, SGX_VALID_FROM, SGX_VALID_UNTIL, TDX_NOW, TDX_OUTDATED_NOW};
use support::intel;

const SGX_ADVISORIES: [&str; 2] = ["INTEL-SA-00289", "INTEL-SA-00615"];

/// MRENCLAVE: the SGX report body starts after the 48-byte header; MRENCLAVE is at 64.
fn mr_enclave(quote: &[u8]) -> [u8; 32] {
    quote[48 + 64..48 + 96].try_into().unwrap()
}

/// MRTD and RTMR0-2 in a TD 1.0 report body (offsets 136, 328, 376, 424 of the body).
fn tdx_measurement(quote: &[u8]) -> [u8; 32] {
    let body = &quote[48..];
    derived_measurement(
        "tdx",
        &[
            &body[136..184],
            &body[328..376],
            &body[376..424],
            &body[424..472],
        ],
    )
}

/// What the SGX sample needs: its measurement, and its status with both advisories.
fn sgx_policy(quote: &[u8]) -> Policy {
    Policy::strict(vec![mr_enclave(quote)])
        .allow_tcb_status(TcbStatus::ConfigurationAndSwHardeningNeeded)
        .allow_advisory(SGX_ADVISORIES[0])
        .allow_advisory(SGX_ADVISORIES[1])
}

fn check(
    kind: EvidenceKind,
    vector: &dcap::Vector,
    policy: &Policy,
    now: u64,
) -> Result<Claims, AttestError> {
    verify_evidence(kind, &vector.quote, &vector.collateral, policy, now)
}

#[test]
fn the_sgx_sample_verifies_inside_its_collateral_window() {
    let sgx = dcap::vector("sgx_quote");
    let claims = check(
        EvidenceKind::SgxDcap,
        &sgx,
        &sgx_policy(&sgx.quote),
        SGX_VALID_FROM,
    )
    .unwrap();
    assert_eq!(claims.kind(), EvidenceKind::SgxDcap);
    assert_eq!(claims.measurement(), &mr_enclave(&sgx.quote));
    assert_eq!(
        claims.tcb_status(),
        Some(TcbStatus::ConfigurationAndSwHardeningNeeded)
    );
    assert_eq!(claims.advisory_ids(), SGX_ADVISORIES);
    assert_eq!(claims.report_data(), &sgx.quote[48 + 320..48 + 384]);
    // ISVSVN: little-endian at byte 258 of the report body, attested big-endian.
    let isv_svn = u16::from_le_bytes([sgx.quote[48 + 258], sgx.quote[48 + 259]]);
    assert_eq!(
        claims.attested_values().iter().collect::<Vec<_>>(),
        [(&"sgx.isv_svn".to_owned(), &isv_svn.to_be_bytes().to_vec())]
    );
    assert!(!claims.debug());
    assert_eq!(claims.validity().not_before_unix_secs, SGX_VALID_FROM);
    assert_eq!(claims.validity().not_after_unix_secs, SGX_VALID_UNTIL);
    assert!(
        check(
            EvidenceKind::SgxDcap,
            &sgx,
            &sgx_policy(&sgx.quote),
            SGX_VALID_UNTIL
        )
        .is_ok()
    );
}

#[test]
fn the_sgx_sample_fails_outside_its_collateral_window() {
    let sgx = dcap::vector("sgx_quote");
    for now in [SGX_VALID_FROM - 1, SGX_VALID_UNTIL + 1, 0, u64::MAX / 2] {
        assert!(
            matches!(
                check(EvidenceKind::SgxDcap, &sgx, &sgx_policy(&sgx.quote), now),
                Err(AttestError::OutsideValidityWindow { now: at, .. }) if at == now
            ),
            "at {now}"
        );
    }
}

#[test]
fn a_strict_policy_refuses_a_tcb_that_needs_hardening_and_names_why() {
    let sgx = dcap::vector("sgx_quote");
    let strict = Policy::strict(vec![mr_enclave(&sgx.quote)]);
    let error = check(EvidenceKind::SgxDcap, &sgx, &strict, SGX_VALID_FROM).unwrap_err();
    assert_eq!(
        error,
        AttestError::TcbNotAllowed {
            status: TcbStatus::ConfigurationAndSwHardeningNeeded,
            advisory_ids: SGX_ADVISORIES.map(String::from).to_vec(),
            allowed_statuses: vec![TcbStatus::UpToDate],
            advisories_not_allowed: SGX_ADVISORIES.map(String::from).to_vec(),
        }
    );
    assert!(error.to_string().contains("INTEL-SA-00615"), "{error}");
    // The status alone is not enough: every advisory must be on the allowlist.
    let one_advisory = Policy::strict(vec![mr_enclave(&sgx.quote)])
        .allow_tcb_status(TcbStatus::ConfigurationAndSwHardeningNeeded)
        .allow_advisory(SGX_ADVISORIES[0]);
    assert!(matches!(
        check(EvidenceKind::SgxDcap, &sgx, &one_advisory, SGX_VALID_FROM),
        Err(AttestError::TcbNotAllowed { advisories_not_allowed, .. })
            if advisories_not_allowed == [SGX_ADVISORIES[1]]
    ));
}

#[test]
fn the_tdx_sample_verifies_up_to_date_inside_its_window_only() {
    let tdx = dcap::vector("tdx_quote");
    let policy = Policy::strict(vec![tdx_measurement(&tdx.quote)]);
    let claims = check(EvidenceKind::Tdx, &tdx, &policy, TDX_NOW).unwrap();
    assert_eq!(claims.kind(), EvidenceKind::Tdx);
    assert_eq!(claims.tcb_status(), Some(TcbStatus::UpToDate));
    assert!(claims.advisory_ids().is_empty());
    // TEE_TCB_SVN: the first 16 bytes of the TD report body, one value per component.
    let values = claims.attested_values();
    assert_eq!(values.len(), 16);
    for index in 0..16 {
        assert_eq!(
            values[&format!("tdx.tee_tcb_svn.{index}")],
            [tdx.quote[48 + index]]
        );
    }
    assert!(!claims.debug());
    let window = claims.validity();
    assert!(window.contains(TDX_NOW));
    for now in [
        window.not_before_unix_secs - 1,
        window.not_after_unix_secs + 1,
    ] {
        assert!(
            matches!(
                check(EvidenceKind::Tdx, &tdx, &policy, now),
                Err(AttestError::OutsideValidityWindow { .. })
            ),
            "at {now}"
        );
    }
}

#[test]
fn an_outdated_tdx_platform_is_refused() {
    let outdated = dcap::vector("tdx_quote_outdated");
    let policy = Policy::strict(vec![tdx_measurement(&outdated.quote)])
        .allow_tcb_status(TcbStatus::OutOfDate);
    assert!(matches!(
        check(EvidenceKind::Tdx, &outdated, &policy, TDX_OUTDATED_NOW),
        Err(AttestError::NoMatchingTcbLevel(_))
    ));
    // Outside its collateral window it fails on the window first.
    assert!(matches!(
        check(EvidenceKind::Tdx, &outdated, &policy, TDX_NOW),
        Err(AttestError::OutsideValidityWindow { .. })
    ));
}

#[test]
fn a_wrong_measurement_is_refused() {
    let sgx = dcap::vector("sgx_quote");
    let policy = sgx_policy(&sgx.quote);
    let other = Policy::strict(vec![[7; 32]])
        .allow_tcb_status(TcbStatus::ConfigurationAndSwHardeningNeeded)
        .allow_advisory(SGX_ADVISORIES[0])
        .allow_advisory(SGX_ADVISORIES[1]);
    assert!(check(EvidenceKind::SgxDcap, &sgx, &policy, SGX_VALID_FROM).is_ok());
    assert_eq!(
        check(EvidenceKind::SgxDcap, &sgx, &other, SGX_VALID_FROM).unwrap_err(),
        AttestError::MeasurementNotAccepted(hex::encode(mr_enclave(&sgx.quote)))
    );
}

/// Every byte of a quote is signed (header and body by the attestation key; the QE report
/// by the PCK; the attestation key and QE authentication data through the QE report's hash;
/// the certificates by their issuers) except the PEM armour around the certificates: line
/// breaks, dashes and the trailing NUL are text encoding, not signed content.
#[test]
fn flipping_any_signed_byte_of_a_quote_fails() {
    for (kind, name, now) in [
        (EvidenceKind::SgxDcap, "sgx_quote", SGX_VALID_FROM),
        (EvidenceKind::Tdx, "tdx_quote", TDX_NOW),
    ] {
        let vector = dcap::vector(name);
        let policy = sgx_policy(&vector.quote).insecure_any_measurement();
        // The armour lines, line breaks and NUL after the first "-----BEGIN ".
        let quote = &vector.quote;
        let pem_start = quote
            .windows(11)
            .position(|window| window == b"-----BEGIN ")
            .unwrap();
        let mut armour = vec![false; quote.len()];
        let mut line_start = pem_start;
        for index in pem_start..=quote.len() {
            if index == quote.len() || quote[index] == b'\n' {
                let is_armour = quote[line_start..index].starts_with(b"-----");
                for flag in &mut armour[line_start..index] {
                    *flag = is_armour;
                }
                if index < quote.len() {
                    armour[index] = true;
                }
                line_start = index + 1;
            }
        }
        armour[quote.len() - 1] |= quote[quote.len() - 1] == 0;
        let armour = |index: usize| armour[index];
        for index in (0..vector.quote.len()).filter(|index| !armour(*index)) {
            let mut quote = vector.quote.clone();
            quote[index] ^= 0x01;
            let forged = dcap::Vector {
                quote,
                collateral: vector.collateral.clone(),
            };
            assert!(
                check(kind, &forged, &policy, now).is_err(),
                "{name} byte {index}"
            );
        }
    }
}

/// The signed collateral: TCB info and QE identity (JSON text signed as is) and both CRLs
/// (DER, as hex). Every 7th byte, to keep the test short; the signatures cover every byte
/// alike.
#[test]
fn flipping_bytes_of_the_signed_collateral_fails() {
    let sgx = dcap::vector("sgx_quote");
    let policy = sgx_policy(&sgx.quote);
    let collateral: serde_json::Value = serde_json::from_slice(&sgx.collateral).unwrap();
    let forge = |field: &str, index: usize| -> Option<Vec<u8>> {
        let mut forged = collateral.clone();
        // JSON text for TCB info and QE identity, hex for the CRLs.
        let serde_json::Value::String(text) = &mut forged[field] else {
            panic!("{field}")
        };
        let mut bytes = text.clone().into_bytes();
        *bytes.get_mut(index)? ^= 0x01;
        *text = String::from_utf8(bytes).ok()?;
        Some(serde_json::to_vec(&forged).unwrap())
    };
    let mut checked = 0;
    for field in ["tcb_info", "qe_identity", "root_ca_crl", "pck_crl"] {
        for index in (0..).step_by(7) {
            let Some(collateral) = forge(field, index) else {
                break;
            };
            let forged = dcap::Vector {
                quote: sgx.quote.clone(),
                collateral,
            };
            assert!(
                check(EvidenceKind::SgxDcap, &forged, &policy, SGX_VALID_FROM).is_err(),
                "{field} byte {index}"
            );
            checked += 1;
        }
    }
    assert!(checked > 900, "only {checked} flips checked");
}

#[test]
fn truncated_oversized_and_mislabelled_quotes_are_refused() {
    let sgx = dcap::vector("sgx_quote");
    let policy = sgx_policy(&sgx.quote);
    let with_quote = |quote: &[u8]| dcap::Vector {
        quote: quote.to_vec(),
        collateral: sgx.collateral.clone(),
    };
    for cut in [0, 47, 48, 436, sgx.quote.len() - 1] {
        assert!(
            matches!(
                check(
                    EvidenceKind::SgxDcap,
                    &with_quote(&sgx.quote[..cut]),
                    &policy,
                    SGX_VALID_FROM
                ),
                Err(AttestError::Truncated {
                    what: "DCAP quote",
                    ..
                })
            ),
            "cut at {cut}"
        );
    }
    // Zero padding after the quote, as platform buffers carry, is not part of the quote;
    // anything else there is refused.
    let mut padded = sgx.quote.clone();
    padded.extend([0; 3]);
    assert!(
        check(
            EvidenceKind::SgxDcap,
            &with_quote(&padded),
            &policy,
            SGX_VALID_FROM
        )
        .is_ok()
    );
    let mut longer = sgx.quote.clone();
    longer.extend([0, 1, 0]);
    assert_eq!(
        check(
            EvidenceKind::SgxDcap,
            &with_quote(&longer),
            &policy,
            SGX_VALID_FROM
        )
        .unwrap_err(),
        AttestError::TrailingBytes {
            what: "DCAP quote",
            extra: 3
        }
    );
    assert_eq!(
        check(EvidenceKind::Tdx, &sgx, &policy, SGX_VALID_FROM).unwrap_err(),
        AttestError::KindMismatch {
            claimed: "tdx",
            found: "sgx-dcap"
        }
    );
    let no_collateral = verify_evidence(
        EvidenceKind::SgxDcap,
        &sgx.quote,
        &[],
        &policy,
        SGX_VALID_FROM,
    );
    assert!(matches!(
        no_collateral,
        Err(AttestError::MissingEndorsements("sgx-dcap", _))
    ));
    let garbage = verify_evidence(
        EvidenceKind::SgxDcap,
        &sgx.quote,
        b"{}",
        &policy,
        SGX_VALID_FROM,
    );
    assert!(matches!(
        garbage,
        Err(AttestError::Unparsable {
            what: "DCAP collateral",
            ..
        })
    ));
}

#[test]
fn a_replaced_root_ca_refuses_intels_chain() {
    let sgx = dcap::vector("sgx_quote");
    let other_root = support::nitro::chain().root;
    let policy = sgx_policy(&sgx.quote).with_intel_root_ca(other_root);
    assert!(matches!(
        check(EvidenceKind::SgxDcap, &sgx, &policy, SGX_VALID_FROM),
        Err(AttestError::CertificateChain(_))
    ));
}

#[test]
fn the_real_quote_binds_no_cloister_statement() {
    let sgx = dcap::vector("sgx_quote");
    let evidence = Evidence {
        kind: EvidenceKind::SgxDcap as i32,
        report: sgx.quote.clone(),
        attestation_data: vec![0x0a, 0x20, 1, 2, 3],
    };
    assert_eq!(
        verify(
            &evidence.encode_to_vec(),
            &sgx.collateral,
            &sgx_policy(&sgx.quote),
            SGX_VALID_FROM
        )
        .unwrap_err(),
        AttestError::ReportDataMismatch
    );
}

/// The sample re-signed by a test Intel PKI (tests/support/intel.rs), and a policy that
/// trusts its root and accepts the sample's TCB.
fn resigned(
    edit_body: impl FnOnce(&mut [u8]),
    edit_tcb_info: impl FnOnce(&mut serde_json::Value),
) -> (dcap::Vector, Policy) {
    let sample = intel::sample();
    let pki = intel::Pki::for_sample(&sample.quote);
    let vector = dcap::Vector {
        quote: pki.quote(&sample.quote, edit_body),
        collateral: pki.collateral(&sample.collateral, edit_tcb_info),
    };
    let policy = sgx_policy(&vector.quote).with_intel_root_ca(pki.root.clone());
    (vector, policy)
}

#[test]
fn a_quote_resigned_by_a_test_pki_verifies_under_its_root_only() {
    let (vector, policy) = resigned(|_| {}, |_| {});
    let claims = check(EvidenceKind::SgxDcap, &vector, &policy, SGX_VALID_FROM).unwrap();
    assert_eq!(
        claims.tcb_status(),
        Some(TcbStatus::ConfigurationAndSwHardeningNeeded)
    );
    let intels = sgx_policy(&vector.quote);
    assert!(matches!(
        check(EvidenceKind::SgxDcap, &vector, &intels, SGX_VALID_FROM),
        Err(AttestError::CertificateChain(_))
    ));
}

#[test]
fn a_debug_enclave_is_refused() {
    let (vector, policy) = resigned(|body| body[intel::ATTRIBUTES] |= 0x02, |_| {});
    assert_eq!(
        check(EvidenceKind::SgxDcap, &vector, &policy, SGX_VALID_FROM).unwrap_err(),
        AttestError::DebugEnclave
    );
}

#[test]
fn a_revoked_tcb_is_refused_whatever_the_policy_allows() {
    let (vector, policy) = resigned(
        |_| {},
        |tcb_info| {
            for level in tcb_info["tcbLevels"].as_array_mut().unwrap() {
                level["tcbStatus"] = "Revoked".into();
            }
        },
    );
    let policy = policy.allow_tcb_status(TcbStatus::Revoked);
    assert_eq!(
        check(EvidenceKind::SgxDcap, &vector, &policy, SGX_VALID_FROM).unwrap_err(),
        AttestError::TcbRevoked
    );
}

#[test]
fn a_quote_bound_to_its_statement_verifies_and_any_other_statement_is_refused() {
    let statement = AttestationData {
        public_key: vec![8; 32],
        group_config: Some(GroupConfig {
            group_id: 11,
            ..Default::default()
        }),
        minimum_limits: None,
    }
    .encode_to_vec();
    let report_data = report_data_for(EvidenceKind::SgxDcap, &statement);
    let (vector, policy) = resigned(
        |body| body[intel::REPORT_DATA..intel::REPORT_DATA + 64].copy_from_slice(&report_data),
        |_| {},
    );
    let evidence = |attestation_data: Vec<u8>| {
        Evidence {
            kind: EvidenceKind::SgxDcap as i32,
            report: vector.quote.clone(),
            attestation_data,
        }
        .encode_to_vec()
    };
    let verified = verify(
        &evidence(statement.clone()),
        &vector.collateral,
        &policy,
        SGX_VALID_FROM,
    )
    .unwrap();
    assert_eq!(verified.public_key(), &[8; 32]);
    assert_eq!(verified.group_config().group_id, 11);
    let mut other = statement;
    other[2] ^= 1;
    assert_eq!(
        verify(
            &evidence(other),
            &vector.collateral,
            &policy,
            SGX_VALID_FROM
        )
        .unwrap_err(),
        AttestError::ReportDataMismatch
    );
}
