//! Raw client WebSockets for bad-input tests: hand-built Basic auth, close codes, and a Noise
//! NK initiator driven by hand (snow), so a test can send bytes no SDK would.
//!
//! ```text
//!  connect(node, auth) ──GET /v1/<id>──▶ Socket | HTTP refusal (status, Retry-After)
//!  NoiseSocket::open: frame 1 ClientHandshakeStart ─verify─▶ attested key
//!                     message 1 ──▶ ◀── message 2 ─▶ transport mode
//!  send_plaintext(bytes) encrypts any bytes; request(Request) round-trips one Response
//! ```

use std::time::Duration;

use cloister_attest::Policy;
use cloister_proto::prost::Message as _;
use cloister_proto::svr2::client::{ClientHandshakeStart, Request, Response};
use futures_util::{SinkExt, StreamExt};
use snow::TransportState;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Bytes, Message};

use super::{Node, unix_now_secs};

/// A raw client WebSocket.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Bound on waiting for one frame.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(20);
/// The protocol's frame limit.
pub const FRAME_BYTES_MAX: usize = 128 * 1024;
/// The client Noise protocol.
pub const NOISE_PATTERN: &str = "Noise_NK_25519_ChaChaPoly_SHA256";

/// Opens `ws://<node>/<path>` with an optional raw `Authorization` header value.
pub async fn connect_path(
    node: &Node,
    path: &str,
    authorization: Option<&str>,
) -> Result<Socket, tungstenite::Error> {
    let url = format!("ws://{}{path}", node.client_addr);
    let mut request = url.into_client_request().unwrap();
    if let Some(value) = authorization {
        request
            .headers_mut()
            .insert("authorization", value.parse().unwrap());
    }
    let connecting = tokio_tungstenite::connect_async(request);
    tokio::time::timeout(FRAME_TIMEOUT, connecting)
        .await
        .expect("WebSocket connect timed out")
        .map(|(socket, _response)| socket)
}

/// Opens the node's enclave endpoint with an optional raw `Authorization` header value.
pub async fn connect(
    node: &Node,
    authorization: Option<&str>,
) -> Result<Socket, tungstenite::Error> {
    connect_path(node, &format!("/v1/{}", node.enclave_id), authorization).await
}

/// Opens the enclave endpoint as `username` with good credentials.
pub async fn connect_as(node: &Node, username: &str) -> Socket {
    connect(node, Some(&node.basic_auth(username)))
        .await
        .unwrap()
}

/// The HTTP status (and `Retry-After`) of a refused upgrade; panics if it was not refused.
pub fn refused(result: Result<Socket, tungstenite::Error>) -> (u16, Option<String>) {
    match result {
        Err(tungstenite::Error::Http(response)) => {
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|value| value.to_str().unwrap().to_owned());
            (response.status().as_u16(), retry_after)
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected an HTTP refusal, got a WebSocket"),
    }
}

/// The next binary frame; panics on anything else (control frames skipped).
pub async fn read_binary(socket: &mut Socket) -> Bytes {
    loop {
        let next = tokio::time::timeout(FRAME_TIMEOUT, socket.next())
            .await
            .expect("no frame within the timeout");
        match next {
            Some(Ok(Message::Binary(data))) => return data,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }
}

/// Reads until the server's close frame and returns its code. Frames before it are skipped.
pub async fn close_code(socket: &mut Socket) -> u16 {
    loop {
        let next = tokio::time::timeout(FRAME_TIMEOUT, socket.next())
            .await
            .expect("no close frame within the timeout");
        match next {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(Message::Close(None))) | None => panic!("closed without a close code"),
            Some(Ok(_)) => {}
            Some(Err(error)) => panic!("read failed before a close frame: {error}"),
        }
    }
}

/// Sends one binary frame.
pub async fn send_binary(socket: &mut Socket, data: Vec<u8>) {
    socket
        .send(Message::Binary(Bytes::from(data)))
        .await
        .unwrap();
}

/// A WebSocket in Noise transport mode, driven by hand.
pub struct NoiseSocket {
    /// The socket.
    pub socket: Socket,
    transport: TransportState,
    /// The attested Noise static key.
    pub public_key: [u8; 32],
}

impl NoiseSocket {
    /// Connects as `username`, verifies the attestation (simulated allowed, this build's
    /// measurement only), and completes the Noise NK handshake.
    pub async fn open(node: &Node, username: &str) -> NoiseSocket {
        let mut socket = connect_as(node, username).await;
        let first = read_binary(&mut socket).await;
        let start = ClientHandshakeStart::decode(first).unwrap();
        let policy = Policy::insecure_allow_simulated(vec![cloister_attest::sim::measurement()]);
        let verified = cloister_attest::verify(
            &start.evidence,
            &start.endorsement,
            &policy,
            unix_now_secs(),
        )
        .unwrap();
        let public_key = *verified.public_key();
        assert_eq!(start.test_only_pubkey, public_key.to_vec());
        let mut handshake = snow::Builder::new(NOISE_PATTERN.parse().unwrap())
            .remote_public_key(&public_key)
            .unwrap()
            .build_initiator()
            .unwrap();
        let mut message = vec![0u8; 65535];
        let length = handshake.write_message(&[], &mut message).unwrap();
        send_binary(&mut socket, message[..length].to_vec()).await;
        let reply = read_binary(&mut socket).await;
        let mut payload = vec![0u8; 65535];
        handshake.read_message(&reply, &mut payload).unwrap();
        NoiseSocket {
            socket,
            transport: handshake.into_transport_mode().unwrap(),
            public_key,
        }
    }

    /// Encrypts `plaintext` (any bytes) as one Noise transport message and sends it.
    pub async fn send_plaintext(&mut self, plaintext: &[u8]) {
        let mut message = vec![0u8; plaintext.len() + 16];
        let length = self
            .transport
            .write_message(plaintext, &mut message)
            .unwrap();
        message.truncate(length);
        send_binary(&mut self.socket, message).await;
    }

    /// Sends one `Request` and decrypts the `Response`.
    pub async fn request(&mut self, request: &Request) -> Response {
        self.send_plaintext(&request.encode_to_vec()).await;
        let frame = read_binary(&mut self.socket).await;
        let mut plaintext = vec![0u8; frame.len()];
        let length = self.transport.read_message(&frame, &mut plaintext).unwrap();
        Response::decode(&plaintext[..length]).unwrap()
    }

    /// Reads until the server closes and returns the close code.
    pub async fn close_code(&mut self) -> u16 {
        close_code(&mut self.socket).await
    }
}
