//! The replicated databases. Each service's database is a deterministic function of the log
//! entries applied to it; every replica that applied the same entries holds the same rows.

mod svr2;

pub use svr2::{BACKUP_ID_BYTES, BackupId, DATA_BYTES_MAX, DATA_BYTES_MIN, Database, PIN_BYTES};
pub use svr2::{TRIES_MAX, TRIES_MIN, validate_request};
