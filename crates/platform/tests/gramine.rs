//! SGX under Gramine, against a fake `/dev/attestation` answering with Intel's SGX sample
//! quote (its REPORTDATA replaced by what was written).

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use cloister_attest::unverified::inspect;
use cloister_attest::{AttestError, Policy, TcbStatus, report_data_for, verify};
use cloister_platform::gramine::Gramine;
use cloister_platform::{Env, HardwareEnv, PlatformError};
use cloister_proto::attest::EvidenceKind;
use prost::Message;
use support::TempDir;
use support::kernels::{Answer, FakeGramine, SGX_REPORT_DATA, binding};

/// Inside the sample collateral's window (crates/attest/tests/data/README.md).
const SGX_VALID_FROM: u64 = 1_750_330_571;

fn sample_quote() -> Vec<u8> {
    support::data("sgx-dcap/sgx_quote")
}

fn collateral() -> Vec<u8> {
    support::data("sgx-dcap/sgx_quote_collateral.json")
}

fn open(
    dir: &TempDir,
    attestation_type: &str,
    answer: Answer,
    endorsements: Option<&Path>,
) -> Result<HardwareEnv, PlatformError> {
    let root = dir.join("attestation");
    let fs = FakeGramine::new(&root, attestation_type, answer);
    HardwareEnv::open(Box::new(Gramine::new(
        Box::new(fs),
        root,
        endorsements.map(Path::to_owned),
    )))
}

#[test]
fn sgx_evidence_binds_the_statement_and_carries_the_collateral() {
    let dir = TempDir::new("gramine");
    let collateral_file = dir.file("collateral.json", &collateral());
    let mut env = open(
        &dir,
        "dcap",
        binding(sample_quote(), SGX_REPORT_DATA),
        Some(&collateral_file),
    )
    .unwrap();
    assert!(!env.simulated());
    // MRENCLAVE of the sample (offset 64 of the report body).
    assert_eq!(env.measurement(), sample_quote()[48 + 64..48 + 96]);

    let data = support::statement(5);
    let attestation = env.attest(&data, SGX_VALID_FROM).unwrap();
    let evidence = &attestation.evidence;
    assert_eq!(evidence.kind, EvidenceKind::SgxDcap as i32);
    assert_eq!(evidence.attestation_data, data.encode_to_vec());
    let inspected = inspect(EvidenceKind::SgxDcap, &evidence.report).unwrap();
    assert_eq!(
        inspected.report_data,
        report_data_for(EvidenceKind::SgxDcap, &data.encode_to_vec())
    );
    assert_eq!(inspected.measurement, env.measurement());
    assert_eq!(attestation.endorsements, collateral());

    // The fake cannot sign as Intel: verification parses everything and fails exactly at
    // the quote's signature over the replaced REPORTDATA.
    let policy = Policy::strict(vec![env.measurement()])
        .allow_tcb_status(TcbStatus::ConfigurationAndSwHardeningNeeded)
        .allow_advisory("INTEL-SA-00289")
        .allow_advisory("INTEL-SA-00615");
    let result = verify(
        &evidence.encode_to_vec(),
        &attestation.endorsements,
        &policy,
        SGX_VALID_FROM,
    );
    assert!(
        matches!(result, Err(AttestError::BadSignature(_))),
        "{result:?}"
    );
}

