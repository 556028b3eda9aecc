//! The entry point a node calls: a backend's name and settings to a probed [`Env`].

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use cloister_enclave::{Env, PlatformError};
use cloister_proto::attest::EvidenceKind;

use crate::device::OsFs;
use crate::env::{HardwareEnv, Producer};
use crate::gramine::{self, Gramine};
use crate::nitro::{self, Nitro};
use crate::tsm::{self, Tsm, TsmProvider};

/// A real TEE backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Intel SGX under Gramine (`/dev/attestation`, DCAP quotes).
    GramineSgx,
    /// An Intel TDX guest (configfs-tsm).
    Tdx,
    /// An AMD SEV-SNP guest (configfs-tsm).
    SevSnp,
    /// An AWS Nitro enclave (`/dev/nsm`).
    Nitro,
}

impl Backend {
    /// Every backend, for parsers and help texts.
    pub const ALL: [Backend; 4] = [
        Backend::GramineSgx,
        Backend::Tdx,
        Backend::SevSnp,
        Backend::Nitro,
    ];

    /// The name operators use: `sgx`, `tdx`, `sev-snp`, `nitro`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::GramineSgx => "sgx",
            Backend::Tdx => "tdx",
            Backend::SevSnp => "sev-snp",
            Backend::Nitro => "nitro",
        }
    }

    /// The kind of evidence it produces.
    pub fn kind(self) -> EvidenceKind {
        match self {
            Backend::GramineSgx => EvidenceKind::SgxDcap,
            Backend::Tdx => EvidenceKind::Tdx,
            Backend::SevSnp => EvidenceKind::SevSnp,
            Backend::Nitro => EvidenceKind::Nitro,
        }
    }

    /// Where its device is unless the settings say otherwise: a directory for Gramine and
    /// configfs-tsm, the device file for Nitro.
    pub fn default_device_root(self) -> &'static str {
        match self {
            Backend::GramineSgx => gramine::DEFAULT_ROOT,
            Backend::Tdx | Backend::SevSnp => tsm::DEFAULT_ROOT,
            Backend::Nitro => nitro::DEFAULT_DEVICE,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = String;
    /// A backend's name; `sgx-dcap` (the evidence kind's name) also means `sgx`.
    fn from_str(text: &str) -> Result<Self, String> {
        if text == cloister_attest::kind_name(EvidenceKind::SgxDcap) {
            return Ok(Backend::GramineSgx);
        }
        Backend::ALL
            .into_iter()
            .find(|backend| backend.name() == text)
            .ok_or_else(|| {
                let names: Vec<_> = Backend::ALL.iter().map(|backend| backend.name()).collect();
                format!("unknown TEE backend {text:?}; one of {}", names.join(", "))
            })
    }
}

/// Where a backend finds its device and its endorsements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformSettings {
    /// The device (a directory for Gramine and configfs-tsm, the device file for Nitro);
    /// [`Backend::default_device_root`] when `None`.
    pub device_root: Option<PathBuf>,
    /// The endorsements file: the DCAP collateral JSON for SGX and TDX (required); for
    /// SEV-SNP, PEM (VCEK, ASK, ARK) used when the host gives no certificate table; unused
    /// by Nitro. Read again on every attestation.
    pub endorsements: Option<PathBuf>,
}

/// The [`Env`] of a node on `backend`, probed: the device answered, bound the report data
/// it was given, and its endorsements are at hand. Otherwise an error that says what is
/// missing or wrong, for the node to refuse to start with.
pub fn open(backend: Backend, settings: &PlatformSettings) -> Result<Box<dyn Env>, PlatformError> {
    let root = settings
        .device_root
        .clone()
        .unwrap_or_else(|| backend.default_device_root().into());
    let endorsements = settings.endorsements.clone();
    let producer: Box<dyn Producer> = match backend {
        Backend::GramineSgx => Box::new(Gramine::new(Box::new(OsFs), root, endorsements)),
        Backend::Tdx => Box::new(Tsm::new(
            Box::new(OsFs),
            root,
            TsmProvider::Tdx,
            endorsements,
        )),
        Backend::SevSnp => Box::new(Tsm::new(
            Box::new(OsFs),
            root,
            TsmProvider::SevSnp,
            endorsements,
        )),
        Backend::Nitro => Box::new(Nitro::new(nitro::open_device(&root)?)),
    };
    Ok(Box::new(HardwareEnv::open(producer)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_listed() {
        for backend in Backend::ALL {
            assert_eq!(backend.name().parse::<Backend>(), Ok(backend));
            assert_eq!(backend.to_string(), backend.name());
        }
        assert_eq!("sgx-dcap".parse::<Backend>(), Ok(Backend::GramineSgx));
        assert_eq!(
            "sim".parse::<Backend>(),
            Err("unknown TEE backend \"sim\"; one of sgx, tdx, sev-snp, nitro".into())
        );
    }
}
