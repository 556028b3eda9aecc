//! The operator's API, on its own listener (loopback by default; it has no authentication).
//!
//! | route | answer |
//! |---|---|
//! | `GET /v1/status` | [`StatusJson`] |
//! | `POST /v1/create-group` | [`CreateGroupParams`] in → [`StatusJson`]; 409 if a group exists |
//! | `GET /v1/hashes` | [`HashesJson`] |
//! | `GET /v1/metrics/enclave` | [`EnclaveMetricsJson`] |
//! | `POST /v1/log-level` | [`LogLevelJson`] in and out |
//! | `POST /v1/refresh-attestation` | `{"ok":true}`, or 501 while the enclave does not support it |
//! | `POST /v1/delete-backup` | [`DeleteBackupJson`] in → `{"ok":true}` once committed |
//! | `POST /v1/update-minimums` | [`UpdateMinimumsJson`] in → `{"ok":true}` once committed (leader only) |
//! | `GET /health/live` | 200 `{"live":true}` while the process runs |
//! | `GET /health/ready` | [`ReadyJson`]: 200 with a group and a known leader, else 503 |
//! | `GET /metrics` | Prometheus text: host and enclave metrics, `cloister_` prefixed |
//!
//! Errors are `{"error": kind, "message": text}` with the status of [`HostError::http_status`]:
//! bad JSON or an out-of-range value is 400 and changes nothing; a call the enclave does not
//! support is 501.

pub mod json;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub use json::{
    CreateGroupParams, DeleteBackupJson, EnclaveMetricsJson, GroupConfigJson, HashesJson,
    LogLevelJson, MemberJson, ReadyJson, StatusJson, UpdateMinimumsJson, parse_log_level,
};

use cloister_proto::enclave::{
    JoinRaftRequest, PingPeerRequest, RelinquishLeadershipRequest, RequestRemovalRequest,
    RequestVotingRequest, host_to_enclave_request,
};

use crate::auth::BackupId;
use crate::dispatcher::Dispatcher;
use crate::error::HostError;
use crate::metrics::{Counter, HostMetrics, render_prometheus};

/// What the admin handlers share.
#[derive(Clone)]
pub(crate) struct AdminState {
    pub dispatcher: Dispatcher,
    pub metrics: Arc<HostMetrics>,
}

/// The admin listener's routes.
pub(crate) fn router(state: AdminState, body_bytes_max: usize) -> Router {
    let counted = state.metrics.clone();
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/create-group", post(create_group))
        .route("/v1/hashes", get(hashes))
        .route("/v1/metrics/enclave", get(enclave_metrics))
        .route("/v1/log-level", post(log_level))
        .route("/v1/refresh-attestation", post(refresh_attestation))
        .route("/v1/delete-backup", post(delete_backup))
        .route("/v1/update-minimums", post(update_minimums))
        .route("/v1/join", post(join))
        .route("/v1/ping-peer", post(ping_peer))
        .route("/v1/request-voting", post(request_voting))
        .route("/v1/relinquish", post(relinquish))
        .route("/v1/remove", post(remove))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(prometheus))
        .fallback(not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_bytes_max))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            let counted = counted.clone();
            async move {
                counted.increment(Counter::AdminRequests);
                next.run(request).await
            }
        }))
}

type JsonResult = Result<Json<Value>, HostError>;

fn ok() -> Json<Value> {
    Json(json!({ "ok": true }))
}

/// Parses a JSON object body strictly (unknown fields refused); an empty body reads as `{}`.
fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, HostError> {
    let invalid =
        |error: serde_json::Error| HostError::BadRequest(format!("invalid JSON body: {error}"));
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let value: Value = serde_json::from_slice(text).map_err(invalid)?;
    if !value.is_object() {
        return Err(HostError::BadRequest(
            "the JSON body must be an object".to_owned(),
        ));
    }
    serde_json::from_value(value).map_err(invalid)
}

fn to_json<T: serde::Serialize>(value: &T) -> JsonResult {
    serde_json::to_value(value)
        .map(Json)
        .map_err(|_| HostError::UnexpectedReply("answer does not serialize"))
}

async fn status(State(state): State<AdminState>) -> JsonResult {
    to_json(&StatusJson::from(&state.dispatcher.status().await?))
}

async fn create_group(State(state): State<AdminState>, body: Bytes) -> JsonResult {
    let params: CreateGroupParams = parse_body(&body)?;
    let request = params.to_request().map_err(HostError::BadRequest)?;
    let status = state.dispatcher.create_group(request).await?;
    tracing::info!(?params, "created a new raft group");
    to_json(&StatusJson::from(&status))
}

async fn hashes(State(state): State<AdminState>) -> JsonResult {
    to_json(&HashesJson::from(&state.dispatcher.hashes().await?))
}

async fn enclave_metrics(State(state): State<AdminState>) -> JsonResult {
    to_json(&EnclaveMetricsJson::from(
        &state.dispatcher.enclave_metrics().await?,
    ))
}

async fn log_level(State(state): State<AdminState>, body: Bytes) -> JsonResult {
    let request: LogLevelJson = parse_body(&body)?;
    let level = parse_log_level(&request.level).ok_or_else(|| {
        HostError::BadRequest(format!(
            "unknown level {:?}; use none, fatal, error, warning, info, verbose or max",
            request.level
        ))
    })?;
    state.dispatcher.set_log_level(level).await?;
    to_json(&request)
}

