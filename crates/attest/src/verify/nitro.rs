//! AWS Nitro Enclaves attestation documents: a COSE_Sign1 (RFC 9052) over a CBOR map,
//! signed with ECDSA P-384 by a short-lived leaf certificate that chains to AWS's root.
//!
//! ```text
//!  COSE_Sign1 [protected {alg: ES384}, unprotected, payload, signature]
//!  payload {module_id, digest, timestamp (ms), pcrs {0..}, certificate, cabundle [root, ..],
//!           public_key?, user_data?, nonce?}
//!  cabundle[0] == trusted root ─▶ cabundle[1..] ─▶ certificate ─ES384─▶ Sig_structure
//! ```
//!
//! Nitro takes no endorsements: the document carries its chain. The measurement is derived
//! from PCR0-2 (image, kernel, application); the report data is `user_data`. A debug-mode
//! enclave's PCRs read all zero, which is how the debug flag is read.

use ciborium::value::Value;
use cloister_proto::attest::EvidenceKind;
use x509_cert::Certificate;
use x509_cert::der::{DecodePem, Encode};

use super::x509;
use crate::AttestError;
use crate::claims::{Claims, Validity, derived_measurement};
use crate::policy::Roots;

/// The AWS Nitro Enclaves root certificate (G1), as AWS publishes it; its SHA-256 (DER)
/// fingerprint is 641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b.
const AWS_NITRO_ROOT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD
VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4
MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL
DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG
BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb
48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE
h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF
R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC
MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW
rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N
IwLz3/Y=
-----END CERTIFICATE-----
";

/// COSE_Sign1's CBOR tag (RFC 9052 §4.2).
const COSE_SIGN1_TAG: u64 = 18;
/// COSE algorithm ES384 (ECDSA P-384 with SHA-384).
const ES384: i128 = -35;
/// Bound on the certificates in a document's bundle (AWS uses four).
const CABUNDLE_CERTIFICATES_MAX: usize = 8;
/// Bound on PCR entries (the NSM has 32).
const PCRS_MAX: usize = 32;
const PCR_BYTES: usize = 48;
const WHAT: &str = "Nitro attestation document";

/// DER of the AWS Nitro root.
pub(crate) fn aws_root_der() -> Result<Vec<u8>, AttestError> {
    Certificate::from_pem(AWS_NITRO_ROOT_PEM)
        .and_then(|certificate| certificate.to_der())
        .map_err(|_| AttestError::Malformed("built-in AWS Nitro root"))
}

/// Verify a Nitro attestation document at `now`.
pub(super) fn claims(
    document: &[u8],
    endorsements: &[u8],
    roots: &Roots,
    now: u64,
) -> Result<Claims, AttestError> {
    if !endorsements.is_empty() {
        return Err(AttestError::UnexpectedEndorsements(
            "nitro",
            endorsements.len(),
        ));
    }
    let sign1 = CoseSign1::parse(document)?;
    let payload = Payload::parse(&sign1.payload)?;
    let validity = check_chain(&payload, roots, now)?;
    let leaf = x509::parse("Nitro leaf certificate", &payload.certificate)?;
    x509::verify_p384_fixed(&leaf, &sign1.signed_bytes()?, &sign1.signature)
        .map_err(|()| AttestError::BadSignature("the Nitro leaf key's COSE signature".into()))?;
    let [pcr0, pcr1, pcr2] = payload.measured_pcrs()?;
    let mut details = vec![
        ("module_id", payload.module_id.clone()),
        ("pcr0", hex::encode(pcr0)),
        ("pcr1", hex::encode(pcr1)),
        ("pcr2", hex::encode(pcr2)),
    ];
    if let Some(public_key) = &payload.public_key {
        details.push(("public_key", hex::encode(public_key)));
    }
    if let Some(nonce) = &payload.nonce {
        details.push(("nonce", hex::encode(nonce)));
    }
    Ok(Claims {
        kind: EvidenceKind::Nitro,
        measurement: derived_measurement("nitro", &[pcr0, pcr1, pcr2]),
        report_data: payload.user_data.clone().unwrap_or_default(),
        tcb_status: None,
        advisory_ids: Vec::new(),
        snp_tcb: None,
        debug: pcr0.iter().all(|byte| *byte == 0),
        issued_at_unix_secs: Some(payload.timestamp_millis / 1000),
        validity,
        details,
        // Nitro attests no version numbers; the PCRs are the measurement.
        attested_values: Default::default(),
    })
}

