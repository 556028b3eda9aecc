//! A fake configfs-tsm guest (TDX or SEV-SNP) and the real vectors it answers with: the TDX
//! sample quote, the Milan report, and certificate tables of AMD's real Milan certificates.

use std::path::{Path, PathBuf};

use cloister_platform::tsm::{Tsm, TsmProvider};
use cloister_platform::{HardwareEnv, PlatformError};
use cloister_proto::attest::SevSnpEndorsements;
use prost::Message;
use x509_cert::Certificate;
use x509_cert::der::Encode;

use super::TempDir;
use super::kernels::{Answer, FakeTsm, SNP_REPORT_DATA, binding};

/// Inside the TDX sample's collateral window.
pub const TDX_NOW: u64 = 1_750_500_000;
/// Inside the Milan VCEK's window.
pub const SNP_NOW: u64 = 1_750_000_000;

pub const VCEK: &str = "63da758de6644564adc5f4b93be8accd";
pub const ASK: &str = "4ab7b379bbac4fe4a02f05aef327c782";
pub const ARK: &str = "c0b406a4a803495297433fb6014cd0ae";
pub const VLEK: &str = "a8074bc2a25a483eaae639c045a0b8a1";

pub fn tdx_quote() -> Vec<u8> {
    super::data("sgx-dcap/tdx_quote")
}

pub fn guid(hex: &str) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * index..2 * index + 2], 16).unwrap();
    }
    bytes
}

/// The Milan (VCEK, ASK, ARK), DER.
pub fn milan_certificates() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let chain = Certificate::load_pem_chain(&super::data("sev-snp/cert_chain_milan")).unwrap();
    (
        super::data("sev-snp/vcek_milan.der"),
        chain[0].to_der().unwrap(),
        chain[1].to_der().unwrap(),
    )
}

/// A GHCB certificate table: the entries, the all-zero terminator, then the certificates.
pub fn cert_table(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut offset = (entries.len() + 1) * 24;
    let mut table = Vec::new();
    for (name, certificate) in entries {
        table.extend_from_slice(&guid(name));
        table.extend_from_slice(&u32::try_from(offset).unwrap().to_le_bytes());
        table.extend_from_slice(&u32::try_from(certificate.len()).unwrap().to_le_bytes());
        offset += certificate.len();
    }
    table.extend_from_slice(&[0; 24]);
    for (_, certificate) in entries {
        table.extend_from_slice(certificate);
    }
    table
}

pub fn milan_table() -> Vec<u8> {
    let (vcek, ask, ark) = milan_certificates();
    // The host's order need not be ours.
    cert_table(&[(ARK, &ark), (VCEK, &vcek), (ASK, &ask)])
}

pub fn milan_endorsements() -> Vec<u8> {
    let (vcek, ask, ark) = milan_certificates();
    SevSnpEndorsements { vcek, ask, ark }.encode_to_vec()
}

/// The configfs report directory of a fake guest, and what to open on it.
pub struct Guest {
    pub dir: TempDir,
    pub root: PathBuf,
}

impl Guest {
    pub fn new() -> Self {
        let dir = TempDir::new("tsm");
        let root = dir.join("report");
        std::fs::create_dir(&root).unwrap();
        Self { dir, root }
    }

    pub fn open(
        &self,
        fake: FakeTsm,
        provider: TsmProvider,
        endorsements: Option<&Path>,
    ) -> Result<HardwareEnv, PlatformError> {
        HardwareEnv::open(Box::new(Tsm::new(
            Box::new(fake),
            self.root.clone(),
            provider,
            endorsements.map(Path::to_owned),
        )))
    }

    pub fn tdx(&self, answer: Answer) -> FakeTsm {
        FakeTsm::new(&self.root, "tdx_guest", answer, Vec::new())
    }

    pub fn snp(&self, answer: Answer, auxblob: Vec<u8>) -> FakeTsm {
        FakeTsm::new(&self.root, "sev_guest", answer, auxblob)
    }

    pub fn collateral(&self) -> PathBuf {
        self.dir.file(
            "collateral.json",
            &super::data("sgx-dcap/tdx_quote_collateral.json"),
        )
    }

    /// No report entry is left behind.
    pub fn assert_clean(&self) {
        let left: Vec<_> = std::fs::read_dir(&self.root).unwrap().collect();
        assert!(left.is_empty(), "entries left: {left:?}");
    }
}

pub fn snp_answer() -> Answer {
    binding(super::milan_report(), SNP_REPORT_DATA)
}
