//! SEV-SNP reports verified with the genuine Milan endorsements (VCEK, ASK, ARK) inside the
//! VCEK's window: length, signature algorithm and padding, then `sev`'s report parser.

#![no_main]

use std::sync::OnceLock;

use cloister_fuzz::{SEV_NOW, permissive_policy, sev_endorsements};
use cloister_proto::attest::EvidenceKind;
use libfuzzer_sys::fuzz_target;

static ENDORSEMENTS: OnceLock<Vec<u8>> = OnceLock::new();

fuzz_target!(|report: &[u8]| {
    let endorsements = ENDORSEMENTS.get_or_init(sev_endorsements);
    let _ = cloister_attest::verify_evidence(
        EvidenceKind::SevSnp,
        report,
        endorsements,
        &permissive_policy(),
        SEV_NOW,
    );
});
