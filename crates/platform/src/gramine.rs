//! Intel SGX under Gramine: its `/dev/attestation` pseudo-filesystem.
//!
//! ```text
//!  /dev/attestation/attestation_type  must read "dcap" (not "none" or "epid")
//!  /dev/attestation/user_report_data  ◀── the 64 bytes of report data
//!  /dev/attestation/quote             ──▶ an SGX ECDSA (DCAP) quote over them
//! ```
//!
//! Gramine's quote carries the PCK certificate chain; the rest of the collateral comes from
//! the operator's endorsements file.

use std::path::PathBuf;

use cloister_attest::EVIDENCE_BYTES_MAX;
use cloister_enclave::PlatformError;
use cloister_proto::attest::EvidenceKind;

use crate::device::{DeviceFs, read_text};
use crate::endorsements::EndorsementsFile;
use crate::env::{Produced, Producer};

/// Where Gramine mounts its attestation interface.
pub const DEFAULT_ROOT: &str = "/dev/attestation";
/// SGX REPORTDATA is 64 bytes.
const USER_REPORT_DATA_BYTES: usize = 64;
/// Bound on the short text attributes.
const TEXT_BYTES_MAX: usize = 64;

/// SGX quotes from Gramine's `/dev/attestation`.
pub struct Gramine {
    fs: Box<dyn DeviceFs>,
    root: PathBuf,
    endorsements: EndorsementsFile,
}

impl Gramine {
    /// Gramine's interface at `root` (normally [`DEFAULT_ROOT`]), reached through `fs`, with
    /// the DCAP collateral in the file `endorsements` (required).
    pub fn new(fs: Box<dyn DeviceFs>, root: PathBuf, endorsements: Option<PathBuf>) -> Self {
        Self {
            fs,
            root,
            endorsements: EndorsementsFile(endorsements),
        }
    }

    fn refuse(&self, what: &str, error: impl std::fmt::Display) -> PlatformError {
        PlatformError(format!(
            "Gramine attestation ({}) {what}: {error}",
            self.root.display()
        ))
    }
}

impl Producer for Gramine {
    fn kind(&self) -> EvidenceKind {
        EvidenceKind::SgxDcap
    }

    fn produce(&mut self, report_data: &[u8]) -> Result<Produced, PlatformError> {
        if report_data.len() != USER_REPORT_DATA_BYTES {
            return Err(self.refuse(
                "refused the request",
                format!(
                    "report data must be {USER_REPORT_DATA_BYTES} bytes, not {}",
                    report_data.len()
                ),
            ));
        }
        let kind_path = self.root.join("attestation_type");
        let attestation_type = read_text(&mut *self.fs, &kind_path, TEXT_BYTES_MAX)
            .map_err(|error| self.refuse("not found (not running under Gramine?)", error))?;
        if attestation_type != "dcap" {
            return Err(self.refuse(
                "is not DCAP",
                format!(
                    "attestation_type is {attestation_type:?}; Cloister needs \"dcap\" \
                     (sgx.remote_attestation = \"dcap\" in the Gramine manifest)"
                ),
            ));
        }
        self.fs
            .write(&self.root.join("user_report_data"), report_data)
            .map_err(|error| self.refuse("refused user_report_data", error))?;
        let quote = self
            .fs
            .read(&self.root.join("quote"), EVIDENCE_BYTES_MAX)
            .map_err(|error| self.refuse("gave no quote", error))?;
        let endorsements = self.endorsements.dcap_collateral("sgx-dcap")?;
        Ok(Produced {
            report: quote,
            endorsements,
        })
    }
}
