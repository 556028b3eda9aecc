//! The five SVR2 operations, without I/O: check arguments, build requests, read responses.

use std::fmt;

use cloister_proto::prost::Message;
use cloister_proto::svr2::client::{
    BackupRequest, DeleteRequest, ExposeRequest, Request, Response, RestoreRequest, TriesRequest,
    backup_response, expose_response, request, response, restore_response, tries_response,
};
use zeroize::{Zeroize, Zeroizing};

use crate::{Error, Result};

/// Smallest `data` a Backup may store.
pub const DATA_BYTES_MIN: usize = 16;
/// Largest `data` a Backup may store.
pub const DATA_BYTES_MAX: usize = 48;
/// Length of the `pin` field (a hash made by the client, never a raw PIN).
pub const PIN_BYTES: usize = 32;
/// Smallest `max_tries`.
pub const TRIES_MIN: u32 = 1;
/// Largest `max_tries`.
pub const TRIES_MAX: u32 = 255;

/// What Expose said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExposeOutcome {
    /// The row is now available for Restore.
    Ok,
    /// No row, or its data differ from what was sent.
    Error,
}

/// What Restore said.
pub enum RestoreOutcome {
    /// The PIN matched; tries are not reset by a success.
    Ok {
        /// The stored data.
        data: Zeroizing<Vec<u8>>,
        /// Tries left.
        tries: u32,
    },
    /// No row, the row is not exposed yet, or the last try was just used up.
    Missing,
    /// The PIN did not match; one try was used.
    PinMismatch {
        /// Tries left (at least 1; at 0 the row is deleted and the answer is `Missing`).
        tries_left: u32,
    },
}

impl fmt::Debug for RestoreOutcome {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreOutcome::Ok { data, tries } => formatter
                .debug_struct("Ok")
                .field("data", &format_args!("<redacted {} bytes>", data.len()))
                .field("tries", tries)
                .finish(),
            RestoreOutcome::Missing => formatter.write_str("Missing"),
            RestoreOutcome::PinMismatch { tries_left } => formatter
                .debug_struct("PinMismatch")
                .field("tries_left", tries_left)
                .finish(),
        }
    }
}

/// What Tries said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriesOutcome {
    /// A row exists.
    Ok {
        /// Tries left.
        tries: u32,
        /// Whether Expose has made it available.
        exposed: bool,
    },
    /// No row.
    Missing,
}

/// A serialized request, wiped when dropped (it may hold a PIN hash).
pub(crate) type EncodedRequest = Zeroizing<Vec<u8>>;

fn encode(inner: request::Inner) -> EncodedRequest {
    let mut request = Request { inner: Some(inner) };
    let encoded = Zeroizing::new(request.encode_to_vec());
    match &mut request.inner {
        Some(request::Inner::Backup(backup)) => {
            backup.data.zeroize();
            backup.pin.zeroize();
        }
        Some(request::Inner::Expose(expose)) => expose.data.zeroize(),
        Some(request::Inner::Restore(restore)) => restore.pin.zeroize(),
        _ => {}
    }
    encoded
}

fn check_data(data: &[u8]) -> Result<()> {
    if !(DATA_BYTES_MIN..=DATA_BYTES_MAX).contains(&data.len()) {
        return Err(Error::invalid(
            "data",
            format!(
                "is {} bytes; must be {DATA_BYTES_MIN}..={DATA_BYTES_MAX}",
                data.len()
            ),
        ));
    }
    Ok(())
}

/// Build a Backup request after checking every size the enclave checks.
pub(crate) fn backup_request(
    data: &[u8],
    pin: &[u8; PIN_BYTES],
    max_tries: u32,
) -> Result<EncodedRequest> {
    check_data(data)?;
    if !(TRIES_MIN..=TRIES_MAX).contains(&max_tries) {
        return Err(Error::invalid(
            "max_tries",
            format!("is {max_tries}; must be {TRIES_MIN}..={TRIES_MAX}"),
        ));
    }
    Ok(encode(request::Inner::Backup(BackupRequest {
        data: data.to_vec(),
        pin: pin.to_vec(),
        max_tries,
    })))
}

/// Build an Expose request.
pub(crate) fn expose_request(data: &[u8]) -> Result<EncodedRequest> {
    check_data(data)?;
    Ok(encode(request::Inner::Expose(ExposeRequest {
        data: data.to_vec(),
    })))
}

