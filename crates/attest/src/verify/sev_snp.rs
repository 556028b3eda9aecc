//! AMD SEV-SNP attestation reports, verified with the `sev` crate's chain checks.
//!
//! ```text
//!  ARK (trusted AMD root key) ─RSA-PSS─▶ ASK ─RSA-PSS─▶ VCEK (for this chip and TCB)
//!  VCEK ─ECDSA P-384─▶ report bytes 0x000..0x2A0 ──▶ measurement, report data, policy, TCB
//! ```
//!
//! The endorsements are a `SevSnpEndorsements` protobuf (VCEK, ASK and ARK, DER). The report
//! signature is checked over the raw report bytes here, not over `sev`'s re-encoding of the
//! parsed report: the re-encoding writes reserved fields as zero, so a flipped reserved
//! byte would still verify. The VCEK must also be the one for this chip (hwID) and for the
//! report's reported TCB (its SPL extensions), as AMD's KDS issues it.

use cloister_proto::attest::{EvidenceKind, SevSnpEndorsements};
use prost::Message;
use sev::certs::snp::{Verifiable, ca};
use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;
use x509_cert::Certificate;
use x509_cert::der::Decode;
use x509_cert::der::asn1::ObjectIdentifier;

use super::x509;
use crate::AttestError;
use crate::claims::{Claims, SnpTcb, Validity, derived_measurement};
use crate::policy::Roots;

const WHAT: &str = "SEV-SNP report";
/// An SEV-SNP attestation report is exactly this long.
pub(crate) const REPORT_BYTES: usize = 1184;
/// The signature covers bytes 0x000 to 0x29F.
pub(crate) const SIGNED_BYTES: usize = 0x2A0;
/// The signature's r and s: 72 little-endian bytes each, of which P-384 uses 48.
const SCALAR_FIELD_BYTES: usize = 72;
const SCALAR_BYTES: usize = 48;
/// SIGNATURE_ALGO 1: ECDSA P-384 with SHA-384.
const ECDSA_P384_SHA384: u32 = 1;

/// AMD's VCEK extensions (VCEK certificate and KDS interface specification, table 8).
const BOOTLOADER_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
const TEE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
const SNP_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
const MICROCODE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
const FMC_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.9");
const HARDWARE_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");