#[test]
fn the_collateral_file_is_read_again_on_every_attestation() {
    let dir = TempDir::new("gramine");
    let collateral_file = dir.file("collateral.json", &collateral());
    let mut env = open(
        &dir,
        "dcap",
        binding(sample_quote(), SGX_REPORT_DATA),
        Some(&collateral_file),
    )
    .unwrap();
    let refreshed = b"{\"refreshed\": true}".to_vec();
    std::fs::write(&collateral_file, &refreshed).unwrap();
    let attestation = env.attest(&support::statement(1), 0).unwrap();
    assert_eq!(attestation.endorsements, refreshed);
    // A refresh that went wrong fails this attestation, clearly, and the next one recovers.
    std::fs::write(&collateral_file, b"").unwrap();
    let error = env.attest(&support::statement(1), 0).unwrap_err();
    assert!(error.0.contains("is empty"), "{error}");
    std::fs::write(&collateral_file, b"<html>not json</html>").unwrap();
    let error = env.attest(&support::statement(1), 0).unwrap_err();
    assert!(error.0.contains("not DCAP collateral JSON"), "{error}");
    std::fs::write(&collateral_file, &refreshed).unwrap();
    assert!(env.attest(&support::statement(1), 0).is_ok());
}

#[test]
fn a_machine_without_gramine_refuses_to_start() {
    let dir = TempDir::new("gramine");
    let collateral_file = dir.file("collateral.json", &collateral());
    let root = dir.join("no-such-attestation");
    let error = HardwareEnv::open(Box::new(Gramine::new(
        Box::new(cloister_platform::OsFs),
        root.clone(),
        Some(collateral_file),
    )))
    .unwrap_err();
    assert!(
        error.0.starts_with(&format!(
            "Gramine attestation ({}) not found (not running under Gramine?)",
            root.display()
        )),
        "{error}"
    );
}

#[test]
fn an_attestation_type_other_than_dcap_is_refused() {
    for attestation_type in ["none", "epid\n"] {
        let dir = TempDir::new("gramine");
        let collateral_file = dir.file("collateral.json", &collateral());
        let error = open(
            &dir,
            attestation_type,
            binding(sample_quote(), SGX_REPORT_DATA),
            Some(&collateral_file),
        )
        .unwrap_err();
        assert!(error.0.contains("is not DCAP"), "{error}");
        assert!(
            error.0.contains(&format!("{:?}", attestation_type.trim())),
            "{error}"
        );
    }
}

#[test]
fn missing_collateral_refuses_to_start() {
    let dir = TempDir::new("gramine");
    let error = open(&dir, "dcap", binding(sample_quote(), SGX_REPORT_DATA), None).unwrap_err();
    assert!(
        error.0.contains("no endorsements file is configured"),
        "{error}"
    );
    let missing = dir.join("absent.json");
    let error = open(
        &dir,
        "dcap",
        binding(sample_quote(), SGX_REPORT_DATA),
        Some(&missing),
    )
    .unwrap_err();
    assert!(error.0.contains(&missing.display().to_string()), "{error}");
}

#[test]
fn a_quote_that_does_not_bind_the_report_data_is_refused() {
    let dir = TempDir::new("gramine");
    let collateral_file = dir.file("collateral.json", &collateral());
    // The sample as it is: its REPORTDATA is someone else's.
    let error = open(
        &dir,
        "dcap",
        Box::new(|_| sample_quote()),
        Some(&collateral_file),
    )
    .unwrap_err();
    assert!(
        error
            .0
            .contains("does not bind the report data it was given"),
        "{error}"
    );
}

#[test]
fn short_garbage_or_oversized_quotes_are_refused() {
    let dir = TempDir::new("gramine");
    let collateral_file = dir.file("collateral.json", &collateral());
    let answers: [(Answer, &str); 3] = [
        (
            Box::new(|report_data| {
                let quote = support::kernels::with_report_data(
                    &sample_quote(),
                    SGX_REPORT_DATA,
                    report_data,
                );
                quote[..quote.len() - 100].to_vec()
            }),
            "unusable: truncated DCAP quote",
        ),
        (Box::new(|_| vec![0xA5; 4600]), "unusable"),
        (
            Box::new(|_| vec![0; cloister_attest::EVIDENCE_BYTES_MAX + 1]),
            "gave no quote: more than the 65536 bytes allowed",
        ),
    ];
    for (answer, reason) in answers {
        let error = open(&dir, "dcap", answer, Some(&collateral_file)).unwrap_err();
        assert!(error.0.contains(reason), "{error}");
    }
}
