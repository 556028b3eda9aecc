//! The crate's one error type, grouped by who is to blame.

use std::fmt;
use std::time::Duration;

use cloister_attest::AttestError;
use tokio_tungstenite::tungstenite;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Who is to blame for an [`Error`]. See [`Error::blame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The server spoke the protocol and said no (an HTTP status or a close code).
    ServerRefused,
    /// The server broke the protocol, or could not prove it is the enclave we asked for.
    ServerMisbehaved,
    /// The caller passed something the protocol does not allow; nothing was sent.
    InvalidInput,
    /// The network failed or was too slow.
    Transport,
}

/// Which step of a connection's life a timeout interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// TCP connect and the WebSocket upgrade.
    Connect,
    /// Reading the attestation frame and the Noise handshake.
    Handshake,
    /// Waiting for the answer to a request.
    Response,
}

impl fmt::Display for Phase {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Phase::Connect => "connecting",
            Phase::Handshake => "the handshake",
            Phase::Response => "a response",
        })
    }
}

/// Everything that can go wrong in this crate. Variants are grouped by [`Blame`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- The server refused. ----
    /// HTTP 401: the credentials are missing, malformed, expired or wrong.
    #[error("the server refused the credentials (HTTP 401)")]
    Unauthorized,
    /// HTTP 404: the server does not serve the enclave id in the URL.
    #[error("the server does not serve this enclave id (HTTP 404)")]
    UnknownEnclave,
    /// HTTP 429: too many connections for this user.
    #[error("rate limited (HTTP 429){}", retry_after_text(.retry_after))]
    RateLimited {
        /// The server's `Retry-After`, when it sent a parseable one.
        retry_after: Option<Duration>,
    },
    /// Any other HTTP status on the WebSocket upgrade.
    #[error("the server answered the upgrade with HTTP {status}")]
    HttpStatus {
        /// The status code.
        status: u16,
    },
    /// Close code 4003: the enclave found a request invalid. Nothing changed.
    #[error("the enclave refused the request as invalid (close 4003): {reason}")]
    InvalidArgument {
        /// The close frame's reason text.
        reason: String,
    },
    /// Close code 4013: the enclave failed internally.
    #[error("the enclave failed internally (close 4013): {reason}")]
    Internal {
        /// The close frame's reason text.
        reason: String,
    },
    /// Close code 4014: temporarily unavailable (no leader, or a leader change cancelled the
    /// transaction). The protocol guarantees that nothing changed, so retrying is safe.
    #[error("the enclave is temporarily unavailable (close 4014), nothing changed: {reason}")]
    Unavailable {
        /// The close frame's reason text.
        reason: String,
    },
    /// The server closed normally (1000) while a request or handshake was outstanding.
    #[error("the server closed the connection (1000) before answering")]
    ClosedNormally,
    /// The server closed with a code this protocol does not define.
    #[error("the server closed the connection with code {code}: {reason}")]
    Closed {
        /// The close code (1005 when the close frame had none).
        code: u16,
        /// The close frame's reason text.
        reason: String,
    },
    /// An operation answered with its ERROR status.
    #[error("the enclave answered {operation} with status ERROR")]
    OperationFailed {
        /// The operation's name.
        operation: &'static str,
    },
    /// Expose answered ERROR after our Backup succeeded: the row was deleted or replaced by
    /// another Backup in between. Backing up again is the caller's decision, not ours.
    #[error("Expose was refused: the stored backup is gone or no longer ours")]
    ExposeRejected,

    // ---- The server misbehaved. ----
    /// The attestation evidence did not verify under our policy.
    #[error("attestation failed: {0}")]
    Attestation(#[from] AttestError),
    /// The enclave is simulated (insecure) and the options do not allow that.
    #[error(
        "the enclave is simulated and proves nothing; set ConnectOptions::insecure_allow_simulated \
         to accept it for development"
    )]
    SimulatedRefused,
    /// `test_only_pubkey` was sent and differs from the attested key.
    #[error("the handshake start's test_only_pubkey differs from the attested key")]
    TestKeyMismatch,
    /// The attested group needs something this client does not implement.
    #[error("unsupported group configuration: {0}")]
    UnsupportedGroup(&'static str),
    /// A later connection attested a different group than the first one.
    #[error("the server moved from group {expected} to group {found} between connections")]
    GroupChanged {
        /// The group the first connection attested.
        expected: u64,
        /// The group this connection attested.
        found: u64,
    },
    /// The server broke the wire protocol (bad frame, wrong response type, UNSET status...).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The Noise handshake or a transport message failed to verify.
    #[error("Noise channel failure: {0}")]
    Noise(String),
    /// Restored data does not decrypt under the PIN's key, though the enclave said the PIN
    /// matched: the data is not what was backed up.
    #[error("the restored data does not decrypt under this PIN's key")]
    SecretIntegrity,

    // ---- Invalid input. ----
    /// An argument the protocol does not allow. Nothing was sent.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// What was invalid.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The connection already failed; open a new one.
    #[error("this connection failed earlier and cannot carry more requests")]
    ConnectionBroken,

    // ---- Transport. ----
    /// The network failed.
    #[error("transport failure: {0}")]
    Transport(String),
    /// A step took longer than its configured bound.
    #[error("timed out waiting for {0}")]
    Timeout(Phase),
}

fn retry_after_text(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(delay) => format!(", retry after {}s", delay.as_secs()),
        None => String::new(),
    }
}

impl Error {
    /// Who is to blame.
    pub fn blame(&self) -> Blame {
        use Error::*;
        match self {
            Unauthorized
            | UnknownEnclave
            | RateLimited { .. }
            | HttpStatus { .. }
            | InvalidArgument { .. }
            | Internal { .. }
            | Unavailable { .. }
            | ClosedNormally
            | Closed { .. }
            | OperationFailed { .. }
            | ExposeRejected => Blame::ServerRefused,
            Attestation(_)
            | SimulatedRefused
            | TestKeyMismatch
            | UnsupportedGroup(_)
            | GroupChanged { .. }
            | Protocol(_)
            | Noise(_)
            | SecretIntegrity => Blame::ServerMisbehaved,
            InvalidInput { .. } | ConnectionBroken => Blame::InvalidInput,
            Transport(_) | Timeout(_) => Blame::Transport,
        }
    }

    /// True when trying again on a new connection may succeed. Whether a retry is *safe*
    /// depends on the operation: see [`crate::session`].
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Unavailable { .. }
                | Error::RateLimited { .. }
                | Error::HttpStatus { status: 502..=504 }
                | Error::ClosedNormally
                | Error::Transport(_)
                | Error::Timeout(_)
        )
    }

    /// True when the protocol guarantees the server changed no state (close 4014), or the
    /// request never left this process.
    pub fn guarantees_no_state_change(&self) -> bool {
        matches!(
            self,
            Error::Unavailable { .. }
                | Error::InvalidArgument { .. }
                // Refused at the HTTP upgrade: no request reached the enclave.
                | Error::Unauthorized
                | Error::UnknownEnclave
                | Error::RateLimited { .. }
                | Error::HttpStatus { .. }
        ) || self.blame() == Blame::InvalidInput
    }

    /// Map a WebSocket close code and reason from the server.
    pub fn from_close(code: u16, reason: impl Into<String>) -> Error {
        let reason = reason.into();
        match code {
            1000 => Error::ClosedNormally,
            4003 => Error::InvalidArgument { reason },
            4013 => Error::Internal { reason },
            4014 => Error::Unavailable { reason },
            code => Error::Closed { code, reason },
        }
    }

    /// Map an HTTP status refusing the WebSocket upgrade. `retry_after` is the raw
    /// `Retry-After` header, if any (only the delay-seconds form is understood).
    pub fn from_http_status(status: u16, retry_after: Option<&str>) -> Error {
        match status {
            401 => Error::Unauthorized,
            404 => Error::UnknownEnclave,
            429 => Error::RateLimited {
                retry_after: retry_after
                    .and_then(|value| value.trim().parse::<u64>().ok())
                    .map(Duration::from_secs),
            },
            status => Error::HttpStatus { status },
        }
    }

    /// Shorthand for [`Error::InvalidInput`].
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
        Error::InvalidInput {
            field,
            reason: reason.into(),
        }
    }

    /// Map a WebSocket library error.
    pub(crate) fn from_websocket(error: tungstenite::Error) -> Error {
        use tungstenite::Error as Ws;
        match error {
            Ws::Http(response) => Error::from_http_status(
                response.status().as_u16(),
                response
                    .headers()
                    .get("retry-after")
                    .and_then(|value| value.to_str().ok()),
            ),
            Ws::Capacity(error) => {
                Error::Protocol(format!("oversized message from server: {error}"))
            }
            // A reset is the network (or a host that dropped us), not a protocol breach.
            Ws::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
                Error::Transport("connection reset without a close frame".into())
            }
            Ws::Protocol(error) => Error::Protocol(format!("WebSocket protocol: {error}")),
            Ws::Utf8(_) => Error::Protocol("WebSocket text frame is not UTF-8".into()),
            Ws::Url(error) => Error::invalid("url", error.to_string()),
            Ws::HttpFormat(error) => Error::invalid("request", error.to_string()),
            Ws::ConnectionClosed | Ws::AlreadyClosed => {
                Error::Transport("the connection is closed".into())
            }
            other => Error::Transport(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // SVR2 client protocol: close codes.
    #[test]
    fn close_codes_map_to_their_meaning() {
        assert!(matches!(Error::from_close(1000, ""), Error::ClosedNormally));
        assert!(matches!(
            Error::from_close(4003, "bad size"),
            Error::InvalidArgument { reason } if reason == "bad size"
        ));
        assert!(matches!(
            Error::from_close(4013, ""),
            Error::Internal { .. }
        ));
        let unavailable = Error::from_close(4014, "leader changed");
        assert!(matches!(unavailable, Error::Unavailable { .. }));
        assert!(unavailable.is_retryable());
        assert!(unavailable.guarantees_no_state_change());
        assert!(matches!(
            Error::from_close(4999, "x"),
            Error::Closed { code: 4999, .. }
        ));
        for code in [1000, 4003, 4013, 4014, 4999] {
            assert_eq!(Error::from_close(code, "").blame(), Blame::ServerRefused);
        }
        assert!(!Error::from_close(4013, "").is_retryable());
        assert!(!Error::from_close(4003, "").is_retryable());
    }

    // SVR2 client protocol: transport and authentication.
    #[test]
    fn http_statuses_map_to_their_meaning() {
        assert!(matches!(
            Error::from_http_status(401, None),
            Error::Unauthorized
        ));
        assert!(matches!(
            Error::from_http_status(404, None),
            Error::UnknownEnclave
        ));
        assert!(matches!(
            Error::from_http_status(429, Some(" 7 ")),
            Error::RateLimited { retry_after: Some(delay) } if delay == Duration::from_secs(7)
        ));
        assert!(matches!(
            Error::from_http_status(429, Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            Error::RateLimited { retry_after: None }
        ));
        assert!(matches!(
            Error::from_http_status(503, None),
            Error::HttpStatus { status: 503 }
        ));
        assert!(Error::from_http_status(429, None).is_retryable());
        assert!(Error::from_http_status(503, None).is_retryable());
        assert!(Error::from_http_status(503, None).guarantees_no_state_change());
        assert!(!Error::from_http_status(500, None).is_retryable());
        assert!(!Error::from_http_status(401, None).is_retryable());
    }

    #[test]
    fn blame_groups() {
        assert_eq!(Error::TestKeyMismatch.blame(), Blame::ServerMisbehaved);
        assert_eq!(Error::invalid("pin", "short").blame(), Blame::InvalidInput);
        assert_eq!(Error::Timeout(Phase::Response).blame(), Blame::Transport);
        assert!(Error::invalid("pin", "short").guarantees_no_state_change());
        assert!(!Error::Transport("reset".into()).guarantees_no_state_change());
        let text = Error::Timeout(Phase::Handshake).to_string();
        assert_eq!(text, "timed out waiting for the handshake");
    }
}
