//! Shared pieces of Cloister's fuzz targets (`fuzz/fuzz_targets/*.rs`): the fixed test
//! vectors a target holds still while it mutates one input, the times they verify at, and
//! the framing that turns one fuzz input into several door messages.
//!
//! The vectors are the attestation crate's (`crates/attest/tests/data`), compiled in, so a
//! target verifies a mutated quote against genuine collateral (and the reverse) and reaches
//! the checks past parsing. `docs/attestation.md` ("Fuzzing") says how to run the targets.

use cloister_attest::{Policy, endorsements};

/// Intel's SGX sample quote (DCAP v3).
pub const SGX_QUOTE: &[u8] = include_bytes!("../../crates/attest/tests/data/sgx-dcap/sgx_quote");
/// Its collateral, as `QuoteCollateralV3` JSON.
pub const SGX_COLLATERAL: &[u8] =
    include_bytes!("../../crates/attest/tests/data/sgx-dcap/sgx_quote_collateral.json");
/// Intel's TDX sample quote (v4, zero-padded).
pub const TDX_QUOTE: &[u8] = include_bytes!("../../crates/attest/tests/data/sgx-dcap/tdx_quote");
/// Its collateral.
pub const TDX_COLLATERAL: &[u8] =
    include_bytes!("../../crates/attest/tests/data/sgx-dcap/tdx_quote_collateral.json");
/// Inside the SGX sample's collateral window.
pub const SGX_NOW: u64 = 1_750_330_571;
/// Inside the TDX sample's collateral window.
pub const TDX_NOW: u64 = 1_750_500_000;

/// The Milan SEV-SNP report, hex.
const SEV_REPORT_HEX: &[u8] =
    include_bytes!("../../crates/attest/tests/data/sev-snp/report_milan.hex");
/// The Milan chip's VCEK (DER).
const SEV_VCEK: &[u8] = include_bytes!("../../crates/attest/tests/data/sev-snp/vcek_milan.der");
/// AMD's Milan ASK then ARK (PEM).
const SEV_CHAIN: &[u8] = include_bytes!("../../crates/attest/tests/data/sev-snp/cert_chain_milan");
/// Inside the Milan VCEK's window.
pub const SEV_NOW: u64 = 1_750_000_000;

/// The test Nitro document and the test root it chains to.
pub const NITRO_DOCUMENT: &[u8] =
    include_bytes!("../../crates/attest/tests/data/nitro/test_document.cose");
/// The test root (DER) the Nitro document chains to.
pub const NITRO_ROOT: &[u8] = include_bytes!("../../crates/attest/tests/data/nitro/test_root.der");
/// Inside the Nitro document's leaf window (its timestamp).
pub const NITRO_NOW: u64 = 1_750_000_000;

/// The Milan report's 1184 bytes. Panics only if the committed vector is damaged.
pub fn sev_report() -> Vec<u8> {
    let text: Vec<u8> = SEV_REPORT_HEX
        .iter()
        .copied()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    let nibble = |byte: u8| match byte {
        b'0'..=b'9' => byte - b'0',
        b'a'..=b'f' => byte - b'a' + 10,
        b'A'..=b'F' => byte - b'A' + 10,
        _ => panic!("report_milan.hex holds a non-hex byte"),
    };
    text.chunks(2)
        .map(|pair| nibble(pair[0]) << 4 | nibble(pair[1]))
        .collect()
}

/// The Milan report's endorsements (`SevSnpEndorsements`: VCEK, ASK, ARK).
pub fn sev_endorsements() -> Vec<u8> {
    match endorsements::sev_snp(SEV_VCEK, SEV_CHAIN) {
        Ok(bytes) => bytes,
        Err(error) => panic!("the committed Milan vector: {error}"),
    }
}

/// A policy that lets every vector through when unmutated: any measurement, any Intel TCB
/// status but `Revoked` (which no policy accepts) and the samples' advisories, the test Nitro root, simulated evidence allowed. The
/// targets look for panics, hangs and blow-ups, not for refusals.
pub fn permissive_policy() -> Policy {
    cloister_attest::TcbStatus::ALL
        .into_iter()
        .fold(
            Policy::insecure_allow_simulated(Vec::new()).insecure_any_measurement(),
            Policy::allow_tcb_status,
        )
        .allow_advisory("INTEL-SA-00289")
        .allow_advisory("INTEL-SA-00615")
        .with_nitro_root(NITRO_ROOT.to_vec())
}

/// Splits a fuzz input into messages, each a 2-byte big-endian length then that many bytes
/// (the last one takes what is left if it is short).
pub fn split_messages(mut input: &[u8]) -> Vec<&[u8]> {
    let mut messages = Vec::new();
    while let [high, low, rest @ ..] = input {
        let length = usize::from(u16::from_be_bytes([*high, *low])).min(rest.len());
        let (message, after) = rest.split_at(length);
        messages.push(message);
        input = after;
    }
    messages
}

/// The inverse of [`split_messages`], for writing seeds.
pub fn join_messages(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for message in messages {
        let length = u16::try_from(message.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&message[..usize::from(length)]);
    }
    out
}
