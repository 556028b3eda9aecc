//! `cloister_attest::verify` on arbitrary serialized `Evidence` with no endorsements: the
//! envelope, the kind dispatch, the sim and Nitro backends (which take none), the binding
//! and the statement. Seeds: simulated evidence, the test Nitro document in an envelope.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|evidence: &[u8]| {
    let policy = cloister_fuzz::permissive_policy();
    // Simulated seeds are stamped at NITRO_NOW as well.
    let _ = cloister_attest::verify(evidence, &[], &policy, cloister_fuzz::NITRO_NOW);
});
