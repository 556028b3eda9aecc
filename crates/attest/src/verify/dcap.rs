//! SGX and TDX quotes (Intel DCAP), verified by `dcap-qvl` against Intel's collateral.
//!
//! ```text
//!  quote ──framing (exact length)──▶ dcap-qvl: Intel root ─▶ PCK chain + CRLs ─▶ QE report
//!        ─▶ attestation key ─▶ quote signature; TCB info + QE identity (signed, dated)
//!        ──▶ TCB status + advisories, report body ──▶ Claims
//! ```
//!
//! The endorsements are the collateral as `dcap-qvl`'s `QuoteCollateralV3` JSON (what a
//! PCCS serves, gathered into one document). dcap-qvl's own debug check is off so that a
//! debug enclave reaches [`crate::Policy`] and is refused there with a precise error, like
//! every other kind's.

use cloister_proto::attest::EvidenceKind;
use dcap_qvl::QuoteCollateralV3;
use dcap_qvl::configs::RingConfig;
use dcap_qvl::quote::Report;
use dcap_qvl::verify::QuoteVerifier;

use crate::claims::{Claims, TcbStatus, Validity, derived_measurement, kind_name};
use crate::policy::Roots;
use crate::{AttestError, MEASUREMENT_BYTES};
use x509_cert::der::Encode;

const HEADER_BYTES: usize = 48;
const SGX_REPORT_BYTES: usize = 384;
const TD10_REPORT_BYTES: usize = 584;
const TEE_TYPE_SGX: u32 = 0x0000_0000;
const TEE_TYPE_TDX: u32 = 0x0000_0081;
/// SGX ATTRIBUTES.DEBUG (bit 1 of the first byte).
const SGX_ATTRIBUTE_DEBUG: u8 = 0x02;

/// Accepts every verified quote: Cloister applies its own [`crate::Policy`] to the claims.
struct ClaimsOnly;

