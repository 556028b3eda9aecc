//! TDX through configfs-tsm, against a fake report directory answering with the real TDX
//! sample quote (report data replaced by the inblob); and what any configfs-tsm guest must
//! refuse: a missing interface, another provider, bad outblobs, concurrent writers.

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cloister_attest::unverified::inspect;
use cloister_attest::{AttestError, Policy, derived_measurement, report_data_for, verify};
use cloister_platform::tsm::{Tsm, TsmProvider};
use cloister_platform::{Env, HardwareEnv};
use cloister_proto::attest::EvidenceKind;
use prost::Message;
use support::TempDir;
use support::guest::{Guest, TDX_NOW, milan_table, snp_answer, tdx_quote};
use support::kernels::{Answer, FakeTsm, TDX_REPORT_DATA, TsmQuirks, binding, with_report_data};

#[test]
fn tdx_evidence_binds_the_statement_and_carries_the_collateral() {
    let guest = Guest::new();
    let collateral = guest.collateral();
    let fake = guest.tdx(binding(tdx_quote(), TDX_REPORT_DATA));
    let entries = fake.entries.clone();
    let mut env = guest
        .open(fake, TsmProvider::Tdx, Some(&collateral))
        .unwrap();
    let body = &tdx_quote()[48..];
    let expected = derived_measurement(
        "tdx",
        &[
            &body[136..184],
            &body[328..376],
            &body[376..424],
            &body[424..472],
        ],
    );
    assert_eq!(env.measurement(), expected);

    let data = support::statement(7);
    let attestation = env.attest(&data, TDX_NOW).unwrap();
    let evidence = &attestation.evidence;
    assert_eq!(evidence.kind, EvidenceKind::Tdx as i32);
    let inspected = inspect(EvidenceKind::Tdx, &evidence.report).unwrap();
    assert_eq!(
        inspected.report_data,
        report_data_for(EvidenceKind::Tdx, &data.encode_to_vec())
    );
    assert_eq!(
        attestation.endorsements,
        support::data("sgx-dcap/tdx_quote_collateral.json")
    );
    // Two requests (the probe, then ours), each in an entry of its own, both removed.
    let entries = entries.lock().unwrap().clone();
    assert_eq!(entries.len(), 2);
    assert_ne!(entries[0], entries[1]);
    guest.assert_clean();

    let result = verify(
        &evidence.encode_to_vec(),
        &attestation.endorsements,
        &Policy::strict(vec![expected]),
        TDX_NOW,
    );
    assert!(
        matches!(result, Err(AttestError::BadSignature(_))),
        "{result:?}"
    );
}

#[test]
fn a_machine_without_configfs_tsm_refuses_to_start() {
    let dir = TempDir::new("tsm");
    let root = dir.join("no-tsm");
    let fake = FakeTsm::new(
        &root,
        "tdx_guest",
        binding(tdx_quote(), TDX_REPORT_DATA),
        vec![],
    );
    let error = HardwareEnv::open(Box::new(Tsm::new(
        Box::new(fake),
        root.clone(),
        TsmProvider::Tdx,
        None,
    )))
    .unwrap_err();
    assert!(
        error
            .0
            .starts_with(&format!("configfs-tsm not found at {}: ", root.display())),
        "{error}"
    );
}

#[test]
fn a_provider_other_than_the_configured_backend_is_refused() {
    let guest = Guest::new();
    let collateral = guest.collateral();
    // A TDX node on an SEV-SNP guest, and the other way round.
    let error = guest
        .open(
            guest.snp(snp_answer(), milan_table()),
            TsmProvider::Tdx,
            Some(&collateral),
        )
        .unwrap_err();
    assert!(
        error.0.contains(
            "the provider is \"sev_guest\", not \"tdx_guest\": this machine is not the \
             configured tdx guest"
        ),
        "{error}"
    );
    let error = guest
        .open(
            guest.tdx(binding(tdx_quote(), TDX_REPORT_DATA)),
            TsmProvider::SevSnp,
            None,
        )
        .unwrap_err();
    assert!(error.0.contains("not \"sev_guest\""), "{error}");
    guest.assert_clean();
}

#[test]
fn short_oversized_and_unbound_outblobs_are_refused_and_leave_no_entry() {
    let guest = Guest::new();
    let collateral = guest.collateral();
    let answers: [(Answer, &str); 4] = [
        (
            Box::new(|inblob| {
                with_report_data(&tdx_quote(), TDX_REPORT_DATA, inblob)[..600].to_vec()
            }),
            "unusable: truncated DCAP quote",
        ),
        (Box::new(|_| Vec::new()), "outblob: missing"),
        (
            Box::new(|_| vec![0; cloister_platform::tsm::BLOB_BYTES_MAX + 1]),
            "outblob: more than the 32768 bytes allowed",
        ),
        (
            Box::new(|_| tdx_quote()),
            "does not bind the report data it was given",
        ),
    ];
    for (answer, reason) in answers {
        let error = guest
            .open(guest.tdx(answer), TsmProvider::Tdx, Some(&collateral))
            .unwrap_err();
        assert!(error.0.contains(reason), "{reason}: {error}");
        guest.assert_clean();
    }
}

#[test]
fn a_concurrent_writer_is_detected_by_generation_and_retried() {
    let guest = Guest::new();
    let collateral = guest.collateral();
    // One conflict: the retry in the same entry succeeds.
    let fake = guest
        .tdx(binding(tdx_quote(), TDX_REPORT_DATA))
        .with_quirks(TsmQuirks {
            concurrent_writes: 1,
        });
    let mut env = guest
        .open(fake, TsmProvider::Tdx, Some(&collateral))
        .unwrap();
    assert!(env.attest(&support::statement(1), TDX_NOW).is_ok());
    // A writer that never stops: refused after the bounded retries.
    let fake = guest
        .tdx(binding(tdx_quote(), TDX_REPORT_DATA))
        .with_quirks(TsmQuirks {
            concurrent_writes: u32::MAX,
        });
    let error = guest
        .open(fake, TsmProvider::Tdx, Some(&collateral))
        .unwrap_err();
    assert!(
        error.0.contains(
            "another writer changed the report entry during each of 3 requests \
             (generation went 0 to 2, 2 to 4, 4 to 6)"
        ),
        "{error}"
    );
    guest.assert_clean();
}

#[test]
fn a_measurement_that_changes_after_start_is_refused() {
    let guest = Guest::new();
    let collateral = guest.collateral();
    let mut requests = 0;
    let answer: Answer = Box::new(move |inblob| {
        requests += 1;
        let mut quote = with_report_data(&tdx_quote(), TDX_REPORT_DATA, inblob);
        if requests > 1 {
            // MRTD of another TD.
            quote[48 + 136] ^= 1;
        }
        quote
    });
    let mut env = guest
        .open(guest.tdx(answer), TsmProvider::Tdx, Some(&collateral))
        .unwrap();
    let error = env.attest(&support::statement(1), TDX_NOW).unwrap_err();
    assert!(error.0.contains("not this enclave's"), "{error}");
}
