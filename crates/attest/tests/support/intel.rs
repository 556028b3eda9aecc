//! A test Intel PKI (root CA, PCK CA, PCK leaf, TCB signer; both CRLs) that re-signs the
//! real SGX sample: the same platform (the PCK leaf keeps Intel's SGX extension, so the
//! real TCB info applies), with the report body, TCB info or QE identity a test chooses.
//! The policy then trusts the test root (`Policy::with_intel_root_ca`).

use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::str::FromStr;
use x509_cert::Certificate;
use x509_cert::crl::{CertificateList, TbsCertList};
use x509_cert::der::asn1::{Any, BitString, ObjectIdentifier};
use x509_cert::der::{Decode, Encode, EncodePem};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::certs::{self, Template};
use super::dcap;

const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const PRIME256V1: &str = "1.2.840.10045.3.1.7";
const ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";
/// Intel's SGX extension in PCK certificates (FMSPC, TCB components, PCE id...).
const SGX_EXTENSION: &str = "1.2.840.113741.1.13.1";
const HEADER: usize = 48;
const BODY: usize = 384;
/// SGX report body offsets.
pub const ATTRIBUTES: usize = 48;
pub const REPORT_DATA: usize = 320;

/// A P-256 key that signs both raw (r || s) and DER signatures.
pub struct Key {
    pkcs8: Vec<u8>,
}

impl Key {
    fn new() -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .unwrap();
        Self {
            pkcs8: pkcs8.as_ref().to_vec(),
        }
    }

    fn pair(&self, algorithm: &'static ring::signature::EcdsaSigningAlgorithm) -> EcdsaKeyPair {
        EcdsaKeyPair::from_pkcs8(algorithm, &self.pkcs8, &SystemRandom::new()).unwrap()
    }

    /// The uncompressed point, 0x04 || x || y.
    pub fn public(&self) -> Vec<u8> {
        self.pair(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .public_key()
            .as_ref()
            .to_vec()
    }

    pub fn sign_fixed(&self, message: &[u8]) -> Vec<u8> {
        let pair = self.pair(&ECDSA_P256_SHA256_FIXED_SIGNING);
        pair.sign(&SystemRandom::new(), message)
            .unwrap()
            .as_ref()
            .to_vec()
    }

    fn sign_der(&self, message: &[u8]) -> Vec<u8> {
        let pair = self.pair(&ECDSA_P256_SHA256_ASN1_SIGNING);
        pair.sign(&SystemRandom::new(), message)
            .unwrap()
            .as_ref()
            .to_vec()
    }

    fn public_key_info(&self) -> SubjectPublicKeyInfoOwned {
        SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: ObjectIdentifier::new_unwrap(EC_PUBLIC_KEY),
                parameters: Some(Any::from(&ObjectIdentifier::new_unwrap(PRIME256V1))),
            },
            subject_public_key: BitString::from_bytes(&self.public()).unwrap(),
        }
    }
}

fn ecdsa_sha256() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: ObjectIdentifier::new_unwrap(ECDSA_WITH_SHA256),
        parameters: None,
    }
}

fn certificate(template: &Template<'_>, subject: &Key, issuer: &Key) -> Vec<u8> {
    let tbs = certs::tbs(template, subject.public_key_info(), ecdsa_sha256());
    certs::assemble(tbs, |bytes| issuer.sign_der(bytes))
}

/// An empty CRL by `issuer_name`, valid over the whole test window.
fn crl(issuer_name: &str, issuer: &Key) -> Vec<u8> {
    let crl_number = certs::extension("2.5.29.20", false, 1u8.to_der().unwrap());
    let tbs = TbsCertList {
        version: x509_cert::Version::V2,
        signature: ecdsa_sha256(),
        issuer: Name::from_str(issuer_name).unwrap(),
        this_update: certs::time(certs::NOT_BEFORE),
        next_update: Some(certs::time(certs::NOT_AFTER)),
        revoked_certificates: None,
        crl_extensions: Some(vec![crl_number]),
    };
    let signature = issuer.sign_der(&tbs.to_der().unwrap());
    CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: ecdsa_sha256(),
        signature: BitString::from_bytes(&signature).unwrap(),
    }
    .to_der()
    .unwrap()
}

fn pem(der: &[u8]) -> String {
    Certificate::from_der(der)
        .unwrap()
        .to_pem(x509_cert::der::pem::LineEnding::LF)
        .unwrap()
}

/// The test PKI and the sample quote's pieces it re-signs.
pub struct Pki {
    pub root: Vec<u8>,
    pck_ca: Vec<u8>,
    pck: Vec<u8>,
    tcb_signer: Vec<u8>,
    pck_key: Key,
    tcb_key: Key,
    root_crl: Vec<u8>,
    pck_crl: Vec<u8>,
}