impl dcap_qvl::Policy for ClaimsOnly {
    fn validate(&self, _claims: &dcap_qvl::QuoteClaims) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Verify an SGX (`kind` = SgxDcap) or TDX quote with its collateral at `now`.
pub(super) fn claims(
    kind: EvidenceKind,
    quote: &[u8],
    endorsements: &[u8],
    roots: &Roots,
    now: u64,
) -> Result<Claims, AttestError> {
    check_framing(kind, quote)?;
    if endorsements.is_empty() {
        return Err(AttestError::MissingEndorsements(
            kind_name(kind),
            "the DCAP collateral, as QuoteCollateralV3 JSON",
        ));
    }
    let collateral: QuoteCollateralV3 =
        serde_json::from_slice(endorsements).map_err(|error| AttestError::Unparsable {
            what: "DCAP collateral",
            reason: error.to_string(),
        })?;
    let verifier = match &roots.intel_root_ca {
        Some(der) => QuoteVerifier::new(der.clone()),
        None => QuoteVerifier::new_prod(),
    }
    .with_config::<RingConfig>()
    .allow_debug(true);
    let verified = verifier
        .verify_with_policy(quote, collateral, now, &ClaimsOnly)
        .map_err(|error| classify(&format!("{error:#}"), now))?;
    check_chain_ends_at_root(quote, &verified.platform.root_key_id)?;
    let validity = Validity {
        not_before_unix_secs: verified.latest_issue_date,
        not_after_unix_secs: verified.earliest_expiration_date,
    };
    let tcb_status = tcb_status(verified.tcb.status);
    let mut claims = body_claims(kind, &verified.report)?;
    claims.tcb_status = Some(tcb_status);
    claims.advisory_ids = verified.tcb.advisory_ids;
    claims.validity = validity;
    Ok(claims)
}

/// The claims a quote's report body makes (measurement, report data, debug, details,
/// attested values), for a quote of `kind`. Shared by [`claims`], after the signatures
/// check out, and by [`inspect`], which checks none.
fn body_claims(kind: EvidenceKind, report: &Report) -> Result<Claims, AttestError> {
    let claims = match report {
        Report::SgxEnclave(report) => {
            let mut details = vec![
                ("mr_enclave", hex::encode(report.mr_enclave)),
                ("mr_signer", hex::encode(report.mr_signer)),
                ("isv_prod_id", report.isv_prod_id.to_string()),
                ("isv_svn", report.isv_svn.to_string()),
                ("attributes", hex::encode(report.attributes)),
            ];
            details.push(("cpu_svn", hex::encode(report.cpu_svn)));
            let mut claims = base_claims(
                EvidenceKind::SgxDcap,
                report.mr_enclave,
                report.report_data.to_vec(),
                report.attributes[0] & SGX_ATTRIBUTE_DEBUG != 0,
                details,
            );
            claims.attested_values.insert(
                "sgx.isv_svn".to_owned(),
                report.isv_svn.to_be_bytes().to_vec(),
            );
            claims
        }
        other => {
            let report = other
                .as_td10()
                .ok_or(AttestError::Malformed("TDX report body"))?;
            let measurement = derived_measurement(
                "tdx",
                &[
                    &report.mr_td,
                    &report.rt_mr0,
                    &report.rt_mr1,
                    &report.rt_mr2,
                ],
            );
            let details = vec![
                ("mr_td", hex::encode(report.mr_td)),
                ("rtmr0", hex::encode(report.rt_mr0)),
                ("rtmr1", hex::encode(report.rt_mr1)),
                ("rtmr2", hex::encode(report.rt_mr2)),
                ("rtmr3", hex::encode(report.rt_mr3)),
                ("mr_config_id", hex::encode(report.mr_config_id)),
                ("mr_owner", hex::encode(report.mr_owner)),
                ("mr_seam", hex::encode(report.mr_seam)),
                ("td_attributes", hex::encode(report.td_attributes)),
                ("tee_tcb_svn", hex::encode(report.tee_tcb_svn)),
            ];
            // TUD, the first byte of TD attributes: any bit set means "TD under debug".
            let debug = report.td_attributes[0] != 0;
            let mut claims = base_claims(
                EvidenceKind::Tdx,
                measurement,
                report.report_data.to_vec(),
                debug,
                details,
            );
            for (index, svn) in report.tee_tcb_svn.iter().enumerate() {
                claims
                    .attested_values
                    .insert(format!("tdx.tee_tcb_svn.{index}"), vec![*svn]);
            }
            claims
        }
    };
    if claims.kind != kind {
        return Err(AttestError::KindMismatch {
            claimed: kind_name(kind),
            found: kind_name(claims.kind),
        });
    }
    Ok(claims)
}

/// The claims of a well-framed quote of `kind`, **without checking any signature**: see
/// [`crate::unverified`].
pub(crate) fn inspect(kind: EvidenceKind, quote: &[u8]) -> Result<Claims, AttestError> {
    check_framing(kind, quote)?;
    let parsed = dcap_qvl::quote::Quote::parse(quote).map_err(|error| AttestError::Unparsable {
        what: "DCAP quote",
        reason: format!("{error:#}"),
    })?;
    body_claims(kind, &parsed.report)
}

fn base_claims(
    kind: EvidenceKind,
    measurement: [u8; MEASUREMENT_BYTES],
    report_data: Vec<u8>,
    debug: bool,
    details: Vec<(&'static str, String)>,
) -> Claims {
    Claims {
        kind,
        measurement,
        report_data,
        tcb_status: None,
        advisory_ids: Vec::new(),
        snp_tcb: None,
        debug,
        issued_at_unix_secs: None,
        validity: Validity::ALWAYS,
        details,
        attested_values: Default::default(),
    }
}

fn tcb_status(status: dcap_qvl::TcbStatus) -> TcbStatus {
    use dcap_qvl::TcbStatus as Intel;
    match status {
        Intel::UpToDate => TcbStatus::UpToDate,
        Intel::SWHardeningNeeded => TcbStatus::SwHardeningNeeded,
        Intel::ConfigurationNeeded => TcbStatus::ConfigurationNeeded,
        Intel::ConfigurationAndSWHardeningNeeded => TcbStatus::ConfigurationAndSwHardeningNeeded,
        Intel::OutOfDate => TcbStatus::OutOfDate,
        Intel::OutOfDateConfigurationNeeded => TcbStatus::OutOfDateConfigurationNeeded,
        Intel::TDRelaunchAdvised => TcbStatus::TdRelaunchAdvised,
        Intel::TDRelaunchAdvisedConfigurationNeeded => {
            TcbStatus::TdRelaunchAdvisedConfigurationNeeded
        }
        Intel::Revoked => TcbStatus::Revoked,
    }
}

/// Check the quote's own framing before any parser sees it: the header's version and TEE
/// type, the body length, and the signature-data length must add up to the bytes given.
/// Bytes past the end are refused unless they are zero padding: no signature covers them.
fn check_framing(kind: EvidenceKind, quote: &[u8]) -> Result<(), AttestError> {
    let what = "DCAP quote";
    let truncated = |needed: usize| AttestError::Truncated {
        what,
        bytes: quote.len(),
        needed,
    };
    let read_u32 = |at: usize| -> Result<u32, AttestError> {
        let bytes = quote.get(at..at + 4).ok_or_else(|| truncated(at + 4))?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    };
    if quote.len() < HEADER_BYTES {
        return Err(truncated(HEADER_BYTES));
    }
    let version = u16::from_le_bytes([quote[0], quote[1]]);
    let tee_type = read_u32(4)?;
    let found = match tee_type {
        TEE_TYPE_SGX => EvidenceKind::SgxDcap,
        TEE_TYPE_TDX => EvidenceKind::Tdx,
        _ => {
            return Err(AttestError::Malformed(
                "DCAP quote header: unknown TEE type",
            ));
        }
    };
    if found != kind {
        return Err(AttestError::KindMismatch {
            claimed: kind_name(kind),
            found: kind_name(found),
        });
    }
    let body_end = match (version, found) {
        (3 | 4, EvidenceKind::SgxDcap) => HEADER_BYTES + SGX_REPORT_BYTES,
        (4, _) => HEADER_BYTES + TD10_REPORT_BYTES,
        // v5: a body descriptor (u16 type, u32 size) precedes the body.
        (5, _) => {
            let size = usize::try_from(read_u32(HEADER_BYTES + 2)?).unwrap_or(usize::MAX);
            (HEADER_BYTES + 6).saturating_add(size)
        }
        _ => return Err(AttestError::Malformed("DCAP quote header: unknown version")),
    };
    let signature_bytes = usize::try_from(read_u32(body_end)?).unwrap_or(usize::MAX);
    let total = (body_end + 4).saturating_add(signature_bytes);
    if quote.len() < total {
        return Err(truncated(total));
    }
    check_signature_data(&quote[body_end + 4..total], version)?;
    // Quote buffers from the platform may come zero-padded (Intel's TDX sample is); any
    // other byte after the end is refused.
    let padding = &quote[total..];
    if padding.iter().any(|byte| *byte != 0) {
        return Err(AttestError::TrailingBytes {
            what,
            extra: padding.len(),
        });
    }
    Ok(())
}

/// Inside the signature data, every length must account for its bytes exactly: the
/// certification data is not signed by the quote (the certificates authenticate themselves),
/// so bytes that no length covers would pass unchecked.
fn check_signature_data(data: &[u8], version: u16) -> Result<(), AttestError> {
    fn take<'a>(bytes: &mut &'a [u8], count: usize) -> Option<&'a [u8]> {
        let (taken, rest) = bytes.split_at_checked(count)?;
        *bytes = rest;
        Some(taken)
    }
    fn sized<'a>(bytes: &mut &'a [u8], width: usize) -> Option<&'a [u8]> {
        let mut length = [0u8; 8];
        length[..width].copy_from_slice(take(bytes, width)?);
        take(bytes, usize::try_from(u64::from_le_bytes(length)).ok()?)
    }
    /// QE report, its signature, QE authentication data, certification data.
    fn qe_part(bytes: &mut &[u8]) -> Option<()> {
        take(bytes, SGX_REPORT_BYTES + 64)?;
        sized(bytes, 2)?;
        take(bytes, 2)?;
        sized(bytes, 4)?;
        Some(())
    }
    let walk = || -> Option<()> {
        let mut rest = data;
        // The ECDSA signature over the quote and the attestation key.
        take(&mut rest, 64 + 64)?;
        if version == 3 {
            qe_part(&mut rest)?;
        } else {
            // v4 and v5: certification data of type 6 (QE report certification data)
            // wrapping the QE part.
            (take(&mut rest, 2)? == [6, 0]).then_some(())?;
            let mut inner = sized(&mut rest, 4)?;
            qe_part(&mut inner)?;
            inner.is_empty().then_some(())?;
        }
        rest.is_empty().then_some(())
    };
    walk().ok_or(AttestError::Malformed(
        "DCAP quote: the signature data's lengths do not add up",
    ))
}

