//! The SVR2 database (version 2): PIN-guarded secrets with a guess limit.
//!
//! Rules (SVR2 client protocol, "Semantics"): Backup creates or overwrites a row as
//! POPULATED with `tries = max_tries`; Expose turns a POPULATED row whose data matches into
//! AVAILABLE; Restore answers only AVAILABLE rows, decrements tries on a wrong PIN and
//! deletes the row at zero; Delete is idempotent; Tries reports without changing anything.
//! Secrets are zeroized when overwritten or deleted.

use std::collections::BTreeMap;

use cloister_proto::svr2::client::{
    BackupResponse, DeleteResponse, ExposeResponse, Request, Response, RestoreResponse,
    TriesResponse, backup_response, expose_response, request, response, restore_response,
    tries_response,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::Error;

/// Bytes in a backup id (the host-authenticated username).
pub const BACKUP_ID_BYTES: usize = 16;
/// Fewest bytes of secret data a backup may hold.
pub const DATA_BYTES_MIN: usize = 16;
/// Most bytes of secret data a backup may hold.
pub const DATA_BYTES_MAX: usize = 48;
/// Bytes in the client's PIN hash.
pub const PIN_BYTES: usize = 32;
/// Fewest tries a backup may allow.
pub const TRIES_MIN: u32 = 1;
/// Most tries a backup may allow.
pub const TRIES_MAX: u32 = 255;

/// A backup's key: the 16 bytes the host authenticated.
pub type BackupId = [u8; BACKUP_ID_BYTES];

/// One stored secret. 83 bytes inline; the map adds its node overhead.
#[derive(Zeroize, ZeroizeOnDrop)]
struct Row {
    data: [u8; DATA_BYTES_MAX],
    data_len: u8,
    pin: [u8; PIN_BYTES],
    tries: u8,
    exposed: bool,
}

impl Row {
    fn data(&self) -> &[u8] {
        &self.data[..usize::from(self.data_len)]
    }
}

/// Check a client request against the protocol's bounds before it reaches the log.
/// Anything out of bounds is an invalid argument (close 4003) and changes nothing.
pub fn validate_request(request: &Request) -> Result<(), Error> {
    match &request.inner {
        None => Err(Error::InvalidArgument("request has no operation".into())),
        Some(request::Inner::Backup(backup)) => {
            if !(DATA_BYTES_MIN..=DATA_BYTES_MAX).contains(&backup.data.len()) {
                return Err(Error::InvalidArgument(format!(
                    "backup data is {} bytes; it must be {DATA_BYTES_MIN} to {DATA_BYTES_MAX}",
                    backup.data.len()
                )));
            }
            if backup.pin.len() != PIN_BYTES {
                return Err(Error::InvalidArgument(format!(
                    "pin is {} bytes; it must be {PIN_BYTES}",
                    backup.pin.len()
                )));
            }
            if !(TRIES_MIN..=TRIES_MAX).contains(&backup.max_tries) {
                return Err(Error::InvalidArgument(format!(
                    "max_tries is {}; it must be {TRIES_MIN} to {TRIES_MAX}",
                    backup.max_tries
                )));
            }
            Ok(())
        }
        Some(request::Inner::Expose(expose)) => {
            if !(DATA_BYTES_MIN..=DATA_BYTES_MAX).contains(&expose.data.len()) {
                return Err(Error::InvalidArgument(format!(
                    "expose data is {} bytes; it must be {DATA_BYTES_MIN} to {DATA_BYTES_MAX}",
                    expose.data.len()
                )));
            }
            Ok(())
        }
        Some(request::Inner::Restore(restore)) => {
            if restore.pin.len() != PIN_BYTES {
                return Err(Error::InvalidArgument(format!(
                    "pin is {} bytes; it must be {PIN_BYTES}",
                    restore.pin.len()
                )));
            }
            Ok(())
        }
        Some(request::Inner::Delete(_)) | Some(request::Inner::Tries(_)) => Ok(()),
    }
}

/// The SVR2 rows, in key order (so hashes and streaming are deterministic).
#[derive(Default)]
pub struct Database {
    rows: BTreeMap<BackupId, Row>,
}

impl Database {
    /// Number of stored backups.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when no backup is stored.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Apply one client request. Deterministic: same rows and request, same answer.
    ///
    /// Requests are validated when proposed; they are validated again here so that a bad
    /// entry, however it reached the log, is refused the same way on every replica and
    /// changes nothing.
    pub fn apply(&mut self, backup_id: &BackupId, request: &Request) -> Result<Response, Error> {
        validate_request(request)?;
        let inner = match &request.inner {
            Some(request::Inner::Backup(backup)) => response::Inner::Backup(self.backup(
                backup_id,
                &backup.data,
                &backup.pin,
                backup.max_tries,
            )),
            Some(request::Inner::Expose(expose)) => {
                response::Inner::Expose(self.expose(backup_id, &expose.data))
            }
            Some(request::Inner::Restore(restore)) => {
                response::Inner::Restore(self.restore(backup_id, &restore.pin))
            }
            Some(request::Inner::Delete(_)) => {
                self.delete(backup_id);
                response::Inner::Delete(DeleteResponse {})
            }
            Some(request::Inner::Tries(_)) => response::Inner::Tries(self.tries(backup_id)),
            None => return Err(Error::InvalidArgument("request has no operation".into())),
        };
        Ok(Response { inner: Some(inner) })
    }

    fn backup(&mut self, id: &BackupId, data: &[u8], pin: &[u8], max_tries: u32) -> BackupResponse {
        // validate_request bounded every size, so these conversions cannot fail.
        let tries = u8::try_from(max_tries).unwrap_or(u8::MAX);
        let data_len = u8::try_from(data.len()).unwrap_or(u8::MAX);
        let mut pin_bytes = [0; PIN_BYTES];
        pin_bytes.copy_from_slice(pin);
        let pin = pin_bytes;
        let mut row = Row {
            data: [0; DATA_BYTES_MAX],
            data_len,
            pin,
            tries,
            exposed: false,
        };
        row.data[..data.len()].copy_from_slice(data);
        // Replacing drops the old row, and dropping zeroizes it.
        self.rows.insert(*id, row);
        BackupResponse {
            status: backup_response::Status::Ok as i32,
        }
    }

    fn expose(&mut self, id: &BackupId, data: &[u8]) -> ExposeResponse {
        let status = match self.rows.get_mut(id) {
            Some(row) if bool::from(row.data().ct_eq(data)) => {
                row.exposed = true;
                expose_response::Status::Ok
            }
            _ => expose_response::Status::Error,
        };
        ExposeResponse {
            status: status as i32,
        }
    }

    fn restore(&mut self, id: &BackupId, pin: &[u8]) -> RestoreResponse {
        let missing = RestoreResponse {
            status: restore_response::Status::Missing as i32,
            data: Vec::new(),
            tries: 0,
        };
        let Some(row) = self.rows.get_mut(id) else {
            return missing;
        };
        if !row.exposed {
            return missing;
        }
        if bool::from(row.pin.as_slice().ct_eq(pin)) {
            return RestoreResponse {
                status: restore_response::Status::Ok as i32,
                data: row.data().to_vec(),
                tries: u32::from(row.tries),
            };
        }
        assert!(row.tries > 0, "a stored row always has tries left");
        row.tries -= 1;
        if row.tries == 0 {
            self.rows.remove(id);
            return missing;
        }
        RestoreResponse {
            status: restore_response::Status::PinMismatch as i32,
            data: Vec::new(),
            tries: u32::from(row.tries),
        }
    }

    /// Injected bug (`InjectedBug::TriesNotDecremented`): give back the try a wrong guess took.
    #[cfg(feature = "bug-injection")]
    pub(crate) fn refund_try(&mut self, id: &BackupId) {
        if let Some(row) = self.rows.get_mut(id) {
            row.tries = row.tries.saturating_add(1);
        }
    }

    /// Remove a backup; zeroized on drop. Idempotent.
    pub fn delete(&mut self, id: &BackupId) {
        self.rows.remove(id);
    }

    fn tries(&self, id: &BackupId) -> TriesResponse {
        match self.rows.get(id) {
            Some(row) => TriesResponse {
                status: tries_response::Status::Ok as i32,
                tries: u32::from(row.tries),
                exposed: row.exposed,
            },
            None => TriesResponse {
                status: tries_response::Status::Missing as i32,
                tries: 0,
                exposed: false,
            },
        }
    }

    /// SHA-256 over every row in key order: equal on replicas that applied the same entries.
    pub fn hash(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(b"cloister svr2 db v2");
        hash.update((self.rows.len() as u64).to_be_bytes());
        for (id, row) in &self.rows {
            hash.update(id);
            hash.update([row.data_len]);
            hash.update(row.data());
            hash.update(row.pin);
            hash.update([row.tries, u8::from(row.exposed)]);
        }
        hash.finalize().into()
    }
}

mod stream;

#[cfg(test)]
mod tests;
