//! Endorsements from operator-supplied files, read again on every attestation so that a job
//! can refresh them (DCAP collateral expires within weeks) without restarting the node.
//!
//! ```text
//!  SGX, TDX: the file is the DCAP collateral, dcap-qvl's QuoteCollateralV3 JSON (as a PCCS
//!            serves it, gathered into one document); required
//!  SEV-SNP:  the file is PEM: the VCEK, then AMD's cert_chain (ASK, then ARK); used only when
//!            the kernel gives no certificate table
//! ```

use std::path::{Path, PathBuf};

use cloister_attest::ENDORSEMENTS_BYTES_MAX;
use cloister_enclave::PlatformError;

use crate::device::read_bounded;

/// Where a backend's endorsements file is, if the operator gave one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EndorsementsFile(pub(crate) Option<PathBuf>);

impl EndorsementsFile {
    /// The DCAP collateral for `name` (`sgx-dcap` or `tdx`): required.
    pub(crate) fn dcap_collateral(&self, name: &str) -> Result<Vec<u8>, PlatformError> {
        let path = self.0.as_deref().ok_or_else(|| {
            PlatformError(format!(
                "{name} needs its DCAP collateral (QuoteCollateralV3 JSON) for verifiers: \
                 no endorsements file is configured"
            ))
        })?;
        let bytes = read(path, name)?;
        if bytes.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
            return Err(PlatformError(format!(
                "{name} endorsements file {}: not DCAP collateral JSON (a JSON object)",
                path.display()
            )));
        }
        Ok(bytes)
    }

    /// SEV-SNP endorsements (a `SevSnpEndorsements` message) from the PEM file, if one is
    /// configured.
    pub(crate) fn sev_snp(&self) -> Result<Option<Vec<u8>>, PlatformError> {
        let Some(path) = self.0.as_deref() else {
            return Ok(None);
        };
        let pem = read(path, "sev-snp")?;
        let refuse = |reason: String| {
            PlatformError(format!(
                "sev-snp endorsements file {}: {reason}; expected PEM: the VCEK, then the ASK, \
                 then the ARK",
                path.display()
            ))
        };
        let end = b"-----END CERTIFICATE-----";
        let vcek_end = pem
            .windows(end.len())
            .position(|window| window == end)
            .map(|at| at + end.len())
            .ok_or_else(|| refuse("no PEM certificate".into()))?;
        let (vcek, chain) = pem.split_at(vcek_end);
        cloister_attest::endorsements::sev_snp(vcek, chain)
            .map(Some)
            .map_err(|error| refuse(error.to_string()))
    }
}

fn read(path: &Path, name: &str) -> Result<Vec<u8>, PlatformError> {
    let bytes = read_bounded(path, ENDORSEMENTS_BYTES_MAX).map_err(|error| {
        PlatformError(format!(
            "{name} endorsements file {}: {error}",
            path.display()
        ))
    })?;
    if bytes.is_empty() {
        return Err(PlatformError(format!(
            "{name} endorsements file {} is empty",
            path.display()
        )));
    }
    Ok(bytes)
}
