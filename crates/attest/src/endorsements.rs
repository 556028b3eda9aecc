//! Building endorsements from the files vendors hand out, for tools and operators.
//!
//! ```text
//!  VCEK (DER or PEM, from AMD's KDS) + cert_chain (PEM: ASK then ARK) ──▶ SevSnpEndorsements
//!  a root certificate (DER or PEM) ──▶ DER, for Policy::with_*_root*
//! ```

use cloister_proto::attest::SevSnpEndorsements;
use prost::Message;
use x509_cert::Certificate;
use x509_cert::der::{Decode, DecodePem, Encode};

use crate::AttestError;

/// One certificate as DER, from DER or PEM bytes.
pub fn certificate_der(bytes: &[u8]) -> Result<Vec<u8>, AttestError> {
    // DER starts with a SEQUENCE tag; anything else is taken for PEM.
    let certificate = if bytes.first() == Some(&0x30) {
        Certificate::from_der(bytes)
    } else {
        Certificate::from_pem(bytes)
    };
    certificate
        .and_then(|certificate| certificate.to_der())
        .map_err(|error| AttestError::Unparsable {
            what: "certificate",
            reason: error.to_string(),
        })
}

/// SEV-SNP endorsements from the VCEK (DER or PEM) and AMD's PEM chain for the product,
/// in the order AMD's KDS serves it (`cert_chain`: the ASK, then the ARK).
pub fn sev_snp(vcek: &[u8], ask_then_ark_pem: &[u8]) -> Result<Vec<u8>, AttestError> {
    // x509-cert 0.2's `load_pem_chain` panics (a subtraction overflow) on a chain that is
    // empty once trailing newlines are cut, so that is refused before it (found by fuzzing).
    if ask_then_ark_pem
        .iter()
        .all(|byte| matches!(byte, b'\r' | b'\n'))
    {
        return Err(AttestError::Unparsable {
            what: "AMD certificate chain (PEM)",
            reason: "empty".into(),
        });
    }
    let chain =
        Certificate::load_pem_chain(ask_then_ark_pem).map_err(|error| AttestError::Unparsable {
            what: "AMD certificate chain (PEM)",
            reason: error.to_string(),
        })?;
    let [ask, ark] =
        <[Certificate; 2]>::try_from(chain).map_err(|chain| AttestError::Unparsable {
            what: "AMD certificate chain (PEM)",
            reason: format!(
                "{} certificates; expected the ASK then the ARK",
                chain.len()
            ),
        })?;
    let der = |certificate: Certificate| {
        certificate
            .to_der()
            .map_err(|_| AttestError::Malformed("AMD certificate"))
    };
    Ok(SevSnpEndorsements {
        vcek: certificate_der(vcek)?,
        ask: der(ask)?,
        ark: der(ark)?,
    }
    .encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VCEK: &[u8] = include_bytes!("../tests/data/sev-snp/vcek_milan.der");
    const CHAIN: &[u8] = include_bytes!("../tests/data/sev-snp/cert_chain_milan");

    #[test]
    fn an_empty_chain_is_refused_not_a_panic() {
        // The fuzzer's crash (fuzz target endorsement_files): an empty input.
        for chain in [&b""[..], b"\n", b"\r\n\r\n"] {
            assert!(
                matches!(
                    sev_snp(VCEK, chain),
                    Err(AttestError::Unparsable { reason, .. }) if reason == "empty"
                ),
                "{chain:?}"
            );
        }
        // The whole chain still makes endorsements of the three certificates.
        let endorsements =
            SevSnpEndorsements::decode(sev_snp(VCEK, CHAIN).unwrap().as_slice()).unwrap();
        assert_eq!(endorsements.vcek, certificate_der(VCEK).unwrap());
        assert!(!endorsements.ask.is_empty() && !endorsements.ark.is_empty());
    }
}
