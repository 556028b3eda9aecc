//! What a platform's evidence says once its signatures check out: the claims.
//!
//! Every backend reduces its own report to one [`Claims`] value, so the policy and the
//! report-data binding are checked the same way for all of them:
//!
//! ```text
//!  SGX quote ─┐                         ┌─ measurement (32 bytes, the enclave id)
//!  TDX quote ─┤ platform signature,     ├─ report data (what the platform signed for us)
//!  SNP report ┼ chain to a trusted root ┼─ TCB status and advisories / reported TCB
//!  Nitro doc ─┤ ──────────────────────▶ ├─ debug flag
//!  sim quote ─┘                         └─ issue time, validity window, details
//! ```
//!
//! Only this crate makes a [`Claims`]: holding one means the platform signature verified.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use cloister_proto::attest::EvidenceKind;
use sha2::{Digest, Sha256};

use crate::MEASUREMENT_BYTES;

/// An Intel TCB status (SGX and TDX), as Intel's TCB info names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TcbStatus {
    /// The platform is patched and configured as Intel recommends.
    UpToDate,
    /// Patched, but software hardening (listed advisories) is needed.
    SwHardeningNeeded,
    /// Patched, but the platform configuration needs changes (listed advisories).
    ConfigurationNeeded,
    /// Both configuration changes and software hardening are needed.
    ConfigurationAndSwHardeningNeeded,
    /// The platform lacks security patches.
    OutOfDate,
    /// Out of date, and the configuration also needs changes.
    OutOfDateConfigurationNeeded,
    /// TDX 1.5: the TD launched on an out-of-date TCB; relaunching it would fix that.
    TdRelaunchAdvised,
    /// As [`TcbStatus::TdRelaunchAdvised`], and the configuration needs changes.
    TdRelaunchAdvisedConfigurationNeeded,
    /// The platform's keys are compromised. Never accepted.
    Revoked,
}

impl TcbStatus {
    /// Every status, for parsers and help texts.
    pub const ALL: [TcbStatus; 9] = [
        TcbStatus::UpToDate,
        TcbStatus::SwHardeningNeeded,
        TcbStatus::ConfigurationNeeded,
        TcbStatus::ConfigurationAndSwHardeningNeeded,
        TcbStatus::OutOfDate,
        TcbStatus::OutOfDateConfigurationNeeded,
        TcbStatus::TdRelaunchAdvised,
        TcbStatus::TdRelaunchAdvisedConfigurationNeeded,
        TcbStatus::Revoked,
    ];

    /// Intel's name for the status.
    pub fn as_str(self) -> &'static str {
        match self {
            TcbStatus::UpToDate => "UpToDate",
            TcbStatus::SwHardeningNeeded => "SWHardeningNeeded",
            TcbStatus::ConfigurationNeeded => "ConfigurationNeeded",
            TcbStatus::ConfigurationAndSwHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            TcbStatus::OutOfDate => "OutOfDate",
            TcbStatus::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            TcbStatus::TdRelaunchAdvised => "TDRelaunchAdvised",
            TcbStatus::TdRelaunchAdvisedConfigurationNeeded => {
                "TDRelaunchAdvisedConfigurationNeeded"
            }
            TcbStatus::Revoked => "Revoked",
        }
    }
}

impl fmt::Display for TcbStatus {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for TcbStatus {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        TcbStatus::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                let names: Vec<_> = TcbStatus::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown TCB status {text:?}; one of {}", names.join(", "))
            })
    }
}

/// An SEV-SNP TCB version: the security version numbers of the platform's firmware parts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnpTcb {
    /// PSP bootloader SVN.
    pub bootloader: u8,
    /// PSP OS (TEE) SVN.
    pub tee: u8,
    /// SNP firmware SVN.
    pub snp: u8,
    /// Lowest microcode patch level of all cores.
    pub microcode: u8,
    /// FMC firmware SVN (Turin and later; absent before).
    pub fmc: Option<u8>,
}

impl SnpTcb {
    /// The first component below `minimum`, as (name, reported, minimum).
    pub(crate) fn shortfall(&self, minimum: &SnpTcb) -> Option<(&'static str, u8, u8)> {
        // FMC exists from Turin on; a minimum for it says nothing about older chips.
        let (fmc, fmc_minimum) = match (self.fmc, minimum.fmc) {
            (Some(reported), Some(minimum)) => (reported, minimum),
            _ => (0, 0),
        };
        let pairs = [
            ("bootloader", self.bootloader, minimum.bootloader),
            ("tee", self.tee, minimum.tee),
            ("snp", self.snp, minimum.snp),
            ("microcode", self.microcode, minimum.microcode),
            ("fmc", fmc, fmc_minimum),
        ];
        pairs
            .into_iter()
            .find(|(_, reported, minimum)| reported < minimum)
    }
}

impl fmt::Display for SnpTcb {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "bootloader {} tee {} snp {} microcode {}",
            self.bootloader, self.tee, self.snp, self.microcode
        )?;
        if let Some(fmc) = self.fmc {
            write!(formatter, " fmc {fmc}")?;
        }
        Ok(())
    }
}

/// A window of time, in unix seconds, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// The first second the endorsements are valid.
    pub not_before_unix_secs: u64,
    /// The last second the endorsements are valid.
    pub not_after_unix_secs: u64,
}

impl Validity {
    /// Always valid: for evidence that carries no dated endorsements (sim).
    pub(crate) const ALWAYS: Validity = Validity {
        not_before_unix_secs: 0,
        not_after_unix_secs: u64::MAX,
    };