/// `cabundle[0]` must be the trusted root; each next certificate is issued by the one
/// before; the leaf by the last. Every certificate must be valid at `now`.
fn check_chain(payload: &Payload, roots: &Roots, now: u64) -> Result<Validity, AttestError> {
    let trusted = match &roots.nitro_root {
        Some(der) => der.clone(),
        None => aws_root_der()?,
    };
    let root_der = payload
        .cabundle
        .first()
        .ok_or(AttestError::Malformed("Nitro document: empty cabundle"))?;
    if *root_der != trusted {
        return Err(AttestError::CertificateChain(
            "the document's root is not the trusted Nitro root".into(),
        ));
    }
    let mut issuer = x509::parse("Nitro root certificate", root_der)?;
    let mut validity = x509::check_validity("Nitro root", &issuer, now)?;
    let rest = payload.cabundle[1..]
        .iter()
        .map(|der| ("Nitro intermediate", der));
    for (what, der) in rest.chain([("Nitro leaf", &payload.certificate)]) {
        let certificate = x509::parse("Nitro certificate", der)?;
        x509::check_issued_by(what, &certificate, &issuer)?;
        validity = validity.intersect(x509::check_validity(what, &certificate, now)?);
        issuer = certificate;
    }
    Ok(validity)
}

/// The four parts of a COSE_Sign1 this verifier uses.
struct CoseSign1 {
    protected: Vec<u8>,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl CoseSign1 {
    fn parse(document: &[u8]) -> Result<Self, AttestError> {
        let value = decode_exact(document, WHAT)?;
        let value = match value {
            Value::Tag(COSE_SIGN1_TAG, inner) => *inner,
            Value::Tag(..) => return Err(AttestError::Malformed("COSE_Sign1: wrong tag")),
            other => other,
        };
        let Value::Array(parts) = value else {
            return Err(AttestError::Malformed("COSE_Sign1: not an array"));
        };
        let [protected, unprotected, payload, signature] = <[Value; 4]>::try_from(parts)
            .map_err(|_| AttestError::Malformed("COSE_Sign1: not four parts"))?;
        let (
            Value::Bytes(protected),
            Value::Map(_),
            Value::Bytes(payload),
            Value::Bytes(signature),
        ) = (protected, unprotected, payload, signature)
        else {
            return Err(AttestError::Malformed(
                "COSE_Sign1: parts of the wrong types",
            ));
        };
        let Value::Map(header) = decode_exact(&protected, "COSE protected header")? else {
            return Err(AttestError::Malformed("COSE protected header: not a map"));
        };
        let algorithm = header.iter().find_map(|(key, value)| match (key, value) {
            (Value::Integer(key), Value::Integer(value)) if i128::from(*key) == 1 => {
                Some(i128::from(*value))
            }
            _ => None,
        });
        if algorithm != Some(ES384) {
            return Err(AttestError::Malformed("COSE_Sign1: algorithm is not ES384"));
        }
        Ok(Self {
            protected,
            payload,
            signature,
        })
    }

    /// Sig_structure = ["Signature1", protected, external_aad = h'', payload] (RFC 9052 §4.4).
    fn signed_bytes(&self) -> Result<Vec<u8>, AttestError> {
        let structure = Value::Array(vec![
            Value::Text("Signature1".into()),
            Value::Bytes(self.protected.clone()),
            Value::Bytes(Vec::new()),
            Value::Bytes(self.payload.clone()),
        ]);
        let mut bytes = Vec::new();
        ciborium::ser::into_writer(&structure, &mut bytes)
            .map_err(|_| AttestError::Malformed("COSE Sig_structure"))?;
        Ok(bytes)
    }
}

/// The attestation document's fields.
struct Payload {
    module_id: String,
    timestamp_millis: u64,
    pcrs: Vec<(u64, Vec<u8>)>,
    certificate: Vec<u8>,
    cabundle: Vec<Vec<u8>>,
    public_key: Option<Vec<u8>>,
    user_data: Option<Vec<u8>>,
    nonce: Option<Vec<u8>>,
}

impl Payload {
    fn parse(bytes: &[u8]) -> Result<Self, AttestError> {
        let Value::Map(fields) = decode_exact(bytes, "Nitro document payload")? else {
            return Err(AttestError::Malformed("Nitro document payload: not a map"));
        };
        let field = |name: &str| {
            fields
                .iter()
                .find(|(key, _)| key.as_text() == Some(name))
                .map(|(_, value)| value)
        };
        let missing = |name: &'static str| AttestError::Unparsable {
            what: WHAT,
            reason: format!("{name} is missing or of the wrong type"),
        };
        let bytes_field = |name: &'static str| -> Result<Option<Vec<u8>>, AttestError> {
            match field(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Bytes(bytes)) => Ok(Some(bytes.clone())),
                Some(_) => Err(missing(name)),
            }
        };
        if field("digest").and_then(Value::as_text) != Some("SHA384") {
            return Err(missing("digest (SHA384)"));
        }
        let timestamp_millis = field("timestamp")
            .and_then(Value::as_integer)
            .and_then(|value| u64::try_from(value).ok())
            .ok_or_else(|| missing("timestamp"))?;
        let pcrs = match field("pcrs") {
            Some(Value::Map(entries)) if entries.len() <= PCRS_MAX => entries
                .iter()
                .map(|(index, value)| {
                    let index = index
                        .as_integer()
                        .and_then(|index| u64::try_from(index).ok());
                    match (index, value) {
                        (Some(index), Value::Bytes(value)) => Ok((index, value.clone())),
                        _ => Err(missing("pcrs")),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(missing("pcrs")),
        };
        let cabundle = match field("cabundle") {
            Some(Value::Array(items)) if items.len() <= CABUNDLE_CERTIFICATES_MAX => items
                .iter()
                .map(|item| item.as_bytes().cloned().ok_or_else(|| missing("cabundle")))
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(missing("cabundle")),
        };
        Ok(Self {
            module_id: field("module_id")
                .and_then(Value::as_text)
                .ok_or_else(|| missing("module_id"))?
                .to_owned(),
            timestamp_millis,
            pcrs,
            certificate: bytes_field("certificate")?.ok_or_else(|| missing("certificate"))?,
            cabundle,
            public_key: bytes_field("public_key")?,
            user_data: bytes_field("user_data")?,
            nonce: bytes_field("nonce")?,
        })
    }
}

impl Payload {
    /// PCR0, PCR1 and PCR2 (image, kernel, application): what the measurement is made of.
    fn measured_pcrs(&self) -> Result<[&[u8]; 3], AttestError> {
        let pcr = |index: u64| -> Result<&[u8], AttestError> {
            self.pcrs
                .iter()
                .find(|(number, _)| *number == index)
                .map(|(_, value)| value.as_slice())
                .filter(|value| value.len() == PCR_BYTES)
                .ok_or(AttestError::Malformed(
                    "Nitro document: PCR0-2 must be 48 bytes",
                ))
        };
        Ok([pcr(0)?, pcr(1)?, pcr(2)?])
    }
}

/// The measurement and `user_data` of a well-formed document, **without checking its
/// signature or its chain**: see [`crate::unverified`].
pub(crate) fn inspect(
    document: &[u8],
) -> Result<([u8; crate::MEASUREMENT_BYTES], Vec<u8>), AttestError> {
    let sign1 = CoseSign1::parse(document)?;
    let payload = Payload::parse(&sign1.payload)?;
    let [pcr0, pcr1, pcr2] = payload.measured_pcrs()?;
    Ok((
        derived_measurement("nitro", &[pcr0, pcr1, pcr2]),
        payload.user_data.unwrap_or_default(),
    ))
}

/// Decode one CBOR item that spans `bytes` exactly.
fn decode_exact(bytes: &[u8], what: &'static str) -> Result<Value, AttestError> {
    let mut rest = bytes;
    let value: Value = ciborium::de::from_reader(&mut rest).map_err(|error| match error {
        ciborium::de::Error::Io(_) => AttestError::Truncated {
            what,
            bytes: bytes.len(),
            needed: bytes.len() + 1,
        },
        other => AttestError::Unparsable {
            what,
            reason: other.to_string(),
        },
    })?;
    if !rest.is_empty() {
        return Err(AttestError::TrailingBytes {
            what,
            extra: rest.len(),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    #[test]
    fn the_built_in_root_is_the_one_aws_publishes() {
        // AWS documents this SHA-256 fingerprint for AWS_NitroEnclaves_Root-G1.
        let der = super::aws_root_der().unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(&der)),
            "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
        );
    }
}
