//! The client-facing listener: the SVR2 WebSocket (`GET /v1/{enclave_id}`) and account
//! deletion (`DELETE /v1/delete`).
//!
//! Checks run cheapest first and each refusal has its own status: unknown enclave id 404,
//! bad or missing Basic auth 401 (with `WWW-Authenticate`), not a WebSocket upgrade 400/426,
//! rate limited 429 (with `Retry-After`), `connections_max` open 503. Only then is the
//! connection upgraded and handed to [`crate::client_session`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use cloister_proto::enclave::ErrorCode;
use tokio::sync::{Semaphore, watch};

use crate::auth::{self, AuthSecret, BackupId};
use crate::dispatcher::Dispatcher;
use crate::error::HostError;
use crate::metrics::{Counter, HostMetrics};
use crate::rate_limit::{RateLimitError, RateLimiter};

/// The settings a client connection needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientSettings {
    pub token_age_max_secs: u64,
    pub frame_bytes_max: usize,
    pub idle_timeout: Duration,
}

/// Everything the client listener shares between connections.
pub(crate) struct ClientState {
    pub dispatcher: Dispatcher,
    pub metrics: Arc<HostMetrics>,
    pub settings: ClientSettings,
    /// Flips to `true` when the host shuts down; open sessions close with 1001.
    pub shutdown: watch::Receiver<bool>,
    /// One permit per open WebSocket (`connections_max`).
    pub connections: Arc<Semaphore>,
    secret: Arc<AuthSecret>,
    limiter: Mutex<RateLimiter>,
    measurement_hex: String,
}

impl ClientState {
    #[allow(clippy::too_many_arguments)] // one constructor, called once by the node
    pub(crate) fn new(
        dispatcher: Dispatcher,
        metrics: Arc<HostMetrics>,
        settings: ClientSettings,
        shutdown: watch::Receiver<bool>,
        connections: Arc<Semaphore>,
        secret: Arc<AuthSecret>,
        limiter: RateLimiter,
        measurement: &[u8],
    ) -> Self {
        ClientState {
            dispatcher,
            metrics,
            settings,
            shutdown,
            connections,
            secret,
            limiter: Mutex::new(limiter),
            measurement_hex: hex::encode(measurement),
        }
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<BackupId, HostError> {
        let header = headers
            .get(header::AUTHORIZATION)
            .map(|value| value.as_bytes());
        let result = auth::parse_basic(header).and_then(|credentials| {
            let now = crate::node::unix_now_secs();
            let max_age = self.settings.token_age_max_secs;
            auth::verify(
                &self.secret,
                &credentials.username,
                &credentials.password,
                now,
                max_age,
            )
        });
        result.map_err(|error| {
            self.metrics.increment(Counter::AuthFailures);
            tracing::debug!(%error, "client credentials refused");
            HostError::Unauthorized(error)
        })
    }

    fn admit(&self, backup_id: BackupId) -> Result<(), HostError> {
        let decision = {
            let mut limiter = self.limiter.lock().unwrap_or_else(PoisonError::into_inner);
            limiter.check(backup_id, Instant::now())
        };
        decision.map_err(|error| {
            self.metrics.increment(Counter::RateLimited);
            match error {
                RateLimitError::Limited { retry_after_secs } => {
                    HostError::RateLimited { retry_after_secs }
                }
                RateLimitError::TableFull => {
                    HostError::Busy("rate limiter is tracking too many users")
                }
            }
        })
    }
}

/// The client listener's routes.
pub(crate) fn router(state: Arc<ClientState>) -> Router {
    Router::new()
        .route("/v1/delete", delete(delete_backup))
        .route("/v1/{enclave_id}", get(connect))
        .with_state(state)
}

/// Bytes read from a client socket at a time.
const READ_BUFFER_BYTES: usize = 4 * 1024;

async fn connect(
    State(state): State<Arc<ClientState>>,
    Path(enclave_id): Path<String>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if !enclave_id.eq_ignore_ascii_case(&state.measurement_hex) {
        return HostError::UnknownEnclave.into_response();
    }
    let backup_id = match state.authenticate(&headers) {
        Ok(backup_id) => backup_id,
        Err(error) => return error.into_response(),
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    if let Err(error) = state.admit(backup_id) {
        return error.into_response();
    }
    let Ok(permit) = state.connections.clone().try_acquire_owned() else {
        state.metrics.increment(Counter::ConnectionsRefused);
        return HostError::Busy("too many open connections").into_response();
    };
    let frame_bytes_max = state.settings.frame_bytes_max;
    let failed_metrics = state.metrics.clone();
    upgrade
        // tungstenite zero-fills its read buffer up to this size on every read; client frames
        // are small, so a large buffer costs a 128 KiB memset per frame (seen in profiles).
        // Frames up to `frame_bytes_max` still arrive whole, over several reads.
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(frame_bytes_max)
        .max_frame_size(frame_bytes_max)
        .on_failed_upgrade(move |error| {
            failed_metrics.increment(Counter::ConnectionsRefused);
            tracing::debug!(%error, "websocket upgrade failed");
        })
        .on_upgrade(move |socket| crate::client_session::run(socket, state, backup_id, permit))
}

/// `DELETE /v1/delete`: deletes the authenticated user's backup. 200 once committed.
async fn delete_backup(
    State(state): State<Arc<ClientState>>,
    headers: HeaderMap,
) -> Result<StatusCode, HostError> {
    let backup_id = state.authenticate(&headers)?;
    state.admit(backup_id)?;
    match state.dispatcher.delete_backup(&backup_id).await {
        Ok(()) => {
            state.metrics.increment(Counter::Deletes);
            Ok(StatusCode::OK)
        }
        // Before a group exists the enclave says FAILED_PRECONDITION; to a client that is
        // simply "not now".
        Err(HostError::Enclave {
            code: ErrorCode::FailedPrecondition,
            message,
        }) => Err(HostError::Enclave {
            code: ErrorCode::Unavailable,
            message,
        }),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests;
