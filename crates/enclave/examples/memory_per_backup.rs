//! Measures enclave memory per stored backup: applies N Backup requests to the SVR2 database
//! (the state every replica keeps in memory) and reports the growth of the process's resident
//! set per backup. (A counting allocator would need `unsafe`, which the workspace forbids.)
//!
//! `cargo run --release -p cloister-enclave --example memory_per_backup -- 1000000`
//!
//! The Raft log is compacted after apply, and client sessions belong to connections, not to
//! backups, so the database rows are what grows with the number of stored backups.

use cloister_enclave::Database;
use cloister_proto::svr2::client::{BackupRequest, Request, request};

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let backups: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let mut request = Request {
        inner: Some(request::Inner::Backup(BackupRequest {
            data: vec![0x5a; 48],
            pin: vec![0xa5; 32],
            max_tries: 10,
        })),
    };
    let mut database = Database::default();
    let resident_before = resident_bytes();
    for index in 0..backups {
        // Spread ids like hashes of usernames would be.
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&index.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
        id[8..].copy_from_slice(&index.to_le_bytes());
        if let Some(request::Inner::Backup(backup)) = &mut request.inner {
            backup.data[0] = index as u8;
        }
        let response = database.apply(&id, &request);
        assert!(response.is_ok());
    }
    let resident = resident_bytes().saturating_sub(resident_before);
    assert_eq!(database.len() as u64, backups);
    println!("backups: {backups}");
    println!(
        "resident bytes per backup: {:.1}",
        resident as f64 / backups as f64
    );
    println!("target: under 256 bytes");
}
