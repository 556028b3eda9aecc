//! Shared by the attestation tests: the vectors in `tests/data/`, and test chains that stand
//! in for AMD's and AWS's so tests can sign the reports real hardware would never make
//! (debug enclaves, other measurements, bound statements).
// Each test binary uses a different part of this module. Test code: a failed unwrap is a
// failed test (clippy.toml allows unwrap only inside #[test] functions).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod certs;
pub mod dcap;
pub mod intel;
pub mod nitro;
pub mod sev;

/// A file under `tests/data/`.
pub fn read(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}
