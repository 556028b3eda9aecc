//! SEV-SNP: the real Milan vector's endorsements, and a test AMD chain (RSA-PSS ARK and
//! ASK, a P-384 VCEK with AMD's TCB and hwID extensions) that signs edited reports.

use std::sync::OnceLock;

use cloister_proto::attest::SevSnpEndorsements;
use p384::ecdsa::SigningKey;
use p384::ecdsa::signature::Signer;
use prost::Message;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use rsa::RsaPrivateKey;
use rsa::pkcs8::EncodePublicKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use sha2::Sha384;
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use super::certs::{self, Template};
use super::read;

/// Report offsets (SEV-SNP firmware ABI, table "ATTESTATION_REPORT structure").
pub const POLICY: usize = 0x08;
pub const REPORT_DATA: usize = 0x50;
pub const MEASUREMENT: usize = 0x90;
pub const REPORTED_TCB: usize = 0x180;
pub const CHIP_ID: usize = 0x1A0;
pub const SIGNATURE: usize = 0x2A0;
/// GUEST_POLICY bit 19: DEBUG allowed.
pub const POLICY_DEBUG: u64 = 1 << 19;

/// The VCEK's validity window: the Milan vector verifies inside it only.
pub const MILAN_NOT_BEFORE: u64 = 1_680_549_823; // 2023-04-03T19:23:43Z
pub const MILAN_NOT_AFTER: u64 = 1_901_474_623; // 2030-04-03T19:23:43Z

pub fn milan_report() -> Vec<u8> {
    let text = String::from_utf8(read("sev-snp/report_milan.hex")).unwrap();
    hex::decode(text.trim()).unwrap()
}

/// (ASK, ARK) DER from a PEM chain file (AMD's KDS order: ASK first).
pub fn chain_from_pem(name: &str) -> (Vec<u8>, Vec<u8>) {
    let chain = Certificate::load_pem_chain(&read(name)).unwrap();
    assert_eq!(chain.len(), 2, "{name}: ASK then ARK");
    (chain[0].to_der().unwrap(), chain[1].to_der().unwrap())
}

pub fn endorsements(vcek: &[u8], ask: &[u8], ark: &[u8]) -> Vec<u8> {
    SevSnpEndorsements {
        vcek: vcek.to_vec(),
        ask: ask.to_vec(),
        ark: ark.to_vec(),
    }
    .encode_to_vec()
}

pub fn milan_endorsements() -> Vec<u8> {
    let (ask, ark) = chain_from_pem("sev-snp/cert_chain_milan");
    endorsements(&read("sev-snp/vcek_milan.der"), &ask, &ark)
}

/// A test AMD chain: ARK and ASK are RSA-PSS (SHA-384), the VCEK a P-384 key.
pub struct AmdChain {
    pub ark: Vec<u8>,
    pub ask: Vec<u8>,
    pub vcek: Vec<u8>,
    pub vcek_key: SigningKey,
}

impl AmdChain {
    pub fn endorsements(&self) -> Vec<u8> {
        endorsements(&self.vcek, &self.ask, &self.ark)
    }
}

fn rsa_keys() -> &'static (RsaPrivateKey, RsaPrivateKey) {
    static KEYS: OnceLock<(RsaPrivateKey, RsaPrivateKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        (
            RsaPrivateKey::new(&mut rng, 2048).unwrap(),
            RsaPrivateKey::new(&mut rng, 2048).unwrap(),
        )
    })
}

fn rsa_public_key_info(key: &RsaPrivateKey) -> SubjectPublicKeyInfoOwned {
    let der = key.to_public_key().to_public_key_der().unwrap();
    SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).unwrap()
}

fn rsa_pss_signed(tbs: x509_cert::TbsCertificate, issuer: &RsaPrivateKey) -> Vec<u8> {
    let signer = rsa::pss::BlindedSigningKey::<Sha384>::new(issuer.clone());
    certs::assemble(tbs, |bytes| {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        signer.sign_with_rng(&mut rng, bytes).to_vec()
    })
}

/// A chain whose VCEK was issued for `tcb` = (bootloader, tee, snp, microcode) and
/// `chip_id` (the VCEK's hwID).
pub fn amd_chain(tcb: [u8; 4], chip_id: &[u8]) -> AmdChain {
    let (ark_key, ask_key) = rsa_keys();
    let pss = rsa::pss::get_default_pss_signature_algo_id::<Sha384>().unwrap();
    let (ark_name, ask_name) = (
        "CN=ARK-Test,O=Cloister tests",
        "CN=SEV-Test,O=Cloister tests",
    );
    let ark = rsa_pss_signed(
        certs::tbs(
            &Template::new(ark_name, ark_name, true),
            rsa_public_key_info(ark_key),
            pss.clone(),
        ),
        ark_key,
    );
    let ask = rsa_pss_signed(
        certs::tbs(
            &Template::new(ask_name, ark_name, true),
            rsa_public_key_info(ask_key),
            pss.clone(),
        ),
        ark_key,
    );
    let vcek_key = certs::p384_key(4);
    let mut vcek_template = Template::new("CN=SEV-VCEK,O=Cloister tests", ask_name, false);
    let spl = |value: u8| value.to_der().unwrap();
    vcek_template.extensions = vec![
        certs::extension("1.3.6.1.4.1.3704.1.3.1", false, spl(tcb[0])),
        certs::extension("1.3.6.1.4.1.3704.1.3.2", false, spl(tcb[1])),
        certs::extension("1.3.6.1.4.1.3704.1.3.3", false, spl(tcb[2])),
        certs::extension("1.3.6.1.4.1.3704.1.3.8", false, spl(tcb[3])),
        certs::extension("1.3.6.1.4.1.3704.1.4", false, chip_id.to_vec()),
    ];
    let vcek = rsa_pss_signed(
        certs::tbs(&vcek_template, certs::p384_public_key_info(&vcek_key), pss),
        ask_key,
    );
    AmdChain {
        ark,
        ask,
        vcek,
        vcek_key,
    }
}

/// The Milan report's reported TCB, (bootloader, tee, snp, microcode), legacy layout.
pub fn reported_tcb(report: &[u8]) -> [u8; 4] {
    let tcb = &report[REPORTED_TCB..REPORTED_TCB + 8];
    [tcb[0], tcb[1], tcb[6], tcb[7]]
}

/// A test chain for the Milan report's chip and TCB.
pub fn chain_for(report: &[u8]) -> AmdChain {
    amd_chain(reported_tcb(report), &report[CHIP_ID..CHIP_ID + 64])
}

/// `report` with `edit` applied, signed by `key` over its first 0x2A0 bytes.
pub fn signed(report: &[u8], key: &SigningKey, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut report = report.to_vec();
    edit(&mut report);
    let signature: p384::ecdsa::Signature = key.sign(&report[..SIGNATURE]);
    let bytes = signature.to_bytes();
    report[SIGNATURE..].fill(0);
    let (r, s) = bytes.split_at(48);
    for (index, byte) in r.iter().rev().enumerate() {
        report[SIGNATURE + index] = *byte;
    }
    for (index, byte) in s.iter().rev().enumerate() {
        report[SIGNATURE + 72 + index] = *byte;
    }
    report
}

/// Set the report's guest policy DEBUG bit.
pub fn set_debug(report: &mut [u8]) {
    let mut policy = u64::from_le_bytes(report[POLICY..POLICY + 8].try_into().unwrap());
    policy |= POLICY_DEBUG;
    report[POLICY..POLICY + 8].copy_from_slice(&policy.to_le_bytes());
}
