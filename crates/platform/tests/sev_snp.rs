//! SEV-SNP through configfs-tsm, against a fake report directory answering with the real
//! Milan report (report data replaced by the inblob) and a certificate table built from AMD's
//! real Milan VCEK, ASK and ARK.

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cloister_attest::unverified::inspect;
use cloister_attest::{AttestError, Policy, derived_measurement, report_data_for, verify};
use cloister_platform::Env;
use cloister_platform::tsm::TsmProvider;
use cloister_proto::attest::{EvidenceKind, SevSnpEndorsements};
use prost::Message;
use support::guest::{
    ARK, ASK, Guest, SNP_NOW, VCEK, VLEK, cert_table, guid, milan_certificates, milan_endorsements,
    milan_table, snp_answer,
};
use x509_cert::Certificate;
use x509_cert::der::{Decode, EncodePem};

#[test]
fn snp_evidence_carries_the_hosts_certificates() {
    let guest = Guest::new();
    let mut env = guest
        .open(
            guest.snp(snp_answer(), milan_table()),
            TsmProvider::SevSnp,
            None,
        )
        .unwrap();
    let report = support::milan_report();
    assert_eq!(
        env.measurement(),
        derived_measurement("sev-snp", &[&report[0x90..0xC0]])
    );
    let data = support::statement(8);
    let attestation = env.attest(&data, SNP_NOW).unwrap();
    let evidence = &attestation.evidence;
    assert_eq!(evidence.kind, EvidenceKind::SevSnp as i32);
    assert_eq!(
        inspect(EvidenceKind::SevSnp, &evidence.report)
            .unwrap()
            .report_data,
        report_data_for(EvidenceKind::SevSnp, &data.encode_to_vec())
    );
    assert_eq!(
        SevSnpEndorsements::decode(attestation.endorsements.as_slice()).unwrap(),
        SevSnpEndorsements::decode(milan_endorsements().as_slice()).unwrap()
    );
    guest.assert_clean();
    // AMD's chain checks out; only the VCEK's signature over the edited report fails.
    let result = verify(
        &evidence.encode_to_vec(),
        &attestation.endorsements,
        &Policy::strict(vec![env.measurement()]),
        SNP_NOW,
    );
    assert_eq!(
        result.unwrap_err(),
        AttestError::BadSignature("the VCEK's signature over the SEV-SNP report".into())
    );
}

#[test]
fn snp_without_a_certificate_table_uses_the_pem_file_or_refuses() {
    let guest = Guest::new();
    let error = guest
        .open(
            guest.snp(snp_answer(), Vec::new()),
            TsmProvider::SevSnp,
            None,
        )
        .unwrap_err();
    assert!(
        error
            .0
            .contains("no certificate table (auxblob) and no endorsements file"),
        "{error}"
    );
    guest.assert_clean();

    let vcek = Certificate::from_der(&support::data("sev-snp/vcek_milan.der"))
        .unwrap()
        .to_pem(x509_cert::der::pem::LineEnding::LF)
        .unwrap();
    let mut pem = vcek.into_bytes();
    pem.extend(support::data("sev-snp/cert_chain_milan"));
    let file = guest.dir.file("amd.pem", &pem);
    let mut env = guest
        .open(
            guest.snp(snp_answer(), Vec::new()),
            TsmProvider::SevSnp,
            Some(&file),
        )
        .unwrap();
    let attestation = env.attest(&support::statement(1), SNP_NOW).unwrap();
    assert_eq!(attestation.endorsements, milan_endorsements());

    // A file with the chain alone (no VCEK first) is refused, saying what it should hold.
    std::fs::write(&file, support::data("sev-snp/cert_chain_milan")).unwrap();
    let error = env.attest(&support::statement(1), SNP_NOW).unwrap_err();
    assert!(
        error.0.contains("the VCEK, then the ASK, then the ARK"),
        "{error}"
    );
}

#[test]
fn malformed_certificate_tables_are_refused() {
    let (vcek, ask, ark) = milan_certificates();
    let whole = milan_table();
    let mut past_the_end = whole.clone();
    past_the_end[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut overlapping = whole.clone();
    // The second entry's offset moved onto the first's certificate.
    let first_offset = overlapping[16..20].to_vec();
    overlapping[40..44].copy_from_slice(&first_offset);
    let mut into_the_list = whole.clone();
    into_the_list[16..20].copy_from_slice(&8u32.to_le_bytes());
    let mut bad_terminator = whole.clone();
    bad_terminator[3 * 24 + 16] = 1;
    // One entry (covering itself) and nothing after it.
    let mut unterminated = guid(VCEK).to_vec();
    unterminated.extend_from_slice(&0u32.to_le_bytes());
    unterminated.extend_from_slice(&24u32.to_le_bytes());
    // Seventeen well-formed entries (of GUIDs no one defined).
    let names: Vec<String> = (1..=17).map(|index| format!("{index:032x}")).collect();
    let entries: Vec<(&str, &[u8])> = names
        .iter()
        .map(|name| (name.as_str(), &b"0"[..]))
        .collect();
    let too_many = cert_table(&entries);
    let tables: Vec<(Vec<u8>, &str)> = vec![
        (unterminated, "ends before its all-zero terminating entry"),
        (past_the_end, "runs past the table's"),
        (overlapping, "overlaps another"),
        (into_the_list, "overlaps the entry list"),
        (bad_terminator, "the terminating entry is not all zero"),
        (
            cert_table(&[(VCEK, &vcek), (ASK, &ask), (VCEK, &vcek)]),
            "repeats a GUID",
        ),
        (cert_table(&[(VCEK, &vcek), (ASK, &ask)]), "no ARK entry"),
        (
            cert_table(&[(VLEK, &vcek), (ASK, &ask), (ARK, &ark)]),
            "holds a VLEK, not a VCEK",
        ),
        (
            cert_table(&[(VCEK, &vcek[..vcek.len() - 1]), (ASK, &ask), (ARK, &ark)]),
            "the VCEK: malformed certificate",
        ),
        (
            cert_table(&[
                (VCEK, b"-----BEGIN CERTIFICATE-----"),
                (ASK, &ask),
                (ARK, &ark),
            ]),
            "the VCEK is not a DER certificate",
        ),
        (too_many, "more than 16 entries"),
    ];
    let guest = Guest::new();
    for (table, reason) in tables {
        let error = guest
            .open(guest.snp(snp_answer(), table), TsmProvider::SevSnp, None)
            .unwrap_err();
        assert!(
            error.0.starts_with("sev-snp certificate table (auxblob): ")
                && error.0.contains(reason),
            "{reason}: {error}"
        );
        guest.assert_clean();
    }
}