/// The PCK chain a quote carries (certification data type 5) must be whole and end at the
/// trusted root, self-signed. dcap-qvl builds the path to its trust anchor and ignores the
/// chain's own copy of the root, so a damaged copy would otherwise go unnoticed.
fn check_chain_ends_at_root(quote: &[u8], root_key_id: &[u8]) -> Result<(), AttestError> {
    let parsed = dcap_qvl::quote::Quote::parse(quote).map_err(|error| AttestError::Unparsable {
        what: "DCAP quote",
        reason: error.to_string(),
    })?;
    let Ok(pem) = parsed.raw_cert_chain() else {
        // Another certification data type: the chain came with the collateral.
        return Ok(());
    };
    let pem = pem.strip_suffix(b"\0").unwrap_or(pem);
    let refuse =
        |reason: String| AttestError::CertificateChain(format!("the quote's PCK chain {reason}"));
    let chain = x509_cert::Certificate::load_pem_chain(pem)
        .map_err(|error| refuse(format!("does not parse: {error}")))?;
    let root = chain.last().ok_or_else(|| refuse("is empty".into()))?;
    let key = root
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    if ring::digest::digest(&ring::digest::SHA384, key).as_ref() != root_key_id {
        return Err(refuse("does not end at the trusted root".into()));
    }
    // The trusted key signed this copy of the root: no byte of it can change.
    super::x509::check_unsigned_fields("Intel root", root)?;
    let signed = root
        .tbs_certificate
        .to_der()
        .map_err(|_| refuse("holds a root that does not re-encode".into()))?;
    let signature = root.signature.as_bytes().unwrap_or_default();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, key)
        .verify(&signed, signature)
        .map_err(|_| AttestError::BadSignature("the Intel root's self-signature".into()))
}

