//! The Noise transport: one `Request` per message out, one `Response` per message in.

use std::fmt;

use cloister_proto::prost::Message;
use cloister_proto::svr2::client::Response;
use snow::TransportState;
use zeroize::Zeroizing;

use crate::{Error, NOISE_MESSAGE_BYTES_MAX, Result};

/// Length of the Noise handshake hash (SHA-256).
pub const HANDSHAKE_HASH_BYTES: usize = 32;

/// Length of a ChaChaPoly tag.
pub(crate) const NOISE_TAG_BYTES: usize = 16;

/// An established Noise session in transport mode.
pub(crate) struct NoiseChannel {
    transport: Box<TransportState>,
    handshake_hash: [u8; HANDSHAKE_HASH_BYTES],
}

impl fmt::Debug for NoiseChannel {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("NoiseChannel")
            .field("handshake_hash", &hex::encode(self.handshake_hash))
            .finish_non_exhaustive()
    }
}

impl NoiseChannel {
    pub(crate) fn new(
        transport: TransportState,
        handshake_hash: [u8; HANDSHAKE_HASH_BYTES],
    ) -> Self {
        Self {
            transport: Box::new(transport),
            handshake_hash,
        }
    }

    /// The handshake hash, for channel binding.
    pub(crate) fn handshake_hash(&self) -> &[u8; HANDSHAKE_HASH_BYTES] {
        &self.handshake_hash
    }

    /// Encrypt one serialized request into one Noise message.
    pub(crate) fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let length = plaintext.len() + NOISE_TAG_BYTES;
        if length > NOISE_MESSAGE_BYTES_MAX {
            return Err(Error::invalid(
                "request",
                format!("{length} bytes do not fit one Noise message"),
            ));
        }
        let mut message = vec![0u8; length];
        let written = self
            .transport
            .write_message(plaintext, &mut message)
            .map_err(|error| Error::Noise(format!("encrypting a request: {error}")))?;
        message.truncate(written);
        Ok(message)
    }

    /// Decrypt one Noise message and decode the `Response` it carries.
    pub(crate) fn decrypt_response(&mut self, message: &[u8]) -> Result<Response> {
        if message.len() > NOISE_MESSAGE_BYTES_MAX {
            return Err(Error::Protocol(format!(
                "a {}-byte frame exceeds the 65535-byte Noise message limit",
                message.len()
            )));
        }
        let mut plaintext = Zeroizing::new(vec![0u8; message.len()]);
        let length = self
            .transport
            .read_message(message, &mut plaintext)
            .map_err(|error| Error::Noise(format!("decrypting a response: {error}")))?;
        Response::decode(&plaintext[..length])
            .map_err(|_| Error::Protocol("the decrypted frame is not a Response".into()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cloister_proto::svr2::client::{TriesResponse, response};

    /// A connected (client channel, snow responder) pair.
    pub(crate) fn pair() -> (NoiseChannel, TransportState) {
        let params: snow::params::NoiseParams = crate::handshake::NOISE_PATTERN.parse().unwrap();
        let responder_keys = snow::Builder::new(params.clone())
            .generate_keypair()
            .unwrap();
        let mut initiator = snow::Builder::new(params.clone())
            .remote_public_key(&responder_keys.public)
            .unwrap()
            .build_initiator()
            .unwrap();
        let mut responder = snow::Builder::new(params)
            .local_private_key(&responder_keys.private)
            .unwrap()
            .build_responder()
            .unwrap();
        let mut buffer = [0u8; 256];
        let mut scratch = [0u8; 256];
        let length = initiator.write_message(&[], &mut buffer).unwrap();
        responder
            .read_message(&buffer[..length], &mut scratch)
            .unwrap();
        let length = responder.write_message(&[], &mut buffer).unwrap();
        initiator
            .read_message(&buffer[..length], &mut scratch)
            .unwrap();
        let hash = initiator.get_handshake_hash().try_into().unwrap();
        let channel = NoiseChannel::new(initiator.into_transport_mode().unwrap(), hash);
        (channel, responder.into_transport_mode().unwrap())
    }

    #[test]
    fn requests_and_responses_cross_the_channel() {
        let (mut channel, mut responder) = pair();
        let message = channel.encrypt(b"request bytes").unwrap();
        let mut plaintext = vec![0u8; message.len()];
        let length = responder.read_message(&message, &mut plaintext).unwrap();
        assert_eq!(&plaintext[..length], b"request bytes");

        let response = Response {
            inner: Some(response::Inner::Tries(TriesResponse {
                status: 1,
                tries: 3,
                exposed: true,
            })),
        };
        let mut message = vec![0u8; 256];
        let length = responder
            .write_message(&response.encode_to_vec(), &mut message)
            .unwrap();
        assert_eq!(
            channel.decrypt_response(&message[..length]).unwrap(),
            response
        );
    }

    // SVR2 client protocol: Noise messages are at most 65535 bytes.
    #[test]
    fn oversized_messages_are_refused_both_ways() {
        let (mut channel, _responder) = pair();
        let too_big = vec![0u8; NOISE_MESSAGE_BYTES_MAX - NOISE_TAG_BYTES + 1];
        assert!(matches!(
            channel.encrypt(&too_big),
            Err(Error::InvalidInput { .. })
        ));
        let frame = vec![0u8; NOISE_MESSAGE_BYTES_MAX + 1];
        assert!(matches!(
            channel.decrypt_response(&frame),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn tampered_or_undecodable_responses_are_refused() {
        let (mut channel, mut responder) = pair();
        let mut message = vec![0u8; 64];
        let length = responder
            .write_message(&[0xff, 0xff], &mut message)
            .unwrap();
        message.truncate(length);
        let mut tampered = message.clone();
        tampered[0] ^= 1;
        assert!(matches!(
            channel.decrypt_response(&tampered),
            Err(Error::Noise(_))
        ));
        let (mut channel, mut responder) = pair();
        let mut message = vec![0u8; 64];
        let length = responder
            .write_message(&[0xff, 0xff], &mut message)
            .unwrap();
        assert!(matches!(
            channel.decrypt_response(&message[..length]),
            Err(Error::Protocol(_))
        ));
    }
}