impl Pki {
    /// A PKI whose PCK leaf describes the same platform as the SGX sample's.
    pub fn for_sample(sample: &[u8]) -> Self {
        let (root_key, pck_ca_key, pck_key, tcb_key) =
            (Key::new(), Key::new(), Key::new(), Key::new());
        let (root_name, pck_ca_name) = (
            "CN=Test SGX Root CA,O=Cloister tests",
            "CN=Test SGX PCK Platform CA,O=Cloister tests",
        );
        let root = certificate(
            &Template::new(root_name, root_name, true),
            &root_key,
            &root_key,
        );
        let pck_ca = certificate(
            &Template::new(pck_ca_name, root_name, true),
            &pck_ca_key,
            &root_key,
        );
        let mut pck_template = Template::new(
            "CN=Test SGX PCK Certificate,O=Cloister tests",
            pck_ca_name,
            false,
        );
        pck_template.extensions = vec![sample_sgx_extension(sample)];
        let pck = certificate(&pck_template, &pck_key, &pck_ca_key);
        let tcb_signer = certificate(
            &Template::new("CN=Test SGX TCB Signing,O=Cloister tests", root_name, false),
            &tcb_key,
            &root_key,
        );
        Self {
            root_crl: crl(root_name, &root_key),
            pck_crl: crl(pck_ca_name, &pck_ca_key),
            root,
            pck_ca,
            pck,
            tcb_signer,
            pck_key,
            tcb_key,
        }
    }

    /// The sample's collateral with the test chains, TCB info and QE identity re-signed
    /// after `edit_tcb_info` changes the TCB info's JSON.
    pub fn collateral(
        &self,
        sample_collateral: &[u8],
        edit_tcb_info: impl FnOnce(&mut Value),
    ) -> Vec<u8> {
        let mut collateral: Value = serde_json::from_slice(sample_collateral).unwrap();
        let mut tcb_info: Value =
            serde_json::from_str(collateral["tcb_info"].as_str().unwrap()).unwrap();
        edit_tcb_info(&mut tcb_info);
        let tcb_info = serde_json::to_string(&tcb_info).unwrap();
        let qe_identity = collateral["qe_identity"].as_str().unwrap().to_owned();
        let signer_chain = format!("{}{}", pem(&self.tcb_signer), pem(&self.root));
        collateral["tcb_info_signature"] =
            bytes_value(&self.tcb_key.sign_fixed(tcb_info.as_bytes()));
        collateral["qe_identity_signature"] =
            bytes_value(&self.tcb_key.sign_fixed(qe_identity.as_bytes()));
        collateral["tcb_info"] = Value::String(tcb_info);
        collateral["tcb_info_issuer_chain"] = Value::String(signer_chain.clone());
        collateral["qe_identity_issuer_chain"] = Value::String(signer_chain);
        collateral["pck_crl_issuer_chain"] =
            Value::String(format!("{}{}", pem(&self.pck_ca), pem(&self.root)));
        collateral["root_ca_crl"] = bytes_value(&self.root_crl);
        collateral["pck_crl"] = bytes_value(&self.pck_crl);
        serde_json::to_vec(&collateral).unwrap()
    }

    /// The sample quote with `edit_body` applied to its report body, re-signed: a fresh
    /// attestation key, the QE report bound to it and signed by the test PCK, the test chain.
    pub fn quote(&self, sample: &[u8], edit_body: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let mut signed = sample[..HEADER + BODY].to_vec();
        edit_body(&mut signed[HEADER..]);
        let auth = &sample[HEADER + BODY + 4..];
        let mut qe_report = auth[128..128 + 384].to_vec();
        let qe_auth_length = usize::from(u16::from_le_bytes([auth[576], auth[577]]));
        let qe_auth = &auth[578..578 + qe_auth_length];
        let attestation_key = Key::new();
        let public = &attestation_key.public()[1..];
        let mut hashed = public.to_vec();
        hashed.extend_from_slice(qe_auth);
        qe_report[REPORT_DATA..REPORT_DATA + 32].copy_from_slice(&Sha256::digest(&hashed));
        let chain = format!(
            "{}{}{}\0",
            pem(&self.pck),
            pem(&self.pck_ca),
            pem(&self.root)
        );

        let mut data = attestation_key.sign_fixed(&signed);
        data.extend_from_slice(public);
        data.extend_from_slice(&qe_report);
        data.extend(self.pck_key.sign_fixed(&qe_report));
        data.extend_from_slice(&auth[576..578 + qe_auth_length]);
        data.extend_from_slice(&5u16.to_le_bytes());
        data.extend_from_slice(&u32::try_from(chain.len()).unwrap().to_le_bytes());
        data.extend_from_slice(chain.as_bytes());

        let mut quote = signed;
        quote.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
        quote.extend(data);
        quote
    }
}

/// Bytes as the collateral JSON holds them: hex.
fn bytes_value(bytes: &[u8]) -> Value {
    Value::String(hex::encode(bytes))
}

/// Intel's SGX extension from the sample's PCK leaf certificate.
fn sample_sgx_extension(sample: &[u8]) -> Extension {
    let start = sample
        .windows(11)
        .position(|window| window == b"-----BEGIN ")
        .unwrap();
    let end = sample.iter().rposition(|byte| *byte != 0).unwrap() + 1;
    let chain = Certificate::load_pem_chain(&sample[start..end]).unwrap();
    chain[0]
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|extension| extension.extn_id == ObjectIdentifier::new_unwrap(SGX_EXTENSION))
        .cloned()
        .unwrap()
}

/// The SGX sample and its collateral.
pub fn sample() -> dcap::Vector {
    dcap::vector("sgx_quote")
}
