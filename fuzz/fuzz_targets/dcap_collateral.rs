//! DCAP collateral (`QuoteCollateralV3` JSON, the endorsements a host hands over) for
//! Intel's genuine SGX sample quote: the JSON, the PEM chains and CRLs inside it, and the
//! signed TCB info and QE identity.

#![no_main]

use cloister_fuzz::{SGX_NOW, SGX_QUOTE, permissive_policy};
use cloister_proto::attest::EvidenceKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|collateral: &[u8]| {
    let _ = cloister_attest::verify_evidence(
        EvidenceKind::SgxDcap,
        SGX_QUOTE,
        collateral,
        &permissive_policy(),
        SGX_NOW,
    );
});