async fn refresh_attestation(State(state): State<AdminState>) -> JsonResult {
    state.dispatcher.refresh_attestation().await?;
    Ok(ok())
}

async fn delete_backup(State(state): State<AdminState>, body: Bytes) -> JsonResult {
    let request: DeleteBackupJson = parse_body(&body)?;
    let backup_id = BackupId::parse_hex(&request.backup_id).map_err(|_| {
        HostError::BadRequest("backup_id must be 32 lowercase hex chars".to_owned())
    })?;
    state.dispatcher.delete_backup(&backup_id).await?;
    state.metrics.increment(Counter::Deletes);
    Ok(ok())
}

async fn update_minimums(State(state): State<AdminState>, body: Bytes) -> JsonResult {
    let request: UpdateMinimumsJson = parse_body(&body)?;
    let limits = request.to_proto().map_err(HostError::BadRequest)?;
    state.dispatcher.update_minimums(limits).await?;
    tracing::info!(limits = ?request.limits, "minimums raised");
    Ok(ok())
}

/// `{"peer": "host:port"}`: another replica's peer address.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerAddressJson {
    peer: String,
}

/// Learn the enclave peer id behind a peer address, through the transport.
async fn discover(state: &AdminState, body: &Bytes) -> Result<Vec<u8>, HostError> {
    let request: PeerAddressJson = parse_body(body)?;
    let addr: std::net::SocketAddr = request
        .peer
        .parse()
        .map_err(|_| HostError::BadRequest("peer must be HOST:PORT of a peer listener".into()))?;
    let transport = state.dispatcher.peer_transport().ok_or_else(|| {
        HostError::BadRequest("this node has no peer listener (start it with --peer-listen)".into())
    })?;
    let peer_id = transport
        .discover(addr)
        .await
        .map_err(|error| HostError::PeerUnreachable(format!("{addr}: {error}")))?;
    Ok(peer_id.as_bytes().to_vec())
}

async fn join(State(state): State<AdminState>, body: Bytes) -> JsonResult {
    let peer_id = discover(&state, &body).await?;
    let call = host_to_enclave_request::Inner::JoinRaft(JoinRaftRequest {
        peer_id: peer_id.clone(),
    });
    state.dispatcher.call(call).await?;
    tracing::info!(peer = %hex::encode(&peer_id), "joined a group");
    Ok(Json(json!({ "ok": true, "peer_id": hex::encode(peer_id) })))
}

async fn ping_peer(State(state): State<AdminState>, body: Bytes) -> JsonResult {
    let peer_id = discover(&state, &body).await?;
    let call = host_to_enclave_request::Inner::PingPeer(PingPeerRequest {
        peer_id: peer_id.clone(),
    });
    state.dispatcher.call(call).await?;
    Ok(Json(json!({ "ok": true, "peer_id": hex::encode(peer_id) })))
}

async fn request_voting(State(state): State<AdminState>) -> JsonResult {
    let call = host_to_enclave_request::Inner::RequestVoting(RequestVotingRequest {});
    state.dispatcher.call(call).await?;
    Ok(ok())
}

async fn relinquish(State(state): State<AdminState>) -> JsonResult {
    let call = host_to_enclave_request::Inner::RelinquishLeadership(RelinquishLeadershipRequest {});
    state.dispatcher.call(call).await?;
    Ok(ok())
}

async fn remove(State(state): State<AdminState>) -> JsonResult {
    let call = host_to_enclave_request::Inner::RequestRemoval(RequestRemovalRequest {});
    state.dispatcher.call(call).await?;
    Ok(ok())
}

async fn not_found() -> Response {
    let body = json!({ "error": "not_found", "message": "no such admin route" });
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

async fn live() -> Json<Value> {
    Json(json!({ "live": true }))
}

async fn ready(State(state): State<AdminState>) -> Response {
    let not_ready = |reason: String| ReadyJson {
        ready: false,
        reason: Some(reason),
        role: None,
        leader_raft_id: None,
    };
    let answer = match state.dispatcher.status().await {
        Err(error) => not_ready(format!("enclave status unavailable: {error}")),
        Ok(status) if status.group_config.is_none() => not_ready("no raft group yet".to_owned()),
        Ok(status) if status.leader_raft_id == 0 => ReadyJson {
            reason: Some("no known leader".to_owned()),
            role: Some(status.role),
            ..not_ready(String::new())
        },
        Ok(status) => ReadyJson {
            ready: true,
            reason: None,
            role: Some(status.role),
            leader_raft_id: Some(status.leader_raft_id),
        },
    };
    let code = if answer.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(answer)).into_response()
}

async fn prometheus(State(state): State<AdminState>) -> Response {
    let enclave = match state.dispatcher.enclave_metrics().await {
        Ok(reply) => Some(reply),
        Err(error) => {
            tracing::debug!(%error, "enclave metrics unavailable; rendering host metrics only");
            None
        }
    };
    let text = render_prometheus(&state.metrics, enclave.as_ref());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests;
