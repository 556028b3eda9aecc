//! Reading a platform report **without verifying it**, for the producer of that report.
//!
//! # This proves nothing
//!
//! [`inspect`] checks no signature, no certificate chain, no validity window, no TCB and no
//! policy. Anyone can write bytes that [`inspect`] reads as any measurement and any report
//! data. Never use it to decide whether to trust evidence: that is [`crate::verify`]'s job.
//!
//! It exists for the side that *makes* evidence, inside the TEE: a producer that just asked
//! its own platform for a report uses it to learn its own measurement, and to check that
//! the platform bound the report data it asked for, before handing the report to anyone.
//!
//! ```text
//!  platform device ──report──▶ inspect(kind, report) ──▶ Inspected{measurement, report_data}
//!                              (framing and parsing only; the verifiers' own parsers, so the
//!                               measurement is derived exactly as verification derives it)
//! ```

use cloister_proto::attest::EvidenceKind;

use crate::claims::kind_name;
use crate::verify::{dcap, nitro, sev_snp};
use crate::{AttestError, EVIDENCE_BYTES_MAX, MEASUREMENT_BYTES, sim};

/// What a report says about itself, **unverified**: see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    /// The measurement as the verifiers derive it (MRENCLAVE for SGX; derived from MRTD and
    /// RTMR0-2 for TDX, the launch measurement for SEV-SNP, PCR0-2 for Nitro).
    pub measurement: [u8; MEASUREMENT_BYTES],
    /// The report data the report carries (64 bytes for SGX, TDX and SEV-SNP; the
    /// document's `user_data` for Nitro, empty when absent; 32 bytes for sim).
    pub report_data: Vec<u8>,
}

/// Parse a raw platform report of `kind` and read its measurement and report data,
/// **checking no signature at all**: the result proves nothing (see the [module docs](self)).
///
/// The report must be framed as the verifier requires (exact length, CBOR that ends where
/// the document ends) and at most [`EVIDENCE_BYTES_MAX`] bytes. Sim reports are read after
/// their (public, forgeable) signature checks, as the sim verifier does.
pub fn inspect(kind: EvidenceKind, report: &[u8]) -> Result<Inspected, AttestError> {
    if report.len() > EVIDENCE_BYTES_MAX {
        return Err(AttestError::EvidenceTooLarge(report.len()));
    }
    let (measurement, report_data) = match kind {
        EvidenceKind::SgxDcap | EvidenceKind::Tdx => {
            let claims = dcap::inspect(kind, report)?;
            (claims.measurement, claims.report_data)
        }
        EvidenceKind::SevSnp => sev_snp::inspect(report)?,
        EvidenceKind::Nitro => nitro::inspect(report)?,
        EvidenceKind::Sim => {
            let claims = sim::claims(report, &[])?;
            (claims.measurement, claims.report_data)
        }
        EvidenceKind::Unspecified => {
            return Err(AttestError::UnsupportedKind(kind_name(kind).to_owned()));
        }
    };
    Ok(Inspected {
        measurement,
        report_data,
    })
}

#[cfg(test)]
mod tests {
    use cloister_proto::attest::{AttestationData, GroupConfig};
    use prost::Message;

    use super::*;

    #[test]
    fn a_sim_report_reads_as_its_measurement_and_hash() {
        let data = AttestationData {
            public_key: vec![3; 32],
            group_config: Some(GroupConfig {
                simulated: true,
                ..Default::default()
            }),
            minimum_limits: None,
        };
        let evidence = sim::attest(&data, 1_700_000_000);
        let inspected = inspect(EvidenceKind::Sim, &evidence.report).unwrap();
        assert_eq!(inspected.measurement, sim::measurement());
        assert_eq!(
            inspected.report_data,
            crate::report_data_for(EvidenceKind::Sim, &data.encode_to_vec())
        );
    }

    #[test]
    fn oversized_and_unspecified_are_refused_before_parsing() {
        let huge = vec![0; EVIDENCE_BYTES_MAX + 1];
        for kind in [EvidenceKind::SgxDcap, EvidenceKind::Nitro] {
            assert_eq!(
                inspect(kind, &huge),
                Err(AttestError::EvidenceTooLarge(EVIDENCE_BYTES_MAX + 1))
            );
        }
        assert_eq!(
            inspect(EvidenceKind::Unspecified, b"report"),
            Err(AttestError::UnsupportedKind("unspecified".into()))
        );
    }
}
