//! Intel TDX and AMD SEV-SNP guests: Linux's configfs-tsm report interface
//! (Documentation/ABI/testing/configfs-tsm).
//!
//! ```text
//!  mkdir <root>/cloister-<pid>-<n>        a report entry of our own
//!    provider    must read tdx_guest or sev_guest (the configured backend's)
//!    generation  read before the request ...
//!    inblob      ◀── the 64 bytes of report data
//!    outblob     ──▶ the TDX quote / the SEV-SNP report
//!    auxblob     ──▶ (sev_guest) the host's certificate table, when it has one
//!    generation  ... and after: exactly one write (ours) between, or another writer raced
//!  rmdir the entry (on error too)
//! ```
//!
//! The ABI lets writers detect a conflict through `generation`; an entry of our own makes
//! one unlikely, and a conflict is retried a bounded number of times.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cloister_enclave::PlatformError;
use cloister_proto::attest::EvidenceKind;

use crate::cert_table::sev_snp_endorsements_from_cert_table;
use crate::device::{DeviceFs, read_text};
use crate::endorsements::EndorsementsFile;
use crate::env::{Produced, Producer};

/// Where configfs-tsm's report interface lives.
pub const DEFAULT_ROOT: &str = "/sys/kernel/config/tsm/report";
/// `inblob` takes up to 64 bytes (TSM_INBLOB_MAX); TDX and SEV-SNP sign exactly 64.
const INBLOB_BYTES: usize = 64;
/// The kernel's bound on `outblob` and `auxblob` (TSM_OUTBLOB_MAX).
pub const BLOB_BYTES_MAX: usize = 32 * 1024;
/// Bound on the short text attributes.
const TEXT_BYTES_MAX: usize = 64;
/// Tries at a request whose `generation` shows another writer.
const REQUEST_TRIES_MAX: u32 = 3;
/// Tries at a fresh entry name (one may be left over from a process that crashed).
const ENTRY_TRIES_MAX: u32 = 8;

/// Which guest the configfs-tsm provider must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsmProvider {
    /// An Intel TDX guest (`tdx_guest`).
    Tdx,
    /// An AMD SEV-SNP guest (`sev_guest`).
    SevSnp,
}

impl TsmProvider {
    /// The kernel's `provider` name.
    pub fn provider_name(self) -> &'static str {
        match self {
            TsmProvider::Tdx => "tdx_guest",
            TsmProvider::SevSnp => "sev_guest",
        }
    }

    fn kind(self) -> EvidenceKind {
        match self {
            TsmProvider::Tdx => EvidenceKind::Tdx,
            TsmProvider::SevSnp => EvidenceKind::SevSnp,
        }
    }
}

/// Reports from configfs-tsm.
pub struct Tsm {
    fs: Box<dyn DeviceFs>,
    root: PathBuf,
    provider: TsmProvider,
    endorsements: EndorsementsFile,
}

/// What one request gave.
struct Blobs {
    outblob: Vec<u8>,
    auxblob: Option<Vec<u8>>,
}

impl Tsm {
    /// configfs-tsm at `root` (normally [`DEFAULT_ROOT`]) through `fs`, which must be
    /// provided by `provider`. `endorsements`: the DCAP collateral file for TDX (required);
    /// for SEV-SNP, a PEM file (VCEK, ASK, ARK) used when the kernel gives no certificates.
    pub fn new(
        fs: Box<dyn DeviceFs>,
        root: PathBuf,
        provider: TsmProvider,
        endorsements: Option<PathBuf>,
    ) -> Self {
        Self {
            fs,
            root,
            provider,
            endorsements: EndorsementsFile(endorsements),
        }
    }

    fn error(&self, reason: impl std::fmt::Display) -> PlatformError {
        PlatformError(format!("configfs-tsm at {}: {reason}", self.root.display()))
    }

