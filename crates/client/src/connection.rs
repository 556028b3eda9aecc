//! Attested connections over WebSocket: open, handshake, and carry typed requests.

use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::channel::{HANDSHAKE_HASH_BYTES, NoiseChannel};
use crate::handshake::{AttestedEnclave, start_handshake, verify_handshake_start};
use crate::operations::{self, EncodedRequest, ExposeOutcome, RestoreOutcome, TriesOutcome};
use crate::options::{ConnectOptions, EnclaveId, Timeouts, endpoint_url};
use crate::{CONTROL_FRAMES_MAX, Credentials, Error, FRAME_BYTES_MAX, Phase, Result};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Where and as whom to connect. Opens any number of [`Connection`]s.
#[derive(Debug)]
pub struct Client {
    url: String,
    enclave_id: EnclaveId,
    credentials: Credentials,
    options: ConnectOptions,
}

impl Client {
    /// A client for the enclave `enclave_id` served at `base_url` (`ws://host:port`).
    pub fn new(
        base_url: &str,
        enclave_id: EnclaveId,
        credentials: Credentials,
        options: ConnectOptions,
    ) -> Result<Self> {
        Ok(Self {
            url: endpoint_url(base_url, &enclave_id)?,
            enclave_id,
            credentials,
            options,
        })
    }

    /// The endpoint URL, `ws://host:port/v1/<enclave-id-hex>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The credentials (their username is the PIN salt's input).
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The options.
    pub fn options(&self) -> &ConnectOptions {
        &self.options
    }

    /// Open a new attested connection.
    pub async fn connect(&self) -> Result<Connection> {
        Connection::open(
            &self.url,
            &self.enclave_id,
            &self.credentials,
            &self.options,
        )
        .await
    }
}

/// An established, attested Noise session. Requests run one at a time (`&mut self`), and
/// several may share a connection. After any error other than invalid input the connection
/// is broken (the request and response streams may be out of step) and refuses more work.
#[derive(Debug)]
pub struct Connection {
    socket: Socket,
    channel: NoiseChannel,
    enclave: AttestedEnclave,
    username: String,
    timeouts: Timeouts,
    broken: bool,
}

fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        // tungstenite zero-fills its read buffer up to this size on every read; responses are
        // small, and larger frames still arrive whole over several reads.
        .read_buffer_size(4 * 1024)
        .max_frame_size(Some(FRAME_BYTES_MAX))
        .max_message_size(Some(FRAME_BYTES_MAX))
}

fn now_unix_secs() -> Result<u64> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .map_err(|_| Error::invalid("system clock", "is before 1970"))
}

async fn bounded<T>(
    phase: Phase,
    limit: std::time::Duration,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    timeout(limit, work)
        .await
        .map_err(|_| Error::Timeout(phase))?
}

impl Connection {
    /// Connect to `url`, check the enclave's attestation under `options`, and run the
    /// Noise handshake. Each step is bounded by `options.timeouts`.
    pub async fn open(
        url: &str,
        enclave_id: &EnclaveId,
        credentials: &Credentials,
        options: &ConnectOptions,
    ) -> Result<Connection> {
        let mut request = url.into_client_request().map_err(Error::from_websocket)?;
        let mut authorization = HeaderValue::from_str(&credentials.authorization_header())
            .map_err(|_| Error::invalid("credentials", "not a valid header value"))?;
        authorization.set_sensitive(true);
        request.headers_mut().insert("authorization", authorization);
        let timeouts = options.timeouts;
        let mut socket = bounded(Phase::Connect, timeouts.connect, async {
            tokio_tungstenite::connect_async_with_config(request, Some(websocket_config()), true)
                .await
                .map(|(socket, _response)| socket)
                .map_err(Error::from_websocket)
        })
        .await?;
        let policy = options.policy(enclave_id);
        let (enclave, channel) = bounded(Phase::Handshake, timeouts.handshake, async {
            let frame = read_binary(&mut socket).await?;
            let enclave = verify_handshake_start(&frame, &policy, now_unix_secs()?)?;
            let (state, message) = start_handshake(&enclave)?;
            send_binary(&mut socket, message).await?;
            let reply = read_binary(&mut socket).await?;
            Ok((enclave, state.on_reply(&reply)?))
        })
        .await?;
        tracing::debug!(
            group_id = enclave.group_id(),
            "attested connection established"
        );
        Ok(Connection {
            socket,
            channel,
            enclave,
            username: credentials.username().to_owned(),
            timeouts,
            broken: false,
        })
    }

