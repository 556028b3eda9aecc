//! Shared by the platform tests: temporary directories, the attestation vectors of
//! crates/attest/tests/data, fake kernels that behave like the real interfaces, and a test
//! Nitro chain.
// Each test binary uses a different part of this module. Test code: a failed unwrap is a
// failed test (clippy.toml allows unwrap only inside #[test] functions).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

// The attest crate's test chains, shared rather than copied.
#[path = "../../../attest/tests/support/certs.rs"]
pub mod certs;
pub mod guest;
pub mod kernels;
#[path = "../../../attest/tests/support/nitro.rs"]
pub mod nitro;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cloister_proto::attest::{AttestationData, GroupConfig};

/// A directory under the system's temporary directory, removed on drop. Names are unique per
/// process and call, so tests run in parallel.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "cloister-platform-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path).unwrap();
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Write `bytes` to `name` and return its path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A file of crates/attest/tests/data.
pub fn data(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../attest/tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The Milan SEV-SNP report.
pub fn milan_report() -> Vec<u8> {
    let text = String::from_utf8(data("sev-snp/report_milan.hex")).unwrap();
    (0..text.trim().len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text.trim()[at..at + 2], 16).unwrap())
        .collect()
}

/// A statement a real node would attest.
pub fn statement(group_id: u64) -> AttestationData {
    AttestationData {
        public_key: vec![9; 32],
        group_config: Some(GroupConfig {
            group_id,
            simulated: false,
            ..Default::default()
        }),
        minimum_limits: None,
    }
}
