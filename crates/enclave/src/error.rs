use cloister_proto::enclave::ErrorCode;
use thiserror::Error;

/// Everything that can go wrong in the core, grouped by who is to blame. Each variant maps to
/// one wire [`ErrorCode`], and so to one client close code.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// The host handed the core bytes that are not a valid door message.
    #[error("host misbehaved: {0}")]
    HostMisbehaved(String),
    /// A client (or the host on its behalf) sent a request out of bounds. Nothing changed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Not now, and nothing changed: no leader, transaction cancelled, log full.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// A bound was reached.
    #[error("resource exhausted: {0}")]
    ResourceExhausted(String),
    /// No such client session.
    #[error("not found: {0}")]
    NotFound(String),
    /// The call is valid but not in this state.
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    /// The call belongs to a later stage of Cloister.
    #[error("not supported yet: {0}")]
    NotSupported(&'static str),
    /// The platform could not produce evidence; the core kept what it had.
    #[error("platform: {0}")]
    Platform(String),
    /// The core failed in a way no retry will fix.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The wire code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::HostMisbehaved(_) | Error::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Error::Unavailable(_) | Error::Platform(_) => ErrorCode::Unavailable,
            Error::ResourceExhausted(_) => ErrorCode::ResourceExhausted,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::FailedPrecondition(_) => ErrorCode::FailedPrecondition,
            Error::NotSupported(_) => ErrorCode::NotSupported,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The wire form of this error.
    pub fn to_proto(&self) -> cloister_proto::enclave::Error {
        cloister_proto::enclave::Error {
            code: self.code() as i32,
            message: self.to_string(),
        }
    }
}
