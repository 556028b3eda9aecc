//! The little X.509 the SEV-SNP and Nitro verifiers need: parse, check a validity window at
//! `now`, check an ECDSA P-384 / SHA-384 signature by an issuer, compare public keys.

use ring::signature::{ECDSA_P384_SHA384_ASN1, ECDSA_P384_SHA384_FIXED, UnparsedPublicKey};
use x509_cert::Certificate;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::BasicConstraints;

use crate::AttestError;
use crate::claims::Validity;

/// ecdsa-with-SHA384 (RFC 5758).
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// basicConstraints (RFC 5280 §4.2.1.9).
const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");

/// Parse one DER certificate.
pub(super) fn parse(what: &'static str, der: &[u8]) -> Result<Certificate, AttestError> {
    Certificate::from_der(der).map_err(|error| AttestError::Unparsable {
        what,
        reason: error.to_string(),
    })
}

/// The fields outside the signed part admit one value each: the outer signature algorithm
/// equals the signed one (RFC 5280 §4.1.1.2), and the signature is whole bytes.
pub(super) fn check_unsigned_fields(
    what: &str,
    certificate: &Certificate,
) -> Result<(), AttestError> {
    if certificate.signature_algorithm != certificate.tbs_certificate.signature {
        return Err(AttestError::CertificateChain(format!(
            "the {what} certificate's signature algorithm differs from the one it signed"
        )));
    }
    if certificate.signature.as_bytes().is_none() {
        return Err(AttestError::CertificateChain(format!(
            "the {what} certificate's signature is not whole bytes"
        )));
    }
    Ok(())
}

/// The certificate's validity window.
pub(super) fn validity(certificate: &Certificate) -> Validity {
    let window = &certificate.tbs_certificate.validity;
    Validity {
        not_before_unix_secs: window.not_before.to_unix_duration().as_secs(),
        not_after_unix_secs: window.not_after.to_unix_duration().as_secs(),
    }
}

/// The certificate's window, or a refusal when `now` is outside it.
pub(super) fn check_validity(
    what: &str,
    certificate: &Certificate,
    now: u64,
) -> Result<Validity, AttestError> {
    let window = validity(certificate);
    if !window.contains(now) {
        return Err(AttestError::OutsideValidityWindow {
            now,
            reason: format!(
                "the {what} certificate is valid from {} to {}",
                window.not_before_unix_secs, window.not_after_unix_secs
            ),
        });
    }
    Ok(window)
}

/// DER of the certificate's subject public key info: what trusting a root means.
pub(super) fn public_key_info(certificate: &Certificate) -> Result<Vec<u8>, AttestError> {
    certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|_| AttestError::Malformed("certificate public key"))
}

/// The certificate's public key (SEC1 point), checked to be on P-384 when it is used.
fn public_key(certificate: &Certificate) -> &[u8] {
    certificate
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes()
}

/// Check a raw `r || s` (48 bytes each) ECDSA P-384 / SHA-384 signature by `signer`.
pub(super) fn verify_p384_fixed(
    signer: &Certificate,
    message: &[u8],
    signature: &[u8],
) -> Result<(), ()> {
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, public_key(signer))
        .verify(message, signature)
        .map_err(|_| ())
}

/// True when the certificate says it is a CA.
pub(super) fn is_ca(certificate: &Certificate) -> bool {
    certificate
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|extension| extension.extn_id == BASIC_CONSTRAINTS)
        .any(|extension| {
            BasicConstraints::from_der(extension.extn_value.as_bytes())
                .is_ok_and(|constraints| constraints.ca)
        })
}

/// Check that `issuer` issued `certificate`: names chain, the issuer is a CA, and the
/// issuer's P-384 key made the ECDSA-SHA384 signature over the to-be-signed part.
pub(super) fn check_issued_by(
    what: &str,
    certificate: &Certificate,
    issuer: &Certificate,
) -> Result<(), AttestError> {
    let refuse =
        |reason: &str| AttestError::CertificateChain(format!("the {what} certificate {reason}"));
    if certificate.tbs_certificate.issuer != issuer.tbs_certificate.subject {
        return Err(refuse("names an issuer other than the next certificate"));
    }
    if !is_ca(issuer) {
        return Err(refuse("is issued by a certificate that is not a CA"));
    }
    check_unsigned_fields(what, certificate)?;
    if certificate.signature_algorithm.oid != ECDSA_WITH_SHA384 {
        return Err(refuse("is not signed with ECDSA P-384 / SHA-384"));
    }
    let signature = certificate
        .signature
        .as_bytes()
        .ok_or_else(|| refuse("carries a malformed signature"))?;
    let signed = certificate
        .tbs_certificate
        .to_der()
        .map_err(|_| refuse("does not re-encode"))?;
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, public_key(issuer))
        .verify(&signed, signature)
        .map_err(|_| {
            AttestError::BadSignature(format!("the {what} certificate's issuer signature"))
        })
}
