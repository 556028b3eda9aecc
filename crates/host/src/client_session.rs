//! One client WebSocket: relay frames between the client and its enclave session.
//!
//! ```text
//!  NewClient ──▶ first frame: ClientHandshakeStart
//!  loop: client binary frame ──ExistingClient──▶ enclave ──reply──▶ one binary frame
//!  on any ending: close frame (code below), then CloseClient to the enclave
//! ```
//!
//! Close codes the host sends:
//! - 1000 when the client sent nothing for `idle_timeout` (30 s by default);
//! - 1001 when the host shuts down;
//! - 1009 when a frame or message exceeds `frame_bytes_max` (128 KiB by default);
//! - 4003 for a text frame, or when the enclave answers INVALID_ARGUMENT;
//! - 4014 when the enclave answers UNAVAILABLE, or the host is busy (nothing changed);
//! - 4013 for any other enclave error, a timeout, or a stopped enclave.
//!
//! Frames of one client are relayed one at a time, so its answers keep its order.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use prost::Message as _;
use tokio::sync::OwnedSemaphorePermit;

use crate::auth::BackupId;
use crate::client_ws::ClientState;
use crate::error::{HostError, close_code};
use crate::metrics::Counter;

/// How long the host waits for the client to answer its close frame before hanging up.
const CLOSE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);
/// Frames read while waiting for that answer at most.
const CLOSE_DRAIN_FRAMES_MAX: usize = 16;

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The host closes the WebSocket with this code.
    Close { code: u16, reason: &'static str },
    /// The client closed it, or the connection broke: nothing more to send.
    Gone,
}

impl Ending {
    const GOING_AWAY: Ending = Ending::Close {
        code: close_code::GOING_AWAY,
        reason: "host shutting down",
    };
    const IDLE: Ending = Ending::Close {
        code: close_code::NORMAL,
        reason: "idle",
    };

    fn from_error(error: &HostError) -> Self {
        let code = error.close_code();
        let reason = match code {
            close_code::INVALID_ARGUMENT => "invalid argument",
            close_code::UNAVAILABLE => "temporarily unavailable",
            close_code::MESSAGE_TOO_BIG => "frame too large",
            _ => "internal error",
        };
        Ending::Close { code, reason }
    }
}

struct Session {
    socket: WebSocket,
    state: Arc<ClientState>,
    client_id: Option<u64>,
}

/// Serves one upgraded client connection to its end.
pub(crate) async fn run(
    socket: WebSocket,
    state: Arc<ClientState>,
    backup_id: BackupId,
    permit: OwnedSemaphorePermit,
) {
    state.metrics.increment(Counter::ConnectionsAccepted);
    state.metrics.connection_opened();
    let mut session = Session {
        socket,
        state: state.clone(),
        client_id: None,
    };
    let ending = session.serve(&backup_id).await;
    tracing::debug!(
        client_id = session.client_id,
        ?ending,
        "client session ended"
    );
    if let Ending::Close { code, reason } = ending {
        session.close(code, reason).await;
    }
    if let Some(client_id) = session.client_id {
        if let Err(error) = state.dispatcher.close_client(client_id).await {
            tracing::warn!(client_id, %error, "closing the enclave session failed");
        }
    }
    state.metrics.connection_closed();
    drop(permit);
}

impl Session {
    async fn serve(&mut self, backup_id: &BackupId) -> Ending {
        let new_client = match self.state.dispatcher.new_client(backup_id).await {
            Ok(new_client) => new_client,
            Err(error) => return self.failed(&error),
        };
        self.client_id = Some(new_client.client_id);
        if !self.send(new_client.handshake_start.encode_to_vec()).await {
            return Ending::Gone;
        }
        let mut shutdown = self.state.shutdown.clone();
        loop {
            if *shutdown.borrow_and_update() {
                return Ending::GOING_AWAY;
            }
            let idle_timeout = self.state.settings.idle_timeout;
            let next = tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        // The node is gone without saying so: treat it as a shutdown.
                        return Ending::GOING_AWAY;
                    }
                    continue;
                }
                next = tokio::time::timeout(idle_timeout, self.socket.recv()) => next,
            };
            let message = match next {
                Err(_elapsed) => return Ending::IDLE,
                Ok(None) => return Ending::Gone,
                Ok(Some(Err(error))) => return read_failure(&error),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Binary(data) => {
                    if let Some(ending) = self.relay(data.to_vec()).await {
                        return ending;
                    }
                }
                Message::Text(_) => {
                    let error = HostError::ProtocolViolation("text frame");
                    return self.failed(&error);
                }
                Message::Ping(_) | Message::Pong(_) => {}
                Message::Close(_) => return Ending::Gone,
            }
        }
    }

    /// Relays one client frame; `Some` when the session must end.
    async fn relay(&mut self, data: Vec<u8>) -> Option<Ending> {
        let client_id = self.client_id?;
        self.state.metrics.increment(Counter::FramesIn);
        self.state.metrics.add(Counter::BytesIn, data.len() as u64);
        match self.state.dispatcher.existing_client(client_id, data).await {
            Ok(reply) => (!self.send(reply).await).then_some(Ending::Gone),
            Err(error) => {
                // The enclave ended the session itself on an Error reply; CloseClient after
                // that answers NOT_FOUND, which is fine.
                Some(self.failed(&error))
            }
        }
    }

    fn failed(&self, error: &HostError) -> Ending {
        tracing::debug!(client_id = self.client_id, %error, "client session failed");
        Ending::from_error(error)
    }

    /// Sends one binary frame; false if the connection is gone.
    async fn send(&mut self, data: Vec<u8>) -> bool {
        let length = data.len() as u64;
        if self
            .socket
            .send(Message::Binary(data.into()))
            .await
            .is_err()
        {
            return false;
        }
        self.state.metrics.increment(Counter::FramesOut);
        self.state.metrics.add(Counter::BytesOut, length);
        true
    }

    /// Sends a close frame and waits briefly for the client's answer.
    async fn close(&mut self, code: u16, reason: &'static str) {
        self.state.metrics.record_close(code);
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        if self.socket.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        let drain = async {
            for _ in 0..CLOSE_DRAIN_FRAMES_MAX {
                match self.socket.recv().await {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_HANDSHAKE_TIMEOUT, drain).await;
    }
}

/// A read error ends the session; an oversized frame or message ends it with 1009.
fn read_failure(error: &axum::Error) -> Ending {
    // axum hides tungstenite's error type; its capacity error reads "Space limit exceeded:
    // Message too long: ..." (the client_ws tests pin this down).
    let text = error.to_string();
    if text.contains("Space limit exceeded") || text.contains("Message too long") {
        Ending::from_error(&HostError::FrameTooLarge)
    } else {
        tracing::debug!(%error, "client connection broke");
        Ending::Gone
    }
}
