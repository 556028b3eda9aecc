//! SEV-SNP endorsements (the `SevSnpEndorsements` protobuf a host hands over) for the
//! genuine Milan report: the protobuf, three X.509 parsers (`x509-cert` and `sev`'s), the
//! chain and validity checks, and the VCEK's TCB and hwID extensions.

#![no_main]

use std::sync::OnceLock;

use cloister_fuzz::{SEV_NOW, permissive_policy, sev_report};
use cloister_proto::attest::EvidenceKind;
use libfuzzer_sys::fuzz_target;

static REPORT: OnceLock<Vec<u8>> = OnceLock::new();

fuzz_target!(|endorsements: &[u8]| {
    let report = REPORT.get_or_init(sev_report);
    let _ = cloister_attest::verify_evidence(
        EvidenceKind::SevSnp,
        report,
        endorsements,
        &permissive_policy(),
        SEV_NOW,
    );
});
