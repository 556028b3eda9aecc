//! An established connection: the Noise transport, the peer's attestation, and the two
//! directions of segmented messages.
//!
//! ```text
//!  seal:  EnclaveToEnclave ─encode─▶ split ─▶ Segment ─Noise encrypt─▶ PeerFrame::data ×n
//!  open:  PeerFrame::data ─Noise decrypt─▶ Segment ─▶ Reassembly ─▶ EnclaveToEnclave
//! ```

use cloister_proto::e2e::{EnclaveToEnclave, PeerFrame, Segment, peer_frame};
use prost::Message;
use snow::TransportState;
use zeroize::{Zeroize, Zeroizing};

use super::attestation::PeerAttestation;
use super::reassembly::{Reassembly, segment_count, segments};
use crate::Error;
use crate::client::noise::{NOISE_MESSAGE_BYTES_MAX, NOISE_TAG_BYTES};

/// Handshake done and both sides attested: messages flow both ways.
pub(super) struct Connected {
    transport: Box<TransportState>,
    attestation: PeerAttestation,
    reassembly: Reassembly,
    message_seq_next: u64,
}

impl Connected {
    /// A connection over `transport` to the peer `attestation` proved.
    pub(super) fn new(transport: TransportState, attestation: PeerAttestation) -> Self {
        Self {
            transport: Box::new(transport),
            attestation,
            reassembly: Reassembly::default(),
            message_seq_next: 0,
        }
    }

    /// The peer's latest verified attestation.
    pub(super) fn attestation(&self) -> &PeerAttestation {
        &self.attestation
    }

    /// Replace the peer's attestation with a fresher one for the same key.
    pub(super) fn set_attestation(&mut self, attestation: PeerAttestation) {
        assert_eq!(
            attestation.peer(),
            self.attestation.peer(),
            "a connection's peer key never changes"
        );
        self.attestation = attestation;
    }

    /// Encrypt `message` into serialized data frames, in the order they must be sent.
    ///
    /// The caller has bounded the message's size. `Err` means Noise refused to encrypt
    /// (only on nonce exhaustion, after 2^64 frames); the connection is then unusable.
    pub(super) fn seal(&mut self, message: &EnclaveToEnclave) -> Result<Vec<Vec<u8>>, Error> {
        let bytes = Zeroizing::new(message.encode_to_vec());
        let mut frames = Vec::with_capacity(segment_count(bytes.len()) as usize);
        for mut segment in segments(self.message_seq_next, &bytes) {
            let frame = self.seal_segment(&segment);
            segment.data.zeroize();
            frames.push(frame?);
        }
        self.message_seq_next += 1;
        Ok(frames)
    }

    /// Encrypt one segment into a serialized data frame.
    fn seal_segment(&mut self, segment: &Segment) -> Result<Vec<u8>, Error> {
        self.seal_plaintext(&Zeroizing::new(segment.encode_to_vec()))
    }

    /// Encrypt `plaintext` (a serialized segment; tests forge others) into a data frame.
    pub(super) fn seal_plaintext(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let mut ciphertext = vec![0u8; plaintext.len() + NOISE_TAG_BYTES];
        let length = self
            .transport
            .write_message(plaintext, &mut ciphertext)
            .map_err(|error| Error::Internal(format!("encrypting a segment: {error}")))?;
        ciphertext.truncate(length);
        Ok(PeerFrame {
            inner: Some(peer_frame::Inner::Data(ciphertext)),
        }
        .encode_to_vec())
    }

    /// Decrypt one data frame. Returns a message when this frame carried its last segment.
    /// `Err` leaves the connection unusable (its nonce or reassembly is out of step): the
    /// caller resets it.
    pub(super) fn open(
        &mut self,
        ciphertext: &[u8],
        message_bytes_max: usize,
    ) -> Result<Option<EnclaveToEnclave>, Error> {
        if ciphertext.len() > NOISE_MESSAGE_BYTES_MAX {
            return Err(Error::HostMisbehaved(format!(
                "data frame of {} bytes exceeds one Noise message",
                ciphertext.len()
            )));
        }
        let mut plaintext = Zeroizing::new(vec![0u8; ciphertext.len()]);
        let length = self
            .transport
            .read_message(ciphertext, &mut plaintext)
            .map_err(|_| {
                Error::HostMisbehaved(
                    "data frame does not decrypt (forged, replayed, reordered or after a lost one)"
                        .into(),
                )
            })?;
        let segment = Segment::decode(&plaintext[..length]).map_err(|_| {
            Error::InvalidArgument("peer sent a segment that does not decode".into())
        })?;
        let Some(bytes) = self.reassembly.push(segment, message_bytes_max)? else {
            return Ok(None);
        };
        let message = EnclaveToEnclave::decode(bytes.as_slice()).map_err(|_| {
            Error::InvalidArgument("peer sent a message that is not an EnclaveToEnclave".into())
        })?;
        if message.inner.is_none() {
            return Err(Error::InvalidArgument("peer sent an empty message".into()));
        }
        Ok(Some(message))
    }
}
