//! Cloister's real TEE platforms: [`cloister_enclave::Env`] implementations that produce
//! evidence on hardware, outside the deterministic core.
//!
//! ```text
//!  core ── Env::attest(data) ──▶ HardwareEnv
//!            report_data = report_data_for(kind, data bytes)
//!            Producer::produce(report_data) ──▶ the platform's kernel interface:
//!              gramine  /dev/attestation           user_report_data ─▶ quote      (SGX)
//!              tsm      /sys/kernel/config/tsm/report/<entry>  inblob ─▶ outblob   (TDX, SEV-SNP)
//!              nitro    /dev/nsm ioctl, CBOR {"Attestation": {user_data}} ─▶ document
//!            unverified::inspect(report): binds report_data? same measurement?
//!          ◀── Attestation{Evidence{kind, report, data bytes}, endorsements}
//! ```
//!
//! Each backend reaches its kernel only through a narrow trait ([`DeviceFs`] for the
//! pseudo-filesystems, [`NsmDevice`] for the NSM), so tests run them against fake kernels in
//! a temporary directory. A node configured for a backend whose device is absent or wrong
//! refuses to start: [`open`] probes the device once (it attests a fixed probe statement)
//! and says what it found.
//!
//! Endorsements: SGX and TDX collateral (dcap-qvl's `QuoteCollateralV3` JSON) comes from an
//! operator-supplied file, read again on every attestation so a job can refresh it; SEV-SNP
//! certificates come from the kernel's certificate table (`auxblob`), else from an
//! operator-supplied PEM file (VCEK, then ASK, then ARK); Nitro takes none.
//!
//! ```no_run
//! use cloister_platform::{Backend, PlatformSettings, open};
//! let settings = PlatformSettings {
//!     endorsements: Some("/etc/cloister/collateral.json".into()),
//!     ..PlatformSettings::default()
//! };
//! // Refuses with a clear message on a machine without Gramine's /dev/attestation.
//! let env = open("sgx".parse::<Backend>().unwrap(), &settings).unwrap();
//! assert!(!env.simulated());
//! ```

mod backend;
mod cert_table;
mod device;
mod endorsements;
mod env;
pub mod gramine;
pub mod nitro;
// The one unsafe call of the workspace: the NSM's ioctl, behind `NsmDevice`.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod nsm_ioctl;
pub mod tsm;

pub use backend::{Backend, PlatformSettings, open};
pub use cert_table::sev_snp_endorsements_from_cert_table;
pub use device::{DeviceFs, OsFs};
pub use env::{HardwareEnv, Produced, Producer};
pub use nitro::NsmDevice;

pub use cloister_enclave::{Attestation, Env, PlatformError};