/// Map dcap-qvl's error text (it returns `anyhow` chains) to the precise refusal.
fn classify(text: &str, now: u64) -> AttestError {
    let lower = text.to_ascii_lowercase();
    let has = |needle: &str| lower.contains(needle);
    if has("debug mode is enabled") || has("td profiling is enabled") {
        AttestError::DebugEnclave
    } else if has("tcb status is invalid: revoked") {
        AttestError::TcbRevoked
    } else if has("no matching tcb level") || has("below minimum required") {
        AttestError::NoMatchingTcbLevel(text.to_owned())
    } else if has("expired") || has("notvalidyet") || has("issue date is in the future") {
        AttestError::OutsideValidityWindow {
            now,
            reason: text.to_owned(),
        }
    } else if has("revoked") {
        AttestError::CertificateChain(text.to_owned())
    } else if has("signature is invalid") {
        AttestError::BadSignature(text.to_owned())
    } else if has("certificate chain") || has("root ca") || has("unknownissuer") || has("crl") {
        AttestError::CertificateChain(text.to_owned())
    } else if has("failed to decode quote") {
        AttestError::Unparsable {
            what: "DCAP quote",
            reason: text.to_owned(),
        }
    } else {
        AttestError::PlatformRefused(text.to_owned())
    }
}
