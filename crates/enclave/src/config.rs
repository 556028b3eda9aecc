//! Host-supplied enclave configuration, validated before use.

use cloister_proto::enclave::{EnclaveConfig, EnclaveLogLevel};

use crate::Error;
use crate::client::CLIENT_SESSIONS_MAX;

/// Default bound on host requests waiting for their log entry.
pub const PENDING_REQUESTS_MAX: u32 = 16_384;
/// Hard ceiling on client sessions, whatever the host asks.
pub const CLIENT_SESSIONS_CEILING: u32 = 1_048_576;
/// Hard ceiling on pending requests, whatever the host asks.
pub const PENDING_REQUESTS_CEILING: u32 = 1_048_576;

/// An [`EnclaveConfig`] whose every field is in bounds (zero means "default").
#[derive(Debug, Clone)]
pub(crate) struct ValidConfig {
    pub(crate) log_level: EnclaveLogLevel,
    pub(crate) client_sessions_max: u32,
    pub(crate) pending_requests_max: u32,
}

impl ValidConfig {
    pub(crate) fn new(config: EnclaveConfig) -> Result<Self, Error> {
        let log_level = match EnclaveLogLevel::try_from(config.log_level) {
            Ok(EnclaveLogLevel::Unset) => EnclaveLogLevel::Info,
            Ok(level) => level,
            Err(_) => {
                return Err(Error::InvalidArgument(format!(
                    "unknown log level {}",
                    config.log_level
                )));
            }
        };
        let client_sessions_max = bounded(
            "client_sessions_max",
            config.client_sessions_max,
            CLIENT_SESSIONS_MAX,
            CLIENT_SESSIONS_CEILING,
        )?;
        let pending_requests_max = bounded(
            "pending_requests_max",
            config.pending_requests_max,
            PENDING_REQUESTS_MAX,
            PENDING_REQUESTS_CEILING,
        )?;
        Ok(Self {
            log_level,
            client_sessions_max,
            pending_requests_max,
        })
    }
}

fn bounded(name: &str, value: u32, default: u32, ceiling: u32) -> Result<u32, Error> {
    match value {
        0 => Ok(default),
        value if value <= ceiling => Ok(value),
        value => Err(Error::InvalidArgument(format!(
            "{name} is {value}; at most {ceiling}"
        ))),
    }
}
