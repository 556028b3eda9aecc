//! The real Intel DCAP vectors and the times they are valid at.

use super::read;

/// Inside every vector's collateral window, and the window's bounds (README of tests/data).
pub const SGX_VALID_FROM: u64 = 1_750_330_571; // 2025-06-19T10:56:11Z, TCB info issued
pub const SGX_VALID_UNTIL: u64 = 1_752_919_278; // 2025-07-19T10:01:18Z, QE identity expires
/// A time inside the TDX sample's window.
pub const TDX_NOW: u64 = 1_750_500_000;
/// A time inside the outdated TDX sample's window (2026-02-18 .. 2026-03-20).
pub const TDX_OUTDATED_NOW: u64 = 1_772_323_200;

pub struct Vector {
    pub quote: Vec<u8>,
    pub collateral: Vec<u8>,
}

pub fn vector(name: &str) -> Vector {
    Vector {
        quote: read(&format!("sgx-dcap/{name}")),
        collateral: read(&format!("sgx-dcap/{name}_collateral.json")),
    }
}
