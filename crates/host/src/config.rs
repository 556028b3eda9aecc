//! The host's settings, every number bounded, checked before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cloister_proto::enclave::{EnclaveConfig, EnclaveLogLevel, InitConfig};

use crate::auth::TOKEN_AGE_MAX_SECS_DEFAULT;
use crate::rate_limit;

/// SVR2 client protocol: frame limit 128 KiB.
pub const FRAME_BYTES_MAX_DEFAULT: usize = 128 * 1024;
/// SVR2 client protocol: idle timeout 30 s.
pub const IDLE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// One enclave timer tick per second.
pub const TICK_INTERVAL_DEFAULT: Duration = Duration::from_secs(1);
/// Default bound on open client WebSockets.
pub const CONNECTIONS_MAX_DEFAULT: usize = 10_000;
/// Default bound on host calls waiting for the enclave.
pub const PENDING_CALLS_MAX_DEFAULT: usize = 16_384;
/// Room for the door's envelope around a client frame (request id, client id, tags and
/// lengths need well under this).
const ENVELOPE_BYTES_MAX: usize = 1_024;
/// Largest frame limit allowed: a frame wrapped in its `UntrustedMessage` must still fit
/// what the core accepts.
pub const FRAME_BYTES_MAX_CEILING: usize =
    cloister_enclave::UNTRUSTED_MESSAGE_BYTES_MAX - ENVELOPE_BYTES_MAX;

// A default frame holds the largest Noise message, and fits the door once wrapped.
const _: () = assert!(FRAME_BYTES_MAX_DEFAULT >= cloister_enclave::NOISE_MESSAGE_BYTES_MAX);
const _: () = assert!(FRAME_BYTES_MAX_DEFAULT <= FRAME_BYTES_MAX_CEILING);
// Admin calls and deletes still fit while every client connection waits on the enclave.
const _: () = assert!(CONNECTIONS_MAX_DEFAULT < PENDING_CALLS_MAX_DEFAULT);

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A number is outside its bounds.
    #[error("{field} = {value}{unit} is out of range {min}{unit}..={max}{unit}")]
    OutOfRange {
        /// The setting's name.
        field: &'static str,
        /// The value given.
        value: u128,
        /// The smallest value allowed.
        min: u128,
        /// The largest value allowed.
        max: u128,
        /// The unit suffix, such as " ms" (empty for counts).
        unit: &'static str,
    },
    /// Two settings contradict each other.
    #[error("{0}")]
    Inconsistent(&'static str),
}

/// Everything the host daemon needs to know. Build it with `HostConfig::default()` and
/// override fields; [`crate::Node::start`] validates it.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where clients connect (WebSocket and `DELETE /v1/delete`). Port 0 picks a free port.
    pub client_listen_addr: SocketAddr,
    /// Where the admin API listens. Unauthenticated: loopback unless
    /// `insecure_admin_allow_non_loopback` is set.
    pub admin_listen_addr: SocketAddr,
    /// Allows binding the admin API to a non-loopback address. Anyone who reaches it can
    /// create groups, delete backups and read status.
    pub insecure_admin_allow_non_loopback: bool,
    /// File holding the auth secret (one line of 64 hex chars); created if absent.
    pub auth_secret_path: PathBuf,
    /// Tokens older or newer than this are refused.
    pub token_age_max_secs: u64,
    /// Connections a user may open in a burst.
    pub rate_limit_burst: u32,
    /// Connections per minute a user may sustain.
    pub rate_limit_per_minute: u32,
    /// Users the rate limiter tracks at once.
    pub rate_limit_users_max: usize,
    /// Largest WebSocket frame or message accepted from a client.
    pub frame_bytes_max: usize,
    /// A client that sends nothing for this long is disconnected (close 1000).
    pub idle_timeout: Duration,
    /// How often the enclave is told the time.
    pub tick_interval: Duration,
    /// Bound on open client WebSockets.
    pub connections_max: usize,
    /// Bound on client sessions inside the enclave (sent in `EnclaveConfig`).
    pub client_sessions_max: u32,
    /// Bound on requests the enclave holds waiting for a commit (sent in `EnclaveConfig`).
    pub enclave_pending_requests_max: u32,
    /// The enclave's initial log level.
    pub enclave_log_level: EnclaveLogLevel,
    /// Bound on messages queued for the enclave thread.
    pub enclave_queue_messages_max: usize,
    /// Messages the enclave thread handles before draining its output.
    pub enclave_batch_messages_max: usize,
    /// Bound on host calls waiting for an enclave answer.
    pub pending_calls_max: usize,
    /// How long a call waits for the enclave before giving up.
    pub enclave_call_timeout: Duration,
    /// How long shutdown waits for client sessions to close.
    pub shutdown_grace: Duration,
    /// Largest admin request body.
    pub admin_body_bytes_max: usize,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            client_listen_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen_addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
            insecure_admin_allow_non_loopback: false,
            auth_secret_path: PathBuf::from("cloister-data/auth.secret"),
            token_age_max_secs: TOKEN_AGE_MAX_SECS_DEFAULT,
            rate_limit_burst: rate_limit::BURST_DEFAULT,
            rate_limit_per_minute: rate_limit::PER_MINUTE_DEFAULT,
            rate_limit_users_max: rate_limit::USERS_MAX_DEFAULT,
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT,
            idle_timeout: IDLE_TIMEOUT_DEFAULT,
            tick_interval: TICK_INTERVAL_DEFAULT,
            connections_max: CONNECTIONS_MAX_DEFAULT,
            client_sessions_max: 10_000,
            enclave_pending_requests_max: cloister_enclave::PENDING_REQUESTS_MAX,
            enclave_log_level: EnclaveLogLevel::Info,
            enclave_queue_messages_max: 1_024,
            enclave_batch_messages_max: 64,
            pending_calls_max: PENDING_CALLS_MAX_DEFAULT,
            enclave_call_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
            admin_body_bytes_max: 64 * 1024,
        }
    }
}

