//! Nitro attestation documents (COSE_Sign1 over CBOR, carrying their own certificate
//! bundle) against the test root inside the test leaf's window: the CBOR and COSE parsers,
//! the payload's fields and bounds, the bundle's chain, and the leaf's signature.

#![no_main]

use cloister_fuzz::{NITRO_NOW, permissive_policy};
use cloister_proto::attest::EvidenceKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|document: &[u8]| {
    let _ = cloister_attest::verify_evidence(
        EvidenceKind::Nitro,
        document,
        &[],
        &permissive_policy(),
        NITRO_NOW,
    );
});
