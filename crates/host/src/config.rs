//! The host's settings, every number bounded, checked before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cloister_proto::enclave::{EnclaveConfig, EnclaveLogLevel, InitConfig};

use crate::auth::TOKEN_AGE_MAX_SECS_DEFAULT;
use crate::peer::PeerSettings;
use crate::rate_limit;

/// SVR2 client protocol: frame limit 128 KiB.
pub const FRAME_BYTES_MAX_DEFAULT: usize = 128 * 1024;
/// Default time between `RefreshAttestation` calls (SVR2 rotates every 10 minutes).
pub const ATTESTATION_REFRESH_INTERVAL_DEFAULT: Duration = Duration::from_secs(10 * 60);
/// The smallest `frame_bytes_max` accepted: every client handshake message must fit, the
/// post-quantum ones (1632 bytes) included, with room for the next pattern.
pub const FRAME_BYTES_MIN: usize = 2 * 1024;
const _: () =
    assert!(FRAME_BYTES_MIN >= cloister_noise::ClientHandshake::HANDSHAKE_MESSAGE_BYTES_MAX);
/// SVR2 client protocol: idle timeout 30 s.
pub const IDLE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// One enclave timer tick per second.
pub const TICK_INTERVAL_DEFAULT: Duration = Duration::from_secs(1);
/// Default bound on open client WebSockets.
pub const CONNECTIONS_MAX_DEFAULT: usize = 10_000;
/// Default bound on host calls waiting for the enclave.
pub const PENDING_CALLS_MAX_DEFAULT: usize = 16_384;
/// Seed peer addresses in the configuration at most.
pub const SEED_PEERS_MAX: usize = 256;
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
    /// How often the enclave is asked to refresh its attestation: a new client key with
    /// fresh evidence, and fresh evidence to its peers (`RefreshAttestation`).
    pub attestation_refresh_interval: Duration,
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
    /// Where other hosts connect to relay enclave peer messages. `None`: no peer transport
    /// (a one-replica node); the enclave's peer messages are dropped and counted.
    pub peer_listen_addr: Option<SocketAddr>,
    /// Seed peers: addresses of other hosts, whose enclave peer ids are learned by asking.
    pub peers: Vec<SocketAddr>,
    /// The peer transport's bounds and timings.
    pub peer_settings: PeerSettings,
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
            attestation_refresh_interval: ATTESTATION_REFRESH_INTERVAL_DEFAULT,
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
            peer_listen_addr: None,
            peers: Vec::new(),
            peer_settings: PeerSettings::default(),
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
        let bounds: [(&'static str, u128, u128, u128, &'static str); 17] = [
            ("token_age_max_secs", self.token_age_max_secs.into(), 60, 10 * 366 * DAY_SECS, " s"),
            ("rate_limit_burst", self.rate_limit_burst.into(), 1, 100_000, ""),
            ("rate_limit_per_minute", self.rate_limit_per_minute.into(), 1, 600_000, ""),
            ("rate_limit_users_max", count(self.rate_limit_users_max), 1, 10_000_000, ""),
            ("frame_bytes_max", count(self.frame_bytes_max), count(FRAME_BYTES_MIN), frame_ceiling, " B"),
            ("idle_timeout", millis(self.idle_timeout), 100, 3_600_000, ms),
            ("tick_interval", millis(self.tick_interval), 10, 60_000, ms),
            ("attestation_refresh_interval", millis(self.attestation_refresh_interval), 1_000, 86_400_000, ms),
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
        self.validate_relations()?;
        self.validate_peers()
    }

    fn validate_peers(&self) -> Result<(), ConfigError> {
        self.peer_settings.validate()?;
        let seeds = self.peers.len() as u128;
        if seeds > SEED_PEERS_MAX as u128 {
            return Err(ConfigError::OutOfRange {
                field: "peers",
                value: seeds,
                min: 0,
                max: SEED_PEERS_MAX as u128,
                unit: " addresses",
            });
        }
        let Some(listen) = self.peer_listen_addr else {
            if self.peers.is_empty() {
                return Ok(());
            }
            return Err(ConfigError::Inconsistent(
                "peers are configured but peer_listen_addr is not",
            ));
        };
        let taken = [
            self.client_listen_addr.port(),
            self.admin_listen_addr.port(),
        ];
        if listen.port() != 0 && taken.contains(&listen.port()) {
            return Err(ConfigError::Inconsistent(
                "peer_listen_addr must use a port of its own",
            ));
        }
        let unusable = |seed: &SocketAddr| seed.ip().is_unspecified() || seed.port() == 0;
        if self.peers.iter().any(unusable) {
            return Err(ConfigError::Inconsistent(
                "a peer address must name a host and a port (not 0.0.0.0, [::] or port 0)",
            ));
        }
        let distinct: std::collections::BTreeSet<_> = self.peers.iter().collect();
        if distinct.len() != self.peers.len() {
            return Err(ConfigError::Inconsistent("a peer address is listed twice"));
        }
        Ok(())
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
mod tests;