/// Verify a raw SEV-SNP report with its endorsements at `now`.
pub(super) fn claims(
    report: &[u8],
    endorsements: &[u8],
    roots: &Roots,
    now: u64,
) -> Result<Claims, AttestError> {
    check_length(report)?;
    if endorsements.is_empty() {
        return Err(AttestError::MissingEndorsements(
            "sev-snp",
            "a SevSnpEndorsements message with the VCEK, ASK and ARK",
        ));
    }
    let certificates = SevSnpEndorsements::decode(endorsements)
        .map_err(|_| AttestError::Malformed("SEV-SNP endorsements"))?;
    let vcek = check_chain(&certificates, roots)?;
    let validity = ["ARK", "ASK", "VCEK"]
        .into_iter()
        .zip([&certificates.ark, &certificates.ask, &certificates.vcek])
        .try_fold(Validity::ALWAYS, |window, (name, der)| {
            let certificate = x509::parse("SEV-SNP certificate", der)?;
            x509::check_unsigned_fields(name, &certificate)?;
            Ok::<_, AttestError>(window.intersect(x509::check_validity(name, &certificate, now)?))
        })?;
    check_signature(report, &vcek)?;
    let parsed = parse(report)?;
    let tcb = SnpTcb {
        bootloader: parsed.reported_tcb.bootloader,
        tee: parsed.reported_tcb.tee,
        snp: parsed.reported_tcb.snp,
        microcode: parsed.reported_tcb.microcode,
        fmc: parsed.reported_tcb.fmc,
    };
    check_vcek_matches(&vcek, &tcb, &parsed.chip_id)?;
    let policy_bits = u64::from(parsed.policy);
    let mut attested_values: std::collections::BTreeMap<String, Vec<u8>> = [
        ("snp.bootloader", vec![tcb.bootloader]),
        ("snp.tee", vec![tcb.tee]),
        ("snp.snp", vec![tcb.snp]),
        ("snp.microcode", vec![tcb.microcode]),
        ("snp.guest_svn", parsed.guest_svn.to_be_bytes().to_vec()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    if let Some(fmc) = tcb.fmc {
        attested_values.insert("snp.fmc".to_owned(), vec![fmc]);
    }
    Ok(Claims {
        kind: EvidenceKind::SevSnp,
        measurement: measurement(&parsed),
        report_data: parsed.report_data.to_vec(),
        tcb_status: None,
        advisory_ids: Vec::new(),
        snp_tcb: Some(tcb),
        debug: parsed.policy.debug_allowed(),
        issued_at_unix_secs: None,
        validity,
        details: vec![
            ("launch_measurement", hex::encode(parsed.measurement)),
            ("guest_policy", format!("{policy_bits:#x}")),
            ("vmpl", parsed.vmpl.to_string()),
            ("guest_svn", parsed.guest_svn.to_string()),
            ("host_data", hex::encode(parsed.host_data)),
            ("id_key_digest", hex::encode(parsed.id_key_digest)),
            ("chip_id", hex::encode(parsed.chip_id)),
        ],
        attested_values,
    })
}

/// A report must be exactly [`REPORT_BYTES`] long.
fn check_length(report: &[u8]) -> Result<(), AttestError> {
    if report.len() < REPORT_BYTES {
        return Err(AttestError::Truncated {
            what: WHAT,
            bytes: report.len(),
            needed: REPORT_BYTES,
        });
    }
    if report.len() > REPORT_BYTES {
        return Err(AttestError::TrailingBytes {
            what: WHAT,
            extra: report.len() - REPORT_BYTES,
        });
    }
    Ok(())
}

fn parse(report: &[u8]) -> Result<AttestationReport, AttestError> {
    AttestationReport::from_bytes(report).map_err(|error| AttestError::Unparsable {
        what: WHAT,
        reason: error.to_string(),
    })
}

/// The 32-byte measurement: derived from the 48-byte launch MEASUREMENT.
fn measurement(parsed: &AttestationReport) -> [u8; crate::MEASUREMENT_BYTES] {
    derived_measurement("sev-snp", &[&parsed.measurement])
}

/// The measurement and report data of a report of the right length, **without checking
/// its signature**: see [`crate::unverified`].
pub(crate) fn inspect(
    report: &[u8],
) -> Result<([u8; crate::MEASUREMENT_BYTES], Vec<u8>), AttestError> {
    check_length(report)?;
    let parsed = parse(report)?;
    Ok((measurement(&parsed), parsed.report_data.to_vec()))
}

/// The ARK must be a trusted AMD root key; ARK signs itself and the ASK; the ASK signs the
/// VCEK (`sev` checks the RSA-PSS signatures). Returns the VCEK.
fn check_chain(
    certificates: &SevSnpEndorsements,
    roots: &Roots,
) -> Result<Certificate, AttestError> {
    let ark = x509::parse("ARK certificate", &certificates.ark)?;
    let ark_key = x509::public_key_info(&ark)?;
    if !trusted_root_keys(roots)?.contains(&ark_key) {
        return Err(AttestError::CertificateChain(
            "the ARK is not a trusted AMD root key".into(),
        ));
    }
    let parse = |what: &'static str, der: &[u8]| {
        sev::certs::snp::Certificate::from_der(der).map_err(|error| AttestError::Unparsable {
            what,
            reason: error.to_string(),
        })
    };
    let chain = sev::certs::snp::Chain {
        ca: ca::Chain {
            ark: parse("ARK certificate", &certificates.ark)?,
            ask: parse("ASK certificate", &certificates.ask)?,
        },
        vek: parse("VCEK certificate", &certificates.vcek)?,
    };
    (&chain)
        .verify()
        .map_err(|error| AttestError::CertificateChain(format!("ARK, ASK, VCEK: {error}")))?;
    x509::parse("VCEK certificate", &certificates.vcek)
}

/// The public keys (SPKI DER) of the ARKs the policy trusts.
fn trusted_root_keys(roots: &Roots) -> Result<Vec<Vec<u8>>, AttestError> {
    match &roots.amd_root_keys {
        Some(ders) => ders
            .iter()
            .map(|der| x509::public_key_info(&x509::parse("trusted ARK", der)?))
            .collect(),
        None => {
            use sev::certs::snp::builtin::{genoa, milan, turin};
            [milan::ark(), genoa::ark(), turin::ark()]
                .into_iter()
                .map(|ark| {
                    let ark = ark.map_err(|_| AttestError::Malformed("built-in AMD ARK"))?;
                    x509::public_key_info(&Certificate::from(ark))
                })
                .collect()
        }
    }
}

/// The VCEK's ECDSA P-384 signature over the report's first 0x2A0 bytes, as they are.
fn check_signature(report: &[u8], vcek: &Certificate) -> Result<(), AttestError> {
    let algorithm = u32::from_le_bytes([report[0x34], report[0x35], report[0x36], report[0x37]]);
    if algorithm != ECDSA_P384_SHA384 {
        return Err(AttestError::Malformed(
            "SEV-SNP report: signature algorithm is not ECDSA P-384 / SHA-384",
        ));
    }
    let signature = &report[SIGNED_BYTES..];
    let (r_field, rest) = signature.split_at(SCALAR_FIELD_BYTES);
    let (s_field, reserved) = rest.split_at(SCALAR_FIELD_BYTES);
    // Unused high bytes and the reserved tail: zero, so no byte of the report goes unchecked.
    let padding = r_field[SCALAR_BYTES..]
        .iter()
        .chain(&s_field[SCALAR_BYTES..])
        .chain(reserved);
    if padding.into_iter().any(|byte| *byte != 0) {
        return Err(AttestError::Malformed(
            "SEV-SNP report: signature padding is not zero",
        ));
    }
    let big_endian =
        |field: &[u8]| -> Vec<u8> { field[..SCALAR_BYTES].iter().rev().copied().collect() };
    let mut signature = big_endian(r_field);
    signature.extend(big_endian(s_field));
    x509::verify_p384_fixed(vcek, &report[..SIGNED_BYTES], &signature).map_err(|()| {
        AttestError::BadSignature("the VCEK's signature over the SEV-SNP report".into())
    })
}

/// The VCEK must be the one AMD issued for this chip and this reported TCB.
fn check_vcek_matches(
    vcek: &Certificate,
    tcb: &SnpTcb,
    chip_id: &[u8; 64],
) -> Result<(), AttestError> {
    let extension = |oid: ObjectIdentifier| {
        vcek.tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|extension| extension.extn_id == oid)
            .map(|extension| extension.extn_value.as_bytes())
    };
    let spl = |oid: ObjectIdentifier| -> Result<Option<u8>, AttestError> {
        extension(oid)
            .map(|der| u8::from_der(der).map_err(|_| AttestError::Malformed("VCEK TCB extension")))
            .transpose()
    };
    let certified = SnpTcb {
        bootloader: spl(BOOTLOADER_SPL)?.unwrap_or(0),
        tee: spl(TEE_SPL)?.unwrap_or(0),
        snp: spl(SNP_SPL)?.unwrap_or(0),
        microcode: spl(MICROCODE_SPL)?.unwrap_or(0),
        fmc: spl(FMC_SPL)?,
    };
    if certified != *tcb {
        return Err(AttestError::CertificateChain(format!(
            "the VCEK is for TCB ({certified}), the report's reported TCB is ({tcb})"
        )));
    }
    // Milan and Genoa VCEKs carry the 64-byte chip id; Turin's carry its first 8 bytes.
    let hardware_id = extension(HARDWARE_ID).unwrap_or_default();
    if hardware_id.is_empty() || chip_id.get(..hardware_id.len()) != Some(hardware_id) {
        return Err(AttestError::CertificateChain(
            "the VCEK belongs to another chip (hwID differs from the report's chip id)".into(),
        ));
    }
    Ok(())
}
