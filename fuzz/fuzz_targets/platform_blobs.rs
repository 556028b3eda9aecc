//! What a TEE's kernel interface hands `cloister-platform`: the SEV-SNP certificate table
//! (configfs-tsm `auxblob`) and the Nitro NSM's CBOR response. A host controls neither in a
//! confidential VM's threat model (the table comes from the hypervisor). The first byte
//! picks the parser: 0 the certificate table, 1 the NSM response, anything else both.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((selector, blob)) = input.split_first() else {
        return;
    };
    if *selector != 1 {
        let _ = cloister_platform::sev_snp_endorsements_from_cert_table(blob);
    }
    if *selector != 0 {
        let _ = cloister_platform::nitro::attestation_document(blob);
    }
});
