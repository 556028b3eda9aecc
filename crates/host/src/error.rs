//! The host's one error type, grouped by who is to blame, and its mapping onto HTTP statuses
//! and WebSocket close codes.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloister_proto::enclave::ErrorCode;

use crate::auth::{AuthError, SecretError};
use crate::config::ConfigError;

/// WebSocket close codes the host sends (RFC 6455 §7.4 and the SVR2 client protocol).
pub mod close_code {
    /// Normal closure: the client hung up, or it stayed idle past the idle timeout.
    pub const NORMAL: u16 = 1000;
    /// The host is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame or message exceeded the frame limit (RFC 6455 "message too big").
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// SVR2: invalid argument (bad sizes, a text frame, protocol misuse). Nothing changed.
    pub const INVALID_ARGUMENT: u16 = 4003;
    /// SVR2: internal error; a retry will not help.
    pub const INTERNAL: u16 = 4013;
    /// SVR2: temporarily unavailable, guaranteed not to have changed any state; retry.
    pub const UNAVAILABLE: u16 = 4014;
}

/// Everything that can go wrong in the host.
///
/// Variants are grouped by blame: the caller (a client or an admin request), the host's own
/// bounds, the enclave's answer, the enclave or its door misbehaving, and the operator's setup.
/// Each maps to an HTTP status ([`HostError::http_status`]) and, where a WebSocket is involved,
/// a close code ([`HostError::close_code`]).
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    // --- The caller is to blame. ---
    /// The URL names an enclave that is not this one.
    #[error("unknown enclave id")]
    UnknownEnclave,
    /// Missing or invalid credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(#[from] AuthError),
    /// The user opened connections faster than the rate limit allows.
    #[error("rate limited; retry after {retry_after_secs} s")]
    RateLimited {
        /// Seconds until one more connection would be admitted.
        retry_after_secs: u64,
    },
    /// A request body or parameter was malformed or out of range.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A client misused the WebSocket protocol (for example, sent a text frame).
    #[error("protocol violation: {0}")]
    ProtocolViolation(&'static str),
    /// A frame or message exceeded the frame limit.
    #[error("frame too large")]
    FrameTooLarge,

    // --- The host reached one of its own bounds: nothing was done; retry later. ---
    /// A bounded table or queue is full.
    #[error("busy: {0}")]
    Busy(&'static str),

    // --- The enclave answered with an error. ---
    /// The enclave refused the request with this code.
    #[error("enclave error {code:?}: {message}")]
    Enclave {
        /// The enclave's error code.
        code: ErrorCode,
        /// The enclave's explanation (the core never puts secrets in it).
        message: String,
    },

    // --- The enclave, or the door to it, misbehaved or went away. ---
    /// `handle` refused the bytes outright.
    #[error("enclave refused the message: {0}")]
    EnclaveRejected(String),
    /// The enclave answered with a reply of the wrong kind, or bytes that do not decode.
    #[error("unexpected reply from the enclave: {0}")]
    UnexpectedReply(&'static str),
    /// The enclave did not answer in time. The request may still take effect later.
    #[error("the enclave did not answer within {0:?}")]
    EnclaveTimeout(Duration),
    /// The enclave thread has stopped.
    #[error("the enclave has stopped")]
    EnclaveStopped,
    /// The enclave thread panicked (an invariant inside the core failed).
    #[error("the enclave thread panicked")]
    EnclavePanicked,

    // --- Another replica's host is to blame (or the network between). ---
    /// A peer address did not answer as a Cloister peer listener.
    #[error("peer unreachable: {0}")]
    PeerUnreachable(String),

    // --- The operator's setup is to blame. ---
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The auth secret could not be loaded or created.
    #[error(transparent)]
    AuthSecret(#[from] SecretError),
    /// An I/O operation of the host failed (binding a listener, for example).
    #[error("{context}: {source}")]
    Io {
        /// What the host was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl HostError {
    /// The error an enclave `Error` reply becomes.
    pub fn from_enclave(error: cloister_proto::enclave::Error) -> Self {
        let code = ErrorCode::try_from(error.code).unwrap_or(ErrorCode::Unset);
        HostError::Enclave {
            code,
            message: error.message,
        }
    }

    /// A short, stable, machine-readable name for the error (the `error` field of JSON bodies).
    pub fn kind(&self) -> &'static str {
        match self {
            HostError::UnknownEnclave => "unknown_enclave",
            HostError::Unauthorized(_) => "unauthorized",
            HostError::RateLimited { .. } => "rate_limited",
            HostError::BadRequest(_) => "bad_request",
            HostError::ProtocolViolation(_) => "protocol_violation",
            HostError::FrameTooLarge => "frame_too_large",
            HostError::Busy(_) => "busy",
            HostError::Enclave { code, .. } => enclave_kind(*code),
            HostError::EnclaveRejected(_) => "enclave_rejected",
            HostError::UnexpectedReply(_) => "unexpected_reply",
            HostError::EnclaveTimeout(_) => "enclave_timeout",
            HostError::EnclaveStopped => "enclave_stopped",
            HostError::EnclavePanicked => "enclave_panicked",
            HostError::Config(_) => "config",
            HostError::AuthSecret(_) => "auth_secret",
            HostError::Io { .. } => "io",
            HostError::PeerUnreachable(_) => "peer_unreachable",
        }
    }

    /// The HTTP status this error answers with.
    pub fn http_status(&self) -> StatusCode {
        match self {
            HostError::UnknownEnclave => StatusCode::NOT_FOUND,
            HostError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            HostError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            HostError::BadRequest(_) | HostError::ProtocolViolation(_) => StatusCode::BAD_REQUEST,
            HostError::FrameTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            HostError::Busy(_) | HostError::EnclaveStopped => StatusCode::SERVICE_UNAVAILABLE,
            HostError::Enclave { code, .. } => enclave_http_status(*code),
            HostError::UnexpectedReply(_) | HostError::PeerUnreachable(_) => {
                StatusCode::BAD_GATEWAY
            }
            HostError::EnclaveTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            HostError::EnclaveRejected(_)
            | HostError::EnclavePanicked
            | HostError::Config(_)
            | HostError::AuthSecret(_)
            | HostError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The WebSocket close code a client session ends with when this error ends it.
    pub fn close_code(&self) -> u16 {
        match self {
            HostError::ProtocolViolation(_) | HostError::BadRequest(_) => {
                close_code::INVALID_ARGUMENT
            }
            HostError::FrameTooLarge => close_code::MESSAGE_TOO_BIG,
            // Nothing reached the enclave, so nothing changed: the client may retry.
            HostError::Busy(_) | HostError::RateLimited { .. } => close_code::UNAVAILABLE,
            HostError::Enclave { code, .. } => enclave_close_code(*code),
            _ => close_code::INTERNAL,
        }
    }
}

/// The close code for an enclave `ErrorCode` (the table in the host↔enclave contract).
pub fn enclave_close_code(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::InvalidArgument => close_code::INVALID_ARGUMENT,
        ErrorCode::Unavailable => close_code::UNAVAILABLE,
        _ => close_code::INTERNAL,
    }
}

fn enclave_http_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorCode::Unavailable | ErrorCode::ResourceExhausted => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::NotSupported => StatusCode::NOT_IMPLEMENTED,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::FailedPrecondition => StatusCode::CONFLICT,
        ErrorCode::Internal | ErrorCode::Unset => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn enclave_kind(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InvalidArgument => "enclave_invalid_argument",
        ErrorCode::Unavailable => "enclave_unavailable",
        ErrorCode::ResourceExhausted => "enclave_resource_exhausted",
        ErrorCode::NotSupported => "enclave_not_supported",
        ErrorCode::NotFound => "enclave_not_found",
        ErrorCode::FailedPrecondition => "enclave_failed_precondition",
        ErrorCode::Internal | ErrorCode::Unset => "enclave_internal",
    }
}

/// Answers with the status, a JSON body `{"error": kind, "message": text}`, and
/// `WWW-Authenticate` / `Retry-After` where they apply.
impl IntoResponse for HostError {
    fn into_response(self) -> Response {
        let status = self.http_status();
        let body = serde_json::json!({ "error": self.kind(), "message": self.to_string() });
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            HostError::Unauthorized(_) => {
                let challenge = HeaderValue::from_static("Basic realm=\"cloister\"");
                headers.insert(header::WWW_AUTHENTICATE, challenge);
            }
            HostError::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            HostError::Busy(_) | HostError::EnclaveStopped => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(1u64));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enclave_codes_map_to_the_svr2_close_codes() {
        // SVR2 client protocol: close codes 4003 / 4013 / 4014.
        assert_eq!(enclave_close_code(ErrorCode::InvalidArgument), 4003);
        assert_eq!(enclave_close_code(ErrorCode::Unavailable), 4014);
        for code in [
            ErrorCode::Unset,
            ErrorCode::Internal,
            ErrorCode::NotSupported,
            ErrorCode::NotFound,
            ErrorCode::ResourceExhausted,
            ErrorCode::FailedPrecondition,
        ] {
            assert_eq!(enclave_close_code(code), 4013, "{code:?}");
        }
    }

    #[test]
    fn host_errors_map_to_close_codes() {
        assert_eq!(
            HostError::ProtocolViolation("text frame").close_code(),
            4003
        );
        assert_eq!(HostError::FrameTooLarge.close_code(), 1009);
        assert_eq!(HostError::Busy("pending").close_code(), 4014);
        assert_eq!(HostError::EnclaveStopped.close_code(), 4013);
        assert_eq!(
            HostError::EnclaveTimeout(Duration::from_secs(1)).close_code(),
            4013
        );
        let unknown = cloister_proto::enclave::Error {
            code: 99,
            message: String::new(),
        };
        assert_eq!(HostError::from_enclave(unknown).close_code(), 4013);
    }

    #[test]
    fn errors_map_to_http_statuses() {
        assert_eq!(HostError::UnknownEnclave.http_status(), 404);
        assert_eq!(
            HostError::Unauthorized(AuthError::MissingHeader).http_status(),
            401
        );
        assert_eq!(
            HostError::RateLimited {
                retry_after_secs: 3
            }
            .http_status(),
            429
        );
        assert_eq!(HostError::Busy("x").http_status(), 503);
        let not_supported = HostError::Enclave {
            code: ErrorCode::NotSupported,
            message: "".into(),
        };
        assert_eq!(not_supported.http_status(), 501);
        let exists = HostError::Enclave {
            code: ErrorCode::FailedPrecondition,
            message: "".into(),
        };
        assert_eq!(exists.http_status(), 409);
    }

    #[test]
    fn responses_carry_challenge_and_retry_after() {
        let response = HostError::Unauthorized(AuthError::MissingHeader).into_response();
        assert_eq!(response.status(), 401);
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        let response = HostError::RateLimited {
            retry_after_secs: 7,
        }
        .into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }
}
