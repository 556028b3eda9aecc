//! The attestation seeds verify, unmutated, under the targets' policy at the targets'
//! times: otherwise every mutation would be refused early and the fuzzers would stay in
//! the parsers' first checks without anyone noticing.

use cloister_attest::{verify, verify_evidence};
use cloister_fuzz::{
    NITRO_DOCUMENT, NITRO_NOW, SEV_NOW, SGX_COLLATERAL, SGX_NOW, SGX_QUOTE, TDX_COLLATERAL,
    TDX_NOW, TDX_QUOTE, permissive_policy, sev_endorsements, sev_report, split_messages,
};
use cloister_proto::attest::EvidenceKind;

fn seed(target: &str, name: &str) -> Vec<u8> {
    let path = format!("{}/seeds/{target}/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

#[test]
fn every_attestation_vector_verifies_under_the_targets_policy() {
    let policy = permissive_policy();
    let cases = [
        (EvidenceKind::SgxDcap, SGX_QUOTE, SGX_COLLATERAL, SGX_NOW),
        (EvidenceKind::Tdx, TDX_QUOTE, TDX_COLLATERAL, TDX_NOW),
        (EvidenceKind::Nitro, NITRO_DOCUMENT, &[][..], NITRO_NOW),
    ];
    for (kind, report, endorsements, now) in cases {
        let claims = verify_evidence(kind, report, endorsements, &policy, now)
            .unwrap_or_else(|error| panic!("{kind:?}: {error}"));
        assert_eq!(claims.kind(), kind);
    }
    let claims = verify_evidence(
        EvidenceKind::SevSnp,
        &sev_report(),
        &sev_endorsements(),
        &policy,
        SEV_NOW,
    )
    .unwrap();
    assert_eq!(claims.kind(), EvidenceKind::SevSnp);
}

#[test]
fn the_committed_seeds_are_the_vectors() {
    assert_eq!(seed("dcap_quote", "sgx"), [&[0][..], SGX_QUOTE].concat());
    assert_eq!(seed("dcap_quote", "tdx"), [&[1][..], TDX_QUOTE].concat());
    assert_eq!(seed("dcap_collateral", "sgx"), SGX_COLLATERAL);
    assert_eq!(seed("sev_snp_report", "milan"), sev_report());
    assert_eq!(seed("sev_snp_endorsements", "milan"), sev_endorsements());
    assert_eq!(seed("nitro_document", "test"), NITRO_DOCUMENT);
}

#[test]
fn the_simulated_evidence_seed_verifies_with_its_statement() {
    let verified = verify(
        &seed("evidence", "sim"),
        &[],
        &permissive_policy(),
        NITRO_NOW,
    )
    .unwrap();
    assert!(verified.simulated());
    assert_eq!(verified.public_key(), &[7; 32]);
}

#[test]
fn the_enclave_door_seed_splits_into_its_three_messages() {
    let input = seed("enclave_door", "calls");
    let messages = split_messages(&input);
    assert_eq!(messages.len(), 3);
    // A short last message takes what is left; a lone byte is no message.
    assert_eq!(split_messages(&[0, 9, 1, 2]), [&[1, 2][..]]);
    assert!(split_messages(&[5]).is_empty());
}

#[test]
fn the_platform_blob_seeds_parse() {
    // The certificate table seed yields the VCEK, ASK and ARK; the NSM seeds a document and
    // a refusal: mutations start from inputs that reach the parsers' ends.
    let table = seed("platform_blobs", "cert_table");
    assert_eq!(table[0], 0);
    let endorsements =
        cloister_platform::sev_snp_endorsements_from_cert_table(&table[1..]).unwrap();
    assert_eq!(endorsements, sev_endorsements());
    let document = seed("platform_blobs", "nsm_document");
    assert_eq!(document[0], 1);
    assert_eq!(
        cloister_platform::nitro::attestation_document(&document[1..]).unwrap(),
        NITRO_DOCUMENT
    );
    let error = seed("platform_blobs", "nsm_error");
    let refused = cloister_platform::nitro::attestation_document(&error[1..]).unwrap_err();
    assert!(refused.to_string().contains("InvalidArgument"), "{refused}");
}
