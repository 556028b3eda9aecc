//! Nitro attestation documents signed by a test chain (root, intermediate, leaf), built the
//! way the NSM builds them: COSE_Sign1, ES384, a CBOR payload with PCRs and a cabundle (a
//! copy of crates/attest/tests/support/nitro.rs).

use ciborium::value::Value;
use p384::ecdsa::SigningKey;
use p384::ecdsa::signature::Signer;

use super::certs::{self, Template};

/// When the test document was made (unix seconds).
pub const ISSUED_AT: u64 = 1_750_000_000;
/// The leaf certificate's window, like the NSM's short-lived leaves (three hours).
pub const LEAF_NOT_BEFORE: u64 = ISSUED_AT - 60;
pub const LEAF_NOT_AFTER: u64 = LEAF_NOT_BEFORE + 3 * 60 * 60;

/// A test chain standing in for AWS's.
pub struct Chain {
    pub root: Vec<u8>,
    pub intermediate: Vec<u8>,
    pub leaf: Vec<u8>,
    pub leaf_key: SigningKey,
}

pub fn chain() -> Chain {
    let (root_key, intermediate_key, leaf_key) =
        (certs::p384_key(1), certs::p384_key(2), certs::p384_key(3));
    let root_name = "CN=test.nitro-enclaves,O=Cloister tests";
    let intermediate_name = "CN=test.intermediate.nitro-enclaves,O=Cloister tests";
    let root = certs::p384_certificate(
        &Template::new(root_name, root_name, true),
        &root_key,
        &root_key,
    );
    let intermediate = certs::p384_certificate(
        &Template::new(intermediate_name, root_name, true),
        &intermediate_key,
        &root_key,
    );
    let mut leaf_template = Template::new(
        "CN=i-0123.test-enclave,O=Cloister tests",
        intermediate_name,
        false,
    );
    leaf_template.not_before = LEAF_NOT_BEFORE;
    leaf_template.not_after = LEAF_NOT_AFTER;
    let leaf = certs::p384_certificate(&leaf_template, &leaf_key, &intermediate_key);
    Chain {
        root,
        intermediate,
        leaf,
        leaf_key,
    }
}

/// The fields a test chooses.
#[derive(Clone)]
pub struct Fields {
    pub pcrs: [[u8; 48]; 3],
    pub user_data: Option<Vec<u8>>,
    pub timestamp_millis: u64,
}

impl Default for Fields {
    fn default() -> Self {
        Self {
            pcrs: [[0xa0; 48], [0xa1; 48], [0xa2; 48]],
            user_data: Some(vec![0x5a; 32]),
            timestamp_millis: ISSUED_AT * 1000,
        }
    }
}

fn encode(value: &Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::ser::into_writer(value, &mut bytes).unwrap();
    bytes
}

fn text(text: &str) -> Value {
    Value::Text(text.into())
}

/// A signed document for `fields`, by `chain`.
pub fn document(fields: &Fields, chain: &Chain) -> Vec<u8> {
    let mut pcrs: Vec<(Value, Value)> = fields
        .pcrs
        .iter()
        .enumerate()
        .map(|(index, pcr)| (Value::Integer(index.into()), Value::Bytes(pcr.to_vec())))
        .collect();
    pcrs.push((Value::Integer(8.into()), Value::Bytes(vec![0; 48])));
    let optional = |bytes: &Option<Vec<u8>>| bytes.clone().map_or(Value::Null, Value::Bytes);
    let payload = encode(&Value::Map(vec![
        (text("module_id"), text("i-0123-enc0123")),
        (text("digest"), text("SHA384")),
        (
            text("timestamp"),
            Value::Integer(fields.timestamp_millis.into()),
        ),
        (text("pcrs"), Value::Map(pcrs)),
        (text("certificate"), Value::Bytes(chain.leaf.clone())),
        (
            text("cabundle"),
            Value::Array(vec![
                Value::Bytes(chain.root.clone()),
                Value::Bytes(chain.intermediate.clone()),
            ]),
        ),
        (text("public_key"), Value::Null),
        (text("user_data"), optional(&fields.user_data)),
        (text("nonce"), Value::Null),
    ]));
    let protected = encode(&Value::Map(vec![(
        Value::Integer(1.into()),
        Value::Integer((-35).into()),
    )]));
    let signed = encode(&Value::Array(vec![
        text("Signature1"),
        Value::Bytes(protected.clone()),
        Value::Bytes(Vec::new()),
        Value::Bytes(payload.clone()),
    ]));
    let signature: p384::ecdsa::Signature = chain.leaf_key.sign(&signed);
    encode(&Value::Tag(
        18,
        Box::new(Value::Array(vec![
            Value::Bytes(protected),
            Value::Map(Vec::new()),
            Value::Bytes(payload),
            Value::Bytes(signature.to_bytes().to_vec()),
        ])),
    ))
}
