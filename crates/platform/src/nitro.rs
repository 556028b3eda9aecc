//! AWS Nitro Enclaves: attestation documents from the Nitro Secure Module (`/dev/nsm`).
//!
//! ```text
//!  request  CBOR {"Attestation": {"user_data": <32 bytes>, "nonce": null, "public_key": null}}
//!  ── one ioctl (src/nsm_ioctl.rs) ──▶
//!  response CBOR {"Attestation": {"document": <COSE_Sign1>}} | {"Error": "<ErrorCode>"}
//! ```
//!
//! The document carries its own certificate chain: Nitro takes no endorsements.

use std::io;
use std::path::Path;

use ciborium::value::Value;
use cloister_enclave::PlatformError;
use cloister_proto::attest::EvidenceKind;

use crate::env::{Produced, Producer};

/// Where the NSM driver's device is.
pub const DEFAULT_DEVICE: &str = "/dev/nsm";
/// The driver's bound on a request (NSM_REQUEST_MAX_SIZE).
pub const REQUEST_BYTES_MAX: usize = 0x1000;
/// Bound on a response: the driver's is 0x3000 (NSM_RESPONSE_MAX_SIZE); a larger buffer
/// means the driver never has to truncate one.
pub const RESPONSE_BYTES_MAX: usize = 0x4000;
/// Cloister's report data for Nitro is the 32-byte statement hash.
const USER_DATA_BYTES: usize = 32;

/// The NSM: one request in, one response out (CBOR both ways).
pub trait NsmDevice: Send {
    /// Send `request` and return the response, at most [`RESPONSE_BYTES_MAX`] bytes.
    fn request(&mut self, request: &[u8]) -> io::Result<Vec<u8>>;
}

/// Open the NSM device at `path` (normally [`DEFAULT_DEVICE`]).
pub fn open_device(path: &Path) -> Result<Box<dyn NsmDevice>, PlatformError> {
    #[cfg(target_os = "linux")]
    {
        crate::nsm_ioctl::NsmDriver::open(path)
            .map(|driver| Box::new(driver) as Box<dyn NsmDevice>)
            .map_err(|error| {
                PlatformError(format!(
                    "Nitro Secure Module not found at {}: {error} (not inside a Nitro enclave?)",
                    path.display()
                ))
            })
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(PlatformError(format!(
            "Nitro Secure Module at {}: Nitro enclaves run Linux; this build is for another OS",
            path.display()
        )))
    }
}

/// Attestation documents from an NSM.
pub struct Nitro {
    device: Box<dyn NsmDevice>,
}

impl Nitro {
    /// Documents from `device`.
    pub fn new(device: Box<dyn NsmDevice>) -> Self {
        Self { device }
    }
}

fn text(text: &str) -> Value {
    Value::Text(text.into())
}

fn refuse(reason: impl std::fmt::Display) -> PlatformError {
    PlatformError(format!("Nitro Secure Module: {reason}"))
}

/// The CBOR of an `Attestation` request for `user_data` (no nonce, no public key).
pub fn attestation_request(user_data: &[u8]) -> Result<Vec<u8>, PlatformError> {
    let request = Value::Map(vec![(
        text("Attestation"),
        Value::Map(vec![
            (text("user_data"), Value::Bytes(user_data.to_vec())),
            (text("nonce"), Value::Null),
            (text("public_key"), Value::Null),
        ]),
    )]);
    let mut bytes = Vec::new();
    ciborium::ser::into_writer(&request, &mut bytes)
        .map_err(|error| refuse(format!("cannot encode the request: {error}")))?;
    Ok(bytes)
}

