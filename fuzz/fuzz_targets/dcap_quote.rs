//! SGX and TDX quotes (the first byte picks: even SGX, odd TDX) verified against Intel's
//! genuine sample collateral inside its window: the framing checks, dcap-qvl's parser, the
//! quote's PCK chain, and the claims read from the report body.

#![no_main]

use cloister_fuzz::{SGX_COLLATERAL, SGX_NOW, TDX_COLLATERAL, TDX_NOW, permissive_policy};
use cloister_proto::attest::EvidenceKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((selector, quote)) = input.split_first() else {
        return;
    };
    let (kind, collateral, now) = if selector % 2 == 0 {
        (EvidenceKind::SgxDcap, SGX_COLLATERAL, SGX_NOW)
    } else {
        (EvidenceKind::Tdx, TDX_COLLATERAL, TDX_NOW)
    };
    let _ = cloister_attest::verify_evidence(kind, quote, collateral, &permissive_policy(), now);
});