    /// The Noise handshake hash, for channel binding.
    pub fn handshake_hash(&self) -> &[u8; HANDSHAKE_HASH_BYTES] {
        self.channel.handshake_hash()
    }

    /// The enclave this connection attested.
    pub fn enclave(&self) -> &AttestedEnclave {
        &self.enclave
    }

    /// The attested group's id.
    pub fn group_id(&self) -> u64 {
        self.enclave.group_id()
    }

    /// The username this connection authenticated as (the PIN salt's input).
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Store `data` behind `pin` (a 32-byte hash, see [`crate::pin`]) with `max_tries`
    /// guesses. The row stays unavailable until [`Connection::expose`].
    pub async fn backup(&mut self, data: &[u8], pin: &[u8; 32], max_tries: u32) -> Result<()> {
        let request = operations::backup_request(data, pin, max_tries)?;
        operations::on_backup(self.round_trip(request).await?)
    }

    /// Make a backed-up row available for Restore, if `data` matches what was stored.
    pub async fn expose(&mut self, data: &[u8]) -> Result<ExposeOutcome> {
        let request = operations::expose_request(data)?;
        operations::on_expose(self.round_trip(request).await?)
    }

    /// Try `pin`. A wrong PIN uses one try; the last wrong try deletes the row.
    pub async fn restore(&mut self, pin: &[u8; 32]) -> Result<RestoreOutcome> {
        let request = operations::restore_request(pin);
        operations::on_restore(self.round_trip(request).await?)
    }

    /// Delete the row (idempotent).
    pub async fn delete(&mut self) -> Result<()> {
        operations::on_delete(self.round_trip(operations::delete_request()).await?)
    }

    /// How many tries are left, and whether the row is exposed.
    pub async fn tries(&mut self) -> Result<TriesOutcome> {
        operations::on_tries(self.round_trip(operations::tries_request()).await?)
    }

    /// Close politely with code 1000. Errors are ignored: the session is over either way.
    pub async fn close(mut self) {
        let _ = timeout(self.timeouts.response, self.socket.close(None)).await;
    }

    async fn round_trip(
        &mut self,
        request: EncodedRequest,
    ) -> Result<cloister_proto::svr2::client::Response> {
        if self.broken {
            return Err(Error::ConnectionBroken);
        }
        let result = bounded(Phase::Response, self.timeouts.response, async {
            let message = self.channel.encrypt(&request)?;
            send_binary(&mut self.socket, message).await?;
            let frame = read_binary(&mut self.socket).await?;
            self.channel.decrypt_response(&frame)
        })
        .await;
        if result.is_err() {
            self.broken = true;
        }
        result
    }
}

async fn send_binary(socket: &mut Socket, message: Vec<u8>) -> Result<()> {
    socket
        .send(Message::Binary(Bytes::from(message)))
        .await
        .map_err(Error::from_websocket)
}

/// Read the next binary frame, skipping a bounded number of control frames, and turning a
/// close frame into its typed error.
async fn read_binary(socket: &mut Socket) -> Result<Bytes> {
    for _ in 0..=CONTROL_FRAMES_MAX {
        match socket.next().await {
            Some(Ok(Message::Binary(frame))) => return Ok(frame),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Text(_))) => {
                return Err(Error::Protocol("the server sent a text frame".into()));
            }
            Some(Ok(Message::Close(Some(frame)))) => {
                return Err(Error::from_close(frame.code.into(), frame.reason.as_str()));
            }
            Some(Ok(Message::Close(None))) => return Err(Error::from_close(1005, "")),
            Some(Err(error)) => return Err(Error::from_websocket(error)),
            None => {
                return Err(Error::Transport(
                    "the connection ended without a close frame".into(),
                ));
            }
        }
    }
    Err(Error::Protocol(format!(
        "more than {CONTROL_FRAMES_MAX} control frames in a row"
    )))
}