/// Build a Restore request.
pub(crate) fn restore_request(pin: &[u8; PIN_BYTES]) -> EncodedRequest {
    encode(request::Inner::Restore(RestoreRequest {
        pin: pin.to_vec(),
    }))
}

/// Build a Delete request.
pub(crate) fn delete_request() -> EncodedRequest {
    encode(request::Inner::Delete(DeleteRequest {}))
}

/// Build a Tries request.
pub(crate) fn tries_request() -> EncodedRequest {
    encode(request::Inner::Tries(TriesRequest {}))
}

fn wrong_type(expected: &str, response: &Response) -> Error {
    let found = match &response.inner {
        None => "an empty response",
        Some(response::Inner::Backup(_)) => "a Backup response",
        Some(response::Inner::Restore(_)) => "a Restore response",
        Some(response::Inner::Delete(_)) => "a Delete response",
        Some(response::Inner::Expose(_)) => "an Expose response",
        Some(response::Inner::Tries(_)) => "a Tries response",
    };
    Error::Protocol(format!("expected a {expected} response, got {found}"))
}

fn bad_status(operation: &str, status: i32) -> Error {
    Error::Protocol(format!(
        "{operation} answered with status {status} (UNSET or unknown)"
    ))
}

/// Read a Backup response.
pub(crate) fn on_backup(response: Response) -> Result<()> {
    let Some(response::Inner::Backup(backup)) = &response.inner else {
        return Err(wrong_type("Backup", &response));
    };
    match backup_response::Status::try_from(backup.status) {
        Ok(backup_response::Status::Ok) => Ok(()),
        _ => Err(bad_status("Backup", backup.status)),
    }
}

/// Read an Expose response.
pub(crate) fn on_expose(response: Response) -> Result<ExposeOutcome> {
    let Some(response::Inner::Expose(expose)) = &response.inner else {
        return Err(wrong_type("Expose", &response));
    };
    match expose_response::Status::try_from(expose.status) {
        Ok(expose_response::Status::Ok) => Ok(ExposeOutcome::Ok),
        Ok(expose_response::Status::Error) => Ok(ExposeOutcome::Error),
        _ => Err(bad_status("Expose", expose.status)),
    }
}

/// Read a Restore response, checking that OK carries data of a storable size.
pub(crate) fn on_restore(mut response: Response) -> Result<RestoreOutcome> {
    let Some(response::Inner::Restore(restore)) = &mut response.inner else {
        return Err(wrong_type("Restore", &response));
    };
    let data = Zeroizing::new(std::mem::take(&mut restore.data));
    match restore_response::Status::try_from(restore.status) {
        Ok(restore_response::Status::Ok) => {
            check_data(&data).map_err(|_| {
                Error::Protocol(format!("Restore returned {} bytes of data", data.len()))
            })?;
            Ok(RestoreOutcome::Ok {
                data,
                tries: restore.tries,
            })
        }
        Ok(restore_response::Status::Missing) => Ok(RestoreOutcome::Missing),
        Ok(restore_response::Status::PinMismatch) => Ok(RestoreOutcome::PinMismatch {
            tries_left: restore.tries,
        }),
        Ok(restore_response::Status::Error) => Err(Error::OperationFailed {
            operation: "Restore",
        }),
        _ => Err(bad_status("Restore", restore.status)),
    }
}

/// Read a Delete response.
pub(crate) fn on_delete(response: Response) -> Result<()> {
    match &response.inner {
        Some(response::Inner::Delete(_)) => Ok(()),
        _ => Err(wrong_type("Delete", &response)),
    }
}

/// Read a Tries response.
pub(crate) fn on_tries(response: Response) -> Result<TriesOutcome> {
    let Some(response::Inner::Tries(tries)) = &response.inner else {
        return Err(wrong_type("Tries", &response));
    };
    match tries_response::Status::try_from(tries.status) {
        Ok(tries_response::Status::Ok) => Ok(TriesOutcome::Ok {
            tries: tries.tries,
            exposed: tries.exposed,
        }),
        Ok(tries_response::Status::Missing) => Ok(TriesOutcome::Missing),
        _ => Err(bad_status("Tries", tries.status)),
    }
}

#[cfg(test)]
mod tests;