/// The document in an NSM response, or why there is none.
pub fn attestation_document(response: &[u8]) -> Result<Vec<u8>, PlatformError> {
    if response.len() > RESPONSE_BYTES_MAX {
        return Err(refuse(format!(
            "a {}-byte response, more than the {RESPONSE_BYTES_MAX} allowed",
            response.len()
        )));
    }
    let mut rest = response;
    let value: Value = ciborium::de::from_reader(&mut rest)
        .map_err(|error| refuse(format!("the response is not CBOR: {error}")))?;
    if !rest.is_empty() {
        return Err(refuse(format!(
            "{} bytes follow the response's CBOR",
            rest.len()
        )));
    }
    let unexpected = || refuse("the response is not an attestation document");
    let Value::Map(mut fields) = value else {
        return Err(unexpected());
    };
    if fields.len() != 1 {
        return Err(unexpected());
    }
    let (name, body) = fields.remove(0);
    match (name.as_text(), body) {
        (Some("Error"), Value::Text(code)) => Err(refuse(format!("it answered error {code:?}"))),
        (Some("Attestation"), Value::Map(body)) => body
            .into_iter()
            .find(|(key, _)| key.as_text() == Some("document"))
            .and_then(|(_, document)| document.into_bytes().ok())
            .filter(|document| !document.is_empty())
            .ok_or_else(unexpected),
        _ => Err(unexpected()),
    }
}

impl Producer for Nitro {
    fn kind(&self) -> EvidenceKind {
        EvidenceKind::Nitro
    }

    fn produce(&mut self, report_data: &[u8]) -> Result<Produced, PlatformError> {
        if report_data.len() != USER_DATA_BYTES {
            return Err(refuse(format!(
                "user data must be {USER_DATA_BYTES} bytes, not {}",
                report_data.len()
            )));
        }
        let request = attestation_request(report_data)?;
        // A fixed-size request: far below the driver's bound.
        debug_assert!(request.len() <= REQUEST_BYTES_MAX);
        let response = self
            .device
            .request(&request)
            .map_err(|error| refuse(format!("the request failed: {error}")))?;
        Ok(Produced {
            report: attestation_document(&response)?,
            endorsements: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(value: &Value) -> Vec<u8> {
        let mut bytes = Vec::new();
        ciborium::ser::into_writer(value, &mut bytes).unwrap();
        bytes
    }

    #[test]
    fn the_request_is_the_nsm_apis_attestation_request() {
        let request: Value =
            ciborium::de::from_reader(attestation_request(&[7; 32]).unwrap().as_slice()).unwrap();
        let Value::Map(outer) = request else {
            panic!("not a map")
        };
        assert_eq!(outer.len(), 1);
        assert_eq!(outer[0].0, text("Attestation"));
        assert_eq!(
            outer[0].1,
            Value::Map(vec![
                (text("user_data"), Value::Bytes(vec![7; 32])),
                (text("nonce"), Value::Null),
                (text("public_key"), Value::Null),
            ])
        );
    }

    #[test]
    fn responses_other_than_a_document_are_refused_with_the_reason() {
        let document = encode(&Value::Map(vec![(
            text("Attestation"),
            Value::Map(vec![(text("document"), Value::Bytes(vec![1, 2, 3]))]),
        )]));
        assert_eq!(attestation_document(&document).unwrap(), [1, 2, 3]);
        let error = encode(&Value::Map(vec![(text("Error"), text("InvalidArgument"))]));
        assert!(
            attestation_document(&error)
                .unwrap_err()
                .0
                .contains("\"InvalidArgument\"")
        );
        let mut trailing = document.clone();
        trailing.push(0);
        for (response, reason) in [
            (&trailing[..], "follow"),
            (&document[..document.len() - 1], "not CBOR"),
            (b"\xff\xff", "not CBOR"),
            (&encode(&text("Attestation"))[..], "not an attestation"),
            (
                &encode(&Value::Map(vec![(text("DescribePCR"), Value::Map(vec![]))]))[..],
                "not an attestation",
            ),
            (&vec![0; RESPONSE_BYTES_MAX + 1][..], "more than"),
        ] {
            let error = attestation_document(response).unwrap_err();
            assert!(error.0.contains(reason), "{error}");
        }
    }
}
