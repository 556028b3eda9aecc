//! `cloister_attest::endorsements`, which turns the files vendors hand out (certificates as
//! DER or PEM, AMD's PEM chain) into endorsements. The input is split at its first NUL
//! byte: before it a VCEK, after it an ASK-then-ARK chain; the whole input is also read as
//! one certificate.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let _ = cloister_attest::endorsements::certificate_der(input);
    let split = input
        .iter()
        .position(|byte| *byte == 0)
        .unwrap_or(input.len());
    let (vcek, chain) = input.split_at(split);
    let _ = cloister_attest::endorsements::sev_snp(vcek, chain.get(1..).unwrap_or_default());
});