    /// A fresh report entry of our own.
    fn create_entry(&mut self) -> Result<PathBuf, PlatformError> {
        static NEXT_ENTRY: AtomicU64 = AtomicU64::new(0);
        for _ in 0..ENTRY_TRIES_MAX {
            let number = NEXT_ENTRY.fetch_add(1, Ordering::Relaxed);
            let entry = self
                .root
                .join(format!("cloister-{}-{number}", std::process::id()));
            match self.fs.create_dir(&entry) {
                Ok(()) => return Ok(entry),
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    return Err(PlatformError(format!(
                        "configfs-tsm not found at {}: {error} (not a TDX or SEV-SNP guest, \
                         or a kernel without CONFIG_TSM_REPORTS and configfs mounted?)",
                        self.root.display()
                    )));
                }
                Err(error) => {
                    return Err(self.error(format!("cannot create a report entry: {error}")));
                }
            }
        }
        Err(self.error(format!(
            "{ENTRY_TRIES_MAX} report entry names in a row already exist"
        )))
    }

    fn generation(&mut self, entry: &Path) -> Result<u64, PlatformError> {
        let text = read_text(&mut *self.fs, &entry.join("generation"), TEXT_BYTES_MAX)
            .map_err(|error| self.error(format!("generation: {error}")))?;
        text.parse()
            .map_err(|_| self.error(format!("generation {text:?} is not a number")))
    }

    /// The request in `entry`, retried while `generation` shows another writer.
    fn request(&mut self, entry: &Path, report_data: &[u8]) -> Result<Blobs, PlatformError> {
        let expected = self.provider.provider_name();
        let provider = read_text(&mut *self.fs, &entry.join("provider"), TEXT_BYTES_MAX)
            .map_err(|error| self.error(format!("provider: {error}")))?;
        if provider != expected {
            return Err(self.error(format!(
                "the provider is {provider:?}, not {expected:?}: this machine is not the \
                 configured {} guest",
                cloister_attest::kind_name(self.provider.kind())
            )));
        }
        let mut generations = Vec::new();
        for _ in 0..REQUEST_TRIES_MAX {
            let before = self.generation(entry)?;
            self.fs
                .write(&entry.join("inblob"), report_data)
                .map_err(|error| self.error(format!("inblob: {error}")))?;
            let outblob = self.read_blob(entry, "outblob")?;
            let outblob = outblob.ok_or_else(|| self.error("outblob: missing"))?;
            let auxblob = match self.provider {
                TsmProvider::Tdx => None,
                TsmProvider::SevSnp => self.read_blob(entry, "auxblob")?,
            };
            let after = self.generation(entry)?;
            if before.checked_add(1) == Some(after) {
                return Ok(Blobs { outblob, auxblob });
            }
            generations.push(format!("{before} to {after}"));
        }
        Err(self.error(format!(
            "another writer changed the report entry during each of {REQUEST_TRIES_MAX} \
             requests (generation went {})",
            generations.join(", ")
        )))
    }

    /// A blob, bounded; `None` when absent or empty (an `auxblob` the provider did not fill).
    fn read_blob(&mut self, entry: &Path, name: &str) -> Result<Option<Vec<u8>>, PlatformError> {
        match self.fs.read(&entry.join(name), BLOB_BYTES_MAX) {
            Ok(bytes) if bytes.is_empty() => Ok(None),
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(self.error(format!("{name}: {error}"))),
        }
    }

    fn endorsements(&self, auxblob: Option<Vec<u8>>) -> Result<Vec<u8>, PlatformError> {
        match (self.provider, auxblob) {
            (TsmProvider::Tdx, _) => self.endorsements.dcap_collateral("tdx"),
            (TsmProvider::SevSnp, Some(table)) => sev_snp_endorsements_from_cert_table(&table),
            (TsmProvider::SevSnp, None) => self.endorsements.sev_snp()?.ok_or_else(|| {
                PlatformError(
                    "sev-snp needs the VCEK, ASK and ARK for verifiers: the host gave no \
                     certificate table (auxblob) and no endorsements file is configured"
                        .into(),
                )
            }),
        }
    }
}

impl Producer for Tsm {
    fn kind(&self) -> EvidenceKind {
        self.provider.kind()
    }

    fn produce(&mut self, report_data: &[u8]) -> Result<Produced, PlatformError> {
        if report_data.len() != INBLOB_BYTES {
            return Err(self.error(format!(
                "report data must be {INBLOB_BYTES} bytes, not {}",
                report_data.len()
            )));
        }
        let entry = self.create_entry()?;
        let result = self.request(&entry, report_data);
        let removed = self.fs.remove_dir(&entry);
        let blobs = result?;
        removed.map_err(|error| {
            self.error(format!(
                "cannot remove report entry {}: {error}",
                entry.display()
            ))
        })?;
        Ok(Produced {
            report: blobs.outblob,
            endorsements: self.endorsements(blobs.auxblob)?,
        })
    }
}
