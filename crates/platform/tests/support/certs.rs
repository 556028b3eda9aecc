//! Hand-built X.509 certificates for a test chain that stands in for AWS's (a copy of
//! crates/attest/tests/support/certs.rs).

use std::str::FromStr;
use std::time::Duration;

use p384::ecdsa::SigningKey;
use p384::ecdsa::signature::Signer;
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::der::asn1::{BitString, ObjectIdentifier, OctetString, UtcTime};
use x509_cert::der::{Any, Encode};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};

/// 2024-01-01T00:00:00Z.
pub const NOT_BEFORE: u64 = 1_704_067_200;
/// 2034-01-01T00:00:00Z.
pub const NOT_AFTER: u64 = 2_019_686_400;

const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const SECP384R1: &str = "1.3.132.0.34";
const ECDSA_WITH_SHA384: &str = "1.2.840.10045.4.3.3";

/// What a test certificate says about itself.
pub struct Template<'a> {
    pub subject: &'a str,
    pub issuer: &'a str,
    pub serial: u8,
    pub not_before: u64,
    pub not_after: u64,
    pub ca: bool,
    pub extensions: Vec<Extension>,
}

impl<'a> Template<'a> {
    pub fn new(subject: &'a str, issuer: &'a str, ca: bool) -> Self {
        Self {
            subject,
            issuer,
            serial: 1,
            not_before: NOT_BEFORE,
            not_after: NOT_AFTER,
            ca,
            extensions: Vec::new(),
        }
    }
}

/// A deterministic P-384 key from a one-byte seed.
pub fn p384_key(seed: u8) -> SigningKey {
    let mut scalar = [0x11u8; 48];
    scalar[47] = seed;
    SigningKey::from_slice(&scalar).unwrap()
}

/// The SPKI of a P-384 key.
pub fn p384_public_key_info(key: &SigningKey) -> SubjectPublicKeyInfoOwned {
    let point = key.verifying_key().to_encoded_point(false);
    SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap(EC_PUBLIC_KEY),
            parameters: Some(Any::from(&ObjectIdentifier::new_unwrap(SECP384R1))),
        },
        subject_public_key: BitString::from_bytes(point.as_bytes()).unwrap(),
    }
}

/// An extension with `value` (already DER) as its content.
pub fn extension(oid: &str, critical: bool, value: Vec<u8>) -> Extension {
    Extension {
        extn_id: ObjectIdentifier::new_unwrap(oid),
        critical,
        extn_value: OctetString::new(value).unwrap(),
    }
}

pub fn time(unix_secs: u64) -> Time {
    Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(unix_secs)).unwrap())
}

/// The to-be-signed part of a certificate for `template` and `public_key`.
pub fn tbs(
    template: &Template<'_>,
    public_key: SubjectPublicKeyInfoOwned,
    signature_algorithm: AlgorithmIdentifierOwned,
) -> TbsCertificate {
    let mut extensions = template.extensions.clone();
    if template.ca {
        let constraints = BasicConstraints {
            ca: true,
            path_len_constraint: None,
        };
        extensions.push(extension("2.5.29.19", true, constraints.to_der().unwrap()));
    }
    TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&[template.serial]).unwrap(),
        signature: signature_algorithm,
        issuer: Name::from_str(template.issuer).unwrap(),
        validity: Validity {
            not_before: time(template.not_before),
            not_after: time(template.not_after),
        },
        subject: Name::from_str(template.subject).unwrap(),
        subject_public_key_info: public_key,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: (!extensions.is_empty()).then_some(extensions),
    }
}

/// Sign `tbs` with `sign` (which returns the signature's DER or raw bytes for the algorithm).
pub fn assemble(tbs: TbsCertificate, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let signature = sign(&tbs.to_der().unwrap());
    Certificate {
        signature_algorithm: tbs.signature.clone(),
        tbs_certificate: tbs,
        signature: BitString::from_bytes(&signature).unwrap(),
    }
    .to_der()
    .unwrap()
}

/// A P-384 certificate for `subject_key`, signed with ECDSA-SHA384 by `issuer_key`.
pub fn p384_certificate(
    template: &Template<'_>,
    subject_key: &SigningKey,
    issuer_key: &SigningKey,
) -> Vec<u8> {
    let algorithm = AlgorithmIdentifierOwned {
        oid: ObjectIdentifier::new_unwrap(ECDSA_WITH_SHA384),
        parameters: None,
    };
    let tbs = tbs(template, p384_public_key_info(subject_key), algorithm);
    assemble(tbs, |bytes| {
        let signature: p384::ecdsa::Signature = issuer_key.sign(bytes);
        signature.to_der().as_bytes().to_vec()
    })
}