const DAY_SECS: u128 = 24 * 60 * 60;

impl HostConfig {
    /// Checks every bound and every relation between settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let millis = |duration: Duration| duration.as_millis();
        let count = |value: usize| value as u128;
        let ms = " ms";
        let pending_requests = self.enclave_pending_requests_max.into();
        let frame_ceiling = count(FRAME_BYTES_MAX_CEILING);
        #[rustfmt::skip] // one setting per line reads as a table
        let bounds: [(&'static str, u128, u128, u128, &'static str); 16] = [
            ("token_age_max_secs", self.token_age_max_secs.into(), 60, 10 * 366 * DAY_SECS, " s"),
            ("rate_limit_burst", self.rate_limit_burst.into(), 1, 100_000, ""),
            ("rate_limit_per_minute", self.rate_limit_per_minute.into(), 1, 600_000, ""),
            ("rate_limit_users_max", count(self.rate_limit_users_max), 1, 10_000_000, ""),
            ("frame_bytes_max", count(self.frame_bytes_max), 1_024, frame_ceiling, " B"),
            ("idle_timeout", millis(self.idle_timeout), 100, 3_600_000, ms),
            ("tick_interval", millis(self.tick_interval), 10, 60_000, ms),
            ("connections_max", count(self.connections_max), 1, 1_000_000, ""),
            ("client_sessions_max", self.client_sessions_max.into(), 1, 1_000_000, ""),
            ("enclave_pending_requests_max", pending_requests, 1, 1_000_000, ""),
            ("enclave_queue_messages_max", count(self.enclave_queue_messages_max), 1, 1 << 20, ""),
            ("enclave_batch_messages_max", count(self.enclave_batch_messages_max), 1, 65_536, ""),
            ("pending_calls_max", count(self.pending_calls_max), 2, 4_000_000, ""),
            ("enclave_call_timeout", millis(self.enclave_call_timeout), 100, 600_000, ms),
            ("shutdown_grace", millis(self.shutdown_grace), 0, 600_000, ms),
            ("admin_body_bytes_max", count(self.admin_body_bytes_max), 1_024, 16 << 20, " B"),
        ];
        for (field, value, min, max, unit) in bounds {
            if !(min..=max).contains(&value) {
                return Err(ConfigError::OutOfRange {
                    field,
                    value,
                    min,
                    max,
                    unit,
                });
            }
        }
        self.validate_relations()
    }

    fn validate_relations(&self) -> Result<(), ConfigError> {
        if self.enclave_log_level == EnclaveLogLevel::Unset {
            return Err(ConfigError::Inconsistent("enclave_log_level must be set"));
        }
        if self.connections_max > self.client_sessions_max as usize {
            return Err(ConfigError::Inconsistent(
                "connections_max must not exceed client_sessions_max, or the enclave refuses \
                 sessions the host already accepted",
            ));
        }
        if self.pending_calls_max <= self.connections_max {
            return Err(ConfigError::Inconsistent(
                "pending_calls_max must exceed connections_max, so admin calls and deletes fit \
                 while every client waits on the enclave",
            ));
        }
        if self.enclave_batch_messages_max > self.enclave_queue_messages_max {
            return Err(ConfigError::Inconsistent(
                "enclave_batch_messages_max must not exceed enclave_queue_messages_max",
            ));
        }
        if !self.insecure_admin_allow_non_loopback && !self.admin_listen_addr.ip().is_loopback() {
            return Err(ConfigError::Inconsistent(
                "admin_listen_addr is not a loopback address; the admin API is unauthenticated \
                 (set insecure_admin_allow_non_loopback to allow it)",
            ));
        }
        let same_port = self.client_listen_addr.port() == self.admin_listen_addr.port();
        if same_port && self.client_listen_addr.port() != 0 {
            return Err(ConfigError::Inconsistent(
                "client_listen_addr and admin_listen_addr must use different ports",
            ));
        }
        Ok(())
    }

    /// The host-supplied settings the enclave core needs.
    pub fn enclave_config(&self) -> EnclaveConfig {
        EnclaveConfig {
            log_level: self.enclave_log_level.into(),
            client_sessions_max: self.client_sessions_max,
            pending_requests_max: self.enclave_pending_requests_max,
        }
    }

    /// The `InitConfig` to create the enclave with, given the host's clock now.
    pub fn init_config(&self, now_unix_secs: u64) -> InitConfig {
        InitConfig {
            config: Some(self.enclave_config()),
            initial_timestamp_unix_secs: now_unix_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_valid_and_matches_the_svr2_limits() {
        let config = HostConfig::default();
        config.validate().unwrap();
        // SVR2 client protocol: frame limit 128 KiB; idle timeout 30 s; 120-day tokens;
        // burst 10, 10 per minute.
        assert_eq!(config.frame_bytes_max, 131_072);
        assert_eq!(config.idle_timeout, Duration::from_secs(30));
        assert_eq!(config.token_age_max_secs, 120 * 86_400);
        assert_eq!(
            (config.rate_limit_burst, config.rate_limit_per_minute),
            (10, 10)
        );
    }

    #[test]
    fn every_number_is_bounded() {
        type Edit = fn(&mut HostConfig);
        let cases: &[(&str, Edit)] = &[
            ("token_age_max_secs", |c| c.token_age_max_secs = 0),
            ("token_age_max_secs", |c| c.token_age_max_secs = u64::MAX),
            ("rate_limit_burst", |c| c.rate_limit_burst = 0),
            ("rate_limit_per_minute", |c| c.rate_limit_per_minute = 0),
            ("rate_limit_users_max", |c| c.rate_limit_users_max = 0),
            ("frame_bytes_max", |c| c.frame_bytes_max = 10),
            ("frame_bytes_max", |c| c.frame_bytes_max = usize::MAX),
            ("frame_bytes_max", |c| {
                c.frame_bytes_max = cloister_enclave::UNTRUSTED_MESSAGE_BYTES_MAX
            }),
            ("idle_timeout", |c| c.idle_timeout = Duration::ZERO),
            ("tick_interval", |c| {
                c.tick_interval = Duration::from_secs(3600)
            }),
            ("connections_max", |c| c.connections_max = 0),
            ("client_sessions_max", |c| c.client_sessions_max = 0),
            ("enclave_pending_requests_max", |c| {
                c.enclave_pending_requests_max = 0
            }),
            ("enclave_queue_messages_max", |c| {
                c.enclave_queue_messages_max = 0
            }),
            ("enclave_batch_messages_max", |c| {
                c.enclave_batch_messages_max = 0
            }),
            ("pending_calls_max", |c| c.pending_calls_max = 0),
            ("enclave_call_timeout", |c| {
                c.enclave_call_timeout = Duration::ZERO
            }),
            ("shutdown_grace", |c| {
                c.shutdown_grace = Duration::from_secs(86_400)
            }),
            ("admin_body_bytes_max", |c| c.admin_body_bytes_max = 0),
        ];
        for (field, edit) in cases {
            let mut config = HostConfig::default();
            edit(&mut config);
            match config.validate() {
                Err(ConfigError::OutOfRange { field: named, .. }) => assert_eq!(named, *field),
                other => panic!("{field}: expected OutOfRange, got {other:?}"),
            }
        }
    }

    #[test]
    fn contradictions_are_refused() {
        type Edit = fn(&mut HostConfig);
        let cases: &[Edit] = &[
            |c| c.enclave_log_level = EnclaveLogLevel::Unset,
            |c| c.connections_max = c.client_sessions_max as usize + 1,
            |c| c.pending_calls_max = c.connections_max,
            |c| c.enclave_batch_messages_max = c.enclave_queue_messages_max + 1,
            |c| c.admin_listen_addr = SocketAddr::from(([0, 0, 0, 0], 9000)),
            |c| c.admin_listen_addr = c.client_listen_addr,
        ];
        for edit in cases {
            let mut config = HostConfig::default();
            edit(&mut config);
            assert!(
                matches!(config.validate(), Err(ConfigError::Inconsistent(_))),
                "{config:?}"
            );
        }
    }

    #[test]
    fn explicit_opt_ins_and_ephemeral_ports_are_allowed() {
        let mut config = HostConfig {
            admin_listen_addr: SocketAddr::from(([0, 0, 0, 0], 9000)),
            insecure_admin_allow_non_loopback: true,
            ..HostConfig::default()
        };
        config.validate().unwrap();
        config.client_listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config.admin_listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config.validate().unwrap();
    }

    #[test]
    fn errors_name_the_field_and_the_bounds() {
        let config = HostConfig {
            idle_timeout: Duration::ZERO,
            ..HostConfig::default()
        };
        let message = config.validate().unwrap_err().to_string();
        assert_eq!(
            message,
            "idle_timeout = 0 ms is out of range 100 ms..=3600000 ms"
        );
    }

    #[test]
    fn the_enclave_config_carries_the_bounds() {
        let config = HostConfig::default();
        let init = config.init_config(42);
        assert_eq!(init.initial_timestamp_unix_secs, 42);
        let enclave = init.config.unwrap();
        assert_eq!(enclave.client_sessions_max, config.client_sessions_max);
        assert_eq!(enclave.log_level, EnclaveLogLevel::Info as i32);
    }
}