    /// The overlap of two windows.
    pub(crate) fn intersect(self, other: Validity) -> Validity {
        Validity {
            not_before_unix_secs: self.not_before_unix_secs.max(other.not_before_unix_secs),
            not_after_unix_secs: self.not_after_unix_secs.min(other.not_after_unix_secs),
        }
    }

    /// True when `now_unix_secs` is inside the window.
    pub fn contains(&self, now_unix_secs: u64) -> bool {
        (self.not_before_unix_secs..=self.not_after_unix_secs).contains(&now_unix_secs)
    }
}

/// What verified evidence says. Made only by this crate's verifiers, after the platform
/// signature and the chain to a trusted root checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub(crate) kind: EvidenceKind,
    pub(crate) measurement: [u8; MEASUREMENT_BYTES],
    pub(crate) report_data: Vec<u8>,
    pub(crate) tcb_status: Option<TcbStatus>,
    pub(crate) advisory_ids: Vec<String>,
    pub(crate) snp_tcb: Option<SnpTcb>,
    pub(crate) debug: bool,
    pub(crate) issued_at_unix_secs: Option<u64>,
    pub(crate) validity: Validity,
    pub(crate) details: Vec<(&'static str, String)>,
    pub(crate) attested_values: BTreeMap<String, Vec<u8>>,
}

impl Claims {
    /// Which platform produced the evidence.
    pub fn kind(&self) -> EvidenceKind {
        self.kind
    }
    /// The enclave's measurement, the 32-byte id policies list (see [`derived_measurement`]).
    pub fn measurement(&self) -> &[u8; MEASUREMENT_BYTES] {
        &self.measurement
    }
    /// The report data the platform signed (64 bytes for SGX, TDX and SEV-SNP; the
    /// document's `user_data` for Nitro; 32 bytes for sim).
    pub fn report_data(&self) -> &[u8] {
        &self.report_data
    }
    /// Intel's TCB status (SGX, TDX); `None` for platforms that rate no status.
    pub fn tcb_status(&self) -> Option<TcbStatus> {
        self.tcb_status
    }
    /// Intel security advisories that apply to the platform's TCB.
    pub fn advisory_ids(&self) -> &[String] {
        &self.advisory_ids
    }
    /// The SEV-SNP reported TCB (the one the VCEK was issued for).
    pub fn snp_tcb(&self) -> Option<&SnpTcb> {
        self.snp_tcb.as_ref()
    }
    /// True when the platform says the enclave can be debugged (its memory is not private).
    /// Verification refuses such evidence, so claims that passed a policy say `false`.
    pub fn debug(&self) -> bool {
        self.debug
    }
    /// When the platform produced the evidence, if it says (Nitro, sim).
    pub fn issued_at_unix_secs(&self) -> Option<u64> {
        self.issued_at_unix_secs
    }
    /// When the endorsements (collateral, certificates) are valid.
    pub fn validity(&self) -> Validity {
        self.validity
    }
    /// Platform-specific fields, by name, for people (hex or text).
    pub fn details(&self) -> &[(&'static str, String)] {
        &self.details
    }
    /// The named security version numbers the platform signed, as big-endian unsigned
    /// integers: what SVR2-style minimums are checked against.
    ///
    /// - sim: `sim.security_version` (4 bytes);
    /// - SGX: `sgx.isv_svn` (2 bytes);
    /// - TDX: `tdx.tee_tcb_svn.0` to `tdx.tee_tcb_svn.15` (1 byte each, component-wise);
    /// - SEV-SNP: `snp.bootloader`, `snp.tee`, `snp.snp`, `snp.microcode`, `snp.fmc` (only
    ///   when the chip reports it) and `snp.guest_svn` (4 bytes);
    /// - Nitro: none. Nitro attests no version numbers; its PCRs are the measurement.
    pub fn attested_values(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.attested_values
    }
    /// True for the simulated (insecure) backend.
    pub fn simulated(&self) -> bool {
        self.kind == EvidenceKind::Sim
    }
}

/// The 32-byte measurement of a platform whose own measurement is not 32 bytes:
/// `SHA-256("cloister measurement " || label || 0x00 || parts...)`. Every part has a fixed
/// length, so the concatenation is unambiguous; the label keeps kinds apart.
///
/// - `tdx`: MRTD, RTMR0, RTMR1, RTMR2 (48 bytes each: firmware, boot config, kernel);
/// - `sev-snp`: the 48-byte launch measurement;
/// - `nitro`: PCR0, PCR1, PCR2 (48 bytes each: image, kernel, application).
///
/// SGX uses MRENCLAVE as it is; sim uses [`crate::sim::measurement`].
pub fn derived_measurement(label: &str, parts: &[&[u8]]) -> [u8; MEASUREMENT_BYTES] {
    let mut hash = Sha256::new();
    hash.update(b"cloister measurement ");
    hash.update(label.as_bytes());
    hash.update([0]);
    for part in parts {
        hash.update(part);
    }
    hash.finalize().into()
}

/// The name operators use for a kind (`sgx-dcap`, `tdx`, `sev-snp`, `nitro`, `sim`).
pub fn kind_name(kind: EvidenceKind) -> &'static str {
    match kind {
        EvidenceKind::Unspecified => "unspecified",
        EvidenceKind::Sim => "sim",
        EvidenceKind::SgxDcap => "sgx-dcap",
        EvidenceKind::Tdx => "tdx",
        EvidenceKind::SevSnp => "sev-snp",
        EvidenceKind::Nitro => "nitro",
    }
}
