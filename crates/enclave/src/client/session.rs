//! One client's session, as states named after what they wait for.

use cloister_proto::svr2::client::{Request, Response};
use prost::Message;
use snow::{HandshakeState, TransportState};

use cloister_noise::Resolver;

use super::noise::{ClientHandshake, NOISE_MESSAGE_BYTES_MAX, NOISE_TAG_BYTES};
use crate::{BackupId, Error};

/// A client session in one of its states.
pub enum Session {
    /// Waiting for the client's first Noise handshake message.
    ExpectHandshake(ExpectHandshake),
    /// Handshake done; waiting for encrypted requests.
    Established(Established),
}

/// Waiting for Noise message 1 (NK, or NKhfs for a `client_pq` group).
pub struct ExpectHandshake {
    backup_id: BackupId,
    pattern: ClientHandshake,
    handshake: Box<HandshakeState>,
}

impl ExpectHandshake {
    /// A responder for `backup_id` speaking `pattern` with `static_private`, its ephemeral
    /// randomness seeded by `seed` (drawn from the core's Env).
    pub fn new(
        backup_id: BackupId,
        static_private: &[u8; 32],
        pattern: ClientHandshake,
        seed: [u8; 32],
    ) -> Result<Self, Error> {
        let handshake =
            snow::Builder::with_resolver(pattern.params(), Box::new(Resolver::seeded(seed)))
                .local_private_key(static_private)
                .and_then(|builder| builder.build_responder())
                .map_err(|error| Error::Internal(format!("building a Noise responder: {error}")))?;
        Ok(Self {
            backup_id,
            pattern,
            handshake: Box::new(handshake),
        })
    }

    /// Read message 1, write message 2, enter transport mode. Message 1 must have exactly
    /// the size of its pattern with an empty payload (48 bytes for NK, 1632 for NKhfs).
    /// Consumes the state: a failed handshake leaves no session behind.
    pub fn on_handshake(mut self, message: &[u8]) -> Result<(Established, Vec<u8>), Error> {
        let expected = self.pattern.message_1_bytes();
        if message.len() != expected {
            return Err(Error::InvalidArgument(format!(
                "handshake message 1 is {} bytes; {} with an empty payload takes exactly {expected}",
                message.len(),
                self.pattern.pattern()
            )));
        }
        let mut payload = vec![0u8; message.len()];
        let payload_len = self
            .handshake
            .read_message(message, &mut payload)
            .map_err(|error| Error::InvalidArgument(format!("Noise handshake failed: {error}")))?;
        // Unreachable while the size check holds (the size leaves no room for a payload);
        // kept so that the rule does not hang on arithmetic alone.
        if payload_len != 0 {
            return Err(Error::InvalidArgument(
                "handshake message 1 must carry no payload".into(),
            ));
        }
        let mut reply = vec![0u8; ClientHandshake::HANDSHAKE_MESSAGE_BYTES_MAX];
        let reply_len =
            self.handshake
                .write_message(&[], &mut reply)
                .map_err(|error| match error {
                    // NKhfs encapsulates to the client's key while writing message 2.
                    snow::Error::Kem => Error::InvalidArgument(
                        "the client's KEM public key is not a valid ML-KEM-1024 key".into(),
                    ),
                    error => Error::Internal(format!("writing handshake message 2: {error}")),
                })?;
        if reply_len != self.pattern.message_2_bytes() {
            return Err(Error::Internal(format!(
                "handshake message 2 came out {reply_len} bytes, not {}",
                self.pattern.message_2_bytes()
            )));
        }
        reply.truncate(reply_len);
        let transport = self
            .handshake
            .into_transport_mode()
            .map_err(|error| Error::Internal(format!("entering transport mode: {error}")))?;
        Ok((
            Established {
                backup_id: self.backup_id,
                transport: Box::new(transport),
            },
            reply,
        ))
    }
}

/// Handshake complete: requests in, responses out.
pub struct Established {
    backup_id: BackupId,
    transport: Box<TransportState>,
}

impl Established {
    /// Decrypt and decode one request frame.
    pub fn decrypt_request(&mut self, frame: &[u8]) -> Result<Request, Error> {
        if frame.len() > NOISE_MESSAGE_BYTES_MAX {
            return Err(Error::InvalidArgument(
                "Noise message larger than 65535 bytes".into(),
            ));
        }
        let mut plaintext = zeroize::Zeroizing::new(vec![0u8; frame.len()]);
        let length = self
            .transport
            .read_message(frame, &mut plaintext)
            .map_err(|_| Error::InvalidArgument("frame does not decrypt".into()))?;
        Request::decode(&plaintext[..length])
            .map_err(|_| Error::InvalidArgument("request is not a valid protobuf Request".into()))
    }

    /// Encode and encrypt one response frame.
    pub fn encrypt_response(&mut self, response: &Response) -> Result<Vec<u8>, Error> {
        let plaintext = zeroize::Zeroizing::new(response.encode_to_vec());
        if plaintext.len() + NOISE_TAG_BYTES > NOISE_MESSAGE_BYTES_MAX {
            return Err(Error::Internal(
                "response does not fit one Noise message".into(),
            ));
        }
        let mut frame = vec![0u8; plaintext.len() + NOISE_TAG_BYTES];
        let length = self
            .transport
            .write_message(&plaintext, &mut frame)
            .map_err(|error| Error::Internal(format!("encrypting a response: {error}")))?;
        frame.truncate(length);
        Ok(frame)
    }

    /// The backup id the host authenticated for this session.
    pub fn backup_id(&self) -> &BackupId {
        &self.backup_id
    }
}
