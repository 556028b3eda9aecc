//! `unverified::inspect`: on every real vector it reads the same measurement and report data
//! as verification does, and it refuses what the verifiers refuse to parse.

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cloister_attest::unverified::{Inspected, inspect};
use cloister_attest::{
    AttestError, Claims, EVIDENCE_BYTES_MAX, Policy, TcbStatus, verify_evidence,
};
use cloister_proto::attest::EvidenceKind;
use support::dcap::{self, SGX_VALID_FROM, TDX_NOW};
use support::nitro::{self, Fields, ISSUED_AT};
use support::sev;

fn assert_same(inspected: &Inspected, claims: &Claims) {
    assert_eq!(&inspected.measurement, claims.measurement());
    assert_eq!(inspected.report_data, claims.report_data());
}

#[test]
fn the_sgx_sample_reads_as_verification_reads_it() {
    let sgx = dcap::vector("sgx_quote");
    let inspected = inspect(EvidenceKind::SgxDcap, &sgx.quote).unwrap();
    // MRENCLAVE as it is, at 64 of the report body; REPORTDATA at 320.
    assert_eq!(inspected.measurement, sgx.quote[48 + 64..48 + 96]);
    let policy = Policy::strict(vec![inspected.measurement])
        .allow_tcb_status(TcbStatus::ConfigurationAndSwHardeningNeeded)
        .allow_advisory("INTEL-SA-00289")
        .allow_advisory("INTEL-SA-00615");
    let claims = verify_evidence(
        EvidenceKind::SgxDcap,
        &sgx.quote,
        &sgx.collateral,
        &policy,
        SGX_VALID_FROM,
    )
    .unwrap();
    assert_same(&inspected, &claims);
    assert_eq!(inspected.report_data.len(), 64);
}

#[test]
fn the_tdx_samples_read_as_verification_reads_them() {
    let tdx = dcap::vector("tdx_quote");
    let inspected = inspect(EvidenceKind::Tdx, &tdx.quote).unwrap();
    let policy = Policy::strict(vec![inspected.measurement]);
    let claims = verify_evidence(
        EvidenceKind::Tdx,
        &tdx.quote,
        &tdx.collateral,
        &policy,
        TDX_NOW,
    )
    .unwrap();
    assert_same(&inspected, &claims);
    // The v5 sample (a body descriptor before the body) parses too; its platform is
    // outdated, so verification stops before the measurement: compare with the raw fields.
    let outdated = dcap::vector("tdx_quote_outdated");
    let inspected = inspect(EvidenceKind::Tdx, &outdated.quote).unwrap();
    let body = &outdated.quote[48 + 6..];
    assert_eq!(
        inspected.measurement,
        cloister_attest::derived_measurement(
            "tdx",
            &[
                &body[136..184],
                &body[328..376],
                &body[376..424],
                &body[424..472]
            ]
        )
    );
    assert_eq!(inspected.report_data, body[520..584]);
}

#[test]
fn the_milan_report_reads_as_verification_reads_it() {
    let report = sev::milan_report();
    let inspected = inspect(EvidenceKind::SevSnp, &report).unwrap();
    let claims = verify_evidence(
        EvidenceKind::SevSnp,
        &report,
        &sev::milan_endorsements(),
        &Policy::strict(vec![inspected.measurement]),
        1_750_000_000,
    )
    .unwrap();
    assert_same(&inspected, &claims);
    assert_eq!(
        inspected.report_data,
        report[sev::REPORT_DATA..sev::REPORT_DATA + 64]
    );
}

#[test]
fn a_nitro_document_reads_as_verification_reads_it() {
    let chain = nitro::chain();
    for fields in [
        Fields::default(),
        Fields {
            user_data: None,
            ..Fields::default()
        },
    ] {
        let document = nitro::document(&fields, &chain);
        let inspected = inspect(EvidenceKind::Nitro, &document).unwrap();
        let policy =
            Policy::strict(vec![inspected.measurement]).with_nitro_root(chain.root.clone());
        let claims =
            verify_evidence(EvidenceKind::Nitro, &document, &[], &policy, ISSUED_AT).unwrap();
        assert_same(&inspected, &claims);
        assert_eq!(inspected.report_data, fields.user_data.unwrap_or_default());
    }
    // The committed vector too.
    let committed = support::read("nitro/test_document.cose");
    assert_eq!(
        inspect(EvidenceKind::Nitro, &committed)
            .unwrap()
            .report_data,
        [0x5a; 32]
    );
}

/// Every real vector, by kind.
fn vectors() -> Vec<(EvidenceKind, Vec<u8>)> {
    vec![
        (EvidenceKind::SgxDcap, dcap::vector("sgx_quote").quote),
        (EvidenceKind::Tdx, dcap::vector("tdx_quote").quote),
        (EvidenceKind::Tdx, dcap::vector("tdx_quote_outdated").quote),
        (EvidenceKind::SevSnp, sev::milan_report()),
        (
            EvidenceKind::Nitro,
            support::read("nitro/test_document.cose"),
        ),
    ]
}

#[test]
fn truncated_reports_are_refused() {
    for (kind, report) in vectors() {
        for length in [0, 1, 47, 48, 100, report.len() / 2, report.len() - 200] {
            let result = inspect(kind, &report[..length]);
            assert!(
                matches!(
                    result,
                    Err(AttestError::Truncated { .. }
                        | AttestError::Malformed(_)
                        | AttestError::Unparsable { .. })
                ),
                "{kind:?} cut to {length}: {result:?}"
            );
        }
    }
}

#[test]
fn garbage_and_trailing_bytes_are_refused() {
    for (kind, report) in vectors() {
        assert!(
            inspect(kind, &vec![0xA5; report.len()]).is_err(),
            "{kind:?}"
        );
        let mut longer = report.clone();
        longer.push(1);
        assert!(
            matches!(
                inspect(kind, &longer),
                Err(AttestError::TrailingBytes { extra, .. }) if extra >= 1
            ),
            "{kind:?}: {:?}",
            inspect(kind, &longer)
        );
    }
    let oversized = vec![0; EVIDENCE_BYTES_MAX + 1];
    assert_eq!(
        inspect(EvidenceKind::SevSnp, &oversized),
        Err(AttestError::EvidenceTooLarge(EVIDENCE_BYTES_MAX + 1))
    );
}

#[test]
fn a_quote_of_the_other_intel_kind_is_refused() {
    let sgx = dcap::vector("sgx_quote").quote;
    assert_eq!(
        inspect(EvidenceKind::Tdx, &sgx),
        Err(AttestError::KindMismatch {
            claimed: "tdx",
            found: "sgx-dcap"
        })
    );
}
