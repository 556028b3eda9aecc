//! The client's side of a session's start, without I/O: check the enclave's first frame,
//! then run the Noise initiator against the attested key, with the pattern the attested
//! group config names (NK, or NKhfs+Kyber1024 when it says `client_pq`).
//!
//! ```text
//!  frame 1 (clear) ──verify_handshake_start──▶ AttestedEnclave (proof value: key, client_pq)
//!  start_handshake(&AttestedEnclave) ──▶ ExpectHandshakeReply + message 1
//!  message 2 ──ExpectHandshakeReply::on_reply──▶ NoiseChannel (transport mode)
//! ```

use cloister_attest::{AttestError, Policy, VerifiedAttestation};
use cloister_noise::ClientHandshake;
use cloister_proto::prost::Message;
use cloister_proto::svr2::client::ClientHandshakeStart;
use snow::HandshakeState;

use crate::channel::{HANDSHAKE_HASH_BYTES, NoiseChannel};
use crate::resolver::client_resolver;
use crate::{Error, Result};

/// The client Noise protocol of a group without `client_pq` (SVR2's default).
pub const NOISE_PATTERN: &str = "Noise_NK_25519_ChaChaPoly_SHA256";
/// The client Noise protocol of a group with `client_pq`: X25519 and ML-KEM-1024 (which Noise
/// and SVR2 name `Kyber1024`) together.
pub const NOISE_PATTERN_PQ: &str = "Noise_NKhfs_25519+Kyber1024_ChaChaPoly_SHA256";

/// The SVR2 database version this client speaks; 0 means the group did not say.
const DB_VERSION: u32 = 2;

/// An enclave whose first frame passed verification. Only [`verify_handshake_start`] makes
/// one, so holding it means the evidence verified under the caller's policy.
#[derive(Debug, Clone)]
pub struct AttestedEnclave {
    attestation: VerifiedAttestation,
}

impl AttestedEnclave {
    /// The verified attestation (measurement, group config, statement).
    pub fn attestation(&self) -> &VerifiedAttestation {
        &self.attestation
    }

    /// The attested Noise static key.
    pub fn public_key(&self) -> &[u8; 32] {
        self.attestation.public_key()
    }

    /// The attested group's id (the PIN salt's HKDF salt).
    pub fn group_id(&self) -> u64 {
        self.attestation.group_config().group_id
    }

    /// The handshake the attested group config asks for. It comes from the evidence, so a
    /// host cannot downgrade a `client_pq` group to NK (the enclave would refuse it anyway).
    pub fn handshake(&self) -> ClientHandshake {
        ClientHandshake::for_group(self.attestation.group_config().client_pq)
    }
}

/// Check the first binary frame: decode it, verify its evidence under `policy` at
/// `now_unix_secs`, and check what this client can speak with the attested group.
pub fn verify_handshake_start(
    frame: &[u8],
    policy: &Policy,
    now_unix_secs: u64,
) -> Result<AttestedEnclave> {
    let start = ClientHandshakeStart::decode(frame)
        .map_err(|_| Error::Protocol("first frame is not a ClientHandshakeStart".into()))?;
    let attestation =
        cloister_attest::verify(&start.evidence, &start.endorsement, policy, now_unix_secs)
            .map_err(|error| match error {
                AttestError::SimulatedNotAllowed => Error::SimulatedRefused,
                error => Error::Attestation(error),
            })?;
    let group = attestation.group_config();
    // verify() already refuses simulated evidence under a strict policy; a group that
    // calls itself simulated is refused too, whatever evidence it came with.
    if (attestation.simulated() || group.simulated) && !policy.allows_simulated() {
        return Err(Error::SimulatedRefused);
    }
    if !start.test_only_pubkey.is_empty()
        && start.test_only_pubkey.as_slice() != attestation.public_key()
    {
        return Err(Error::TestKeyMismatch);
    }
    if group.db_version != 0 && group.db_version != DB_VERSION {
        return Err(Error::UnsupportedGroup(
            "the group serves an SVR2 database version other than 2",
        ));
    }
    Ok(AttestedEnclave { attestation })
}

/// Waiting for Noise message 2.
pub(crate) struct ExpectHandshakeReply {
    pattern: ClientHandshake,
    handshake: Box<HandshakeState>,
}

fn noise_error(context: &str, error: snow::Error) -> Error {
    Error::Noise(format!("{context}: {error}"))
}

/// Start the attested group's Noise handshake to the attested key; returns message 1
/// (empty payload).
pub(crate) fn start_handshake(
    enclave: &AttestedEnclave,
) -> Result<(ExpectHandshakeReply, Vec<u8>)> {
    let pattern = enclave.handshake();
    let mut handshake =
        snow::Builder::with_resolver(pattern.params(), Box::new(client_resolver()?))
            .remote_public_key(enclave.public_key())
            .and_then(|builder| builder.build_initiator())
            .map_err(|error| noise_error("building the initiator", error))?;
    let mut message = vec![0u8; ClientHandshake::HANDSHAKE_MESSAGE_BYTES_MAX];
    let length = handshake
        .write_message(&[], &mut message)
        .map_err(|error| noise_error("writing message 1", error))?;
    message.truncate(length);
    Ok((
        ExpectHandshakeReply {
            pattern,
            handshake: Box::new(handshake),
        },
        message,
    ))
}

impl ExpectHandshakeReply {
    /// Read message 2 and enter transport mode. Message 2 must have exactly the size of the
    /// pattern with an empty payload (48 bytes for NK, 1632 for NKhfs).
    pub(crate) fn on_reply(mut self, message: &[u8]) -> Result<NoiseChannel> {
        let expected = self.pattern.message_2_bytes();
        if message.len() != expected {
            return Err(Error::Protocol(format!(
                "handshake message 2 is {} bytes; {} with an empty payload takes exactly {expected}",
                message.len(),
                self.pattern.pattern()
            )));
        }
        let mut payload = vec![0u8; message.len()];
        let length = self
            .handshake
            .read_message(message, &mut payload)
            .map_err(|error| noise_error("reading message 2", error))?;
        // Unreachable while the size check holds; kept so the rule stands on its own.
        if length != 0 {
            return Err(Error::Protocol(
                "handshake message 2 carries a payload".into(),
            ));
        }
        let handshake_hash: [u8; HANDSHAKE_HASH_BYTES] = self
            .handshake
            .get_handshake_hash()
            .try_into()
            .map_err(|_| Error::Noise("handshake hash is not 32 bytes".into()))?;
        let transport = self
            .handshake
            .into_transport_mode()
            .map_err(|error| noise_error("entering transport mode", error))?;
        Ok(NoiseChannel::new(transport, handshake_hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NOISE_MESSAGE_BYTES_MAX;
    use crate::test_support::{SimulatedEnclave, handshake_start_bytes};
    use cloister_attest::sim;

    const NOW: u64 = 1_700_000_000;

    fn allow_simulated() -> Policy {
        Policy::insecure_allow_simulated(vec![sim::measurement()])
    }

    #[test]
    fn accepts_simulated_evidence_when_allowed() {
        let enclave = SimulatedEnclave::new(7);
        let verified =
            verify_handshake_start(&enclave.handshake_start(NOW), &allow_simulated(), NOW).unwrap();
        assert_eq!(verified.public_key(), &enclave.public_key());
        assert_eq!(verified.group_id(), 7);
    }

    #[test]
    fn refuses_simulated_evidence_by_default() {
        let enclave = SimulatedEnclave::new(7);
        let strict = Policy::strict(vec![sim::measurement()]);
        let error =
            verify_handshake_start(&enclave.handshake_start(NOW), &strict, NOW).unwrap_err();
        assert!(matches!(error, Error::SimulatedRefused), "{error}");
        assert!(error.to_string().contains("insecure_allow_simulated"));
    }

    #[test]
    fn refuses_another_measurement() {
        let enclave = SimulatedEnclave::new(7);
        let policy = Policy::insecure_allow_simulated(vec![[9; 32]]);
        let error =
            verify_handshake_start(&enclave.handshake_start(NOW), &policy, NOW).unwrap_err();
        assert!(matches!(
            error,
            Error::Attestation(AttestError::MeasurementNotAccepted(_))
        ));
    }

    // SVR2 client protocol: test_only_pubkey, when sent, must be the attested key.
    #[test]
    fn refuses_a_test_key_that_differs_from_the_attested_key() {
        let enclave = SimulatedEnclave::new(7);
        let frame = handshake_start_bytes(&enclave.evidence(NOW, |_| {}), &[1; 32]);
        let error = verify_handshake_start(&frame, &allow_simulated(), NOW).unwrap_err();
        assert!(matches!(error, Error::TestKeyMismatch));
        // An empty test key is fine: the attested key is what counts.
        let frame = handshake_start_bytes(&enclave.evidence(NOW, |_| {}), &[]);
        assert!(verify_handshake_start(&frame, &allow_simulated(), NOW).is_ok());
    }

    #[test]
    fn refuses_tampered_and_stale_evidence_and_garbage() {
        let enclave = SimulatedEnclave::new(7);
        let mut evidence = enclave.evidence(NOW, |_| {});
        evidence.attestation_data[3] ^= 1;
        let frame = handshake_start_bytes(&evidence, &[]);
        assert!(matches!(
            verify_handshake_start(&frame, &allow_simulated(), NOW),
            Err(Error::Attestation(_))
        ));
        let late = NOW + Policy::EVIDENCE_AGE_MAX_SECS + 1;
        assert!(matches!(
            verify_handshake_start(&enclave.handshake_start(NOW), &allow_simulated(), late),
            Err(Error::Attestation(AttestError::Expired { .. }))
        ));
        assert!(matches!(
            verify_handshake_start(&[0xff, 0xff, 0xff], &allow_simulated(), NOW),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn refuses_groups_this_client_cannot_speak() {
        let enclave = SimulatedEnclave::new(7);
        let v3 = enclave.evidence(NOW, |group| group.db_version = 3);
        let frame = handshake_start_bytes(&v3, &[]);
        assert!(matches!(
            verify_handshake_start(&frame, &allow_simulated(), NOW),
            Err(Error::UnsupportedGroup(_))
        ));
    }

    // SVR2 client protocol: Session 3. The pattern comes from the attested group config.
    #[test]
    fn the_attested_group_config_chooses_the_pattern() {
        let enclave = SimulatedEnclave::new(7);
        let verified =
            verify_handshake_start(&enclave.handshake_start(NOW), &allow_simulated(), NOW).unwrap();
        assert_eq!(verified.handshake(), ClientHandshake::Classical);
        let frame = enclave.handshake_start_pq(NOW);
        let verified = verify_handshake_start(&frame, &allow_simulated(), NOW).unwrap();
        assert_eq!(verified.handshake(), ClientHandshake::PostQuantum);
        assert_eq!(verified.handshake().pattern(), NOISE_PATTERN_PQ);
        // A host that flips client_pq in the evidence breaks its signature.
        let mut evidence = enclave.evidence(NOW, |group| group.client_pq = true);
        let flipped = enclave.evidence(NOW, |_| {});
        evidence.attestation_data = flipped.attestation_data;
        let frame = handshake_start_bytes(&evidence, &[]);
        assert!(matches!(
            verify_handshake_start(&frame, &allow_simulated(), NOW),
            Err(Error::Attestation(_))
        ));
    }

    fn verified(enclave: &SimulatedEnclave, pattern: ClientHandshake) -> AttestedEnclave {
        let frame = match pattern {
            ClientHandshake::Classical => enclave.handshake_start(NOW),
            ClientHandshake::PostQuantum => enclave.handshake_start_pq(NOW),
        };
        verify_handshake_start(&frame, &allow_simulated(), NOW).unwrap()
    }

    // SVR2 client protocol: NK and NKhfs+Kyber1024, client initiator, both sides keep the
    // handshake hash. The responder is snow's own (PQClean's KEM): an independent one.
    #[test]
    fn noise_handshake_against_a_snow_responder_in_both_patterns() {
        for pattern in [ClientHandshake::Classical, ClientHandshake::PostQuantum] {
            let enclave = SimulatedEnclave::new(7);
            let (state, message1) = start_handshake(&verified(&enclave, pattern)).unwrap();
            assert_eq!(message1.len(), pattern.message_1_bytes());
            let mut responder = enclave.responder(pattern);
            let mut buffer = vec![0u8; NOISE_MESSAGE_BYTES_MAX];
            assert_eq!(responder.read_message(&message1, &mut buffer).unwrap(), 0);
            let length = responder.write_message(&[], &mut buffer).unwrap();
            let responder_hash = responder.get_handshake_hash().to_vec();
            let mut channel = state.on_reply(&buffer[..length]).unwrap();
            assert_eq!(
                channel.handshake_hash().as_slice(),
                responder_hash.as_slice()
            );
            let mut responder = responder.into_transport_mode().unwrap();
            let message = channel.encrypt(b"request").unwrap();
            let length = responder.read_message(&message, &mut buffer).unwrap();
            assert_eq!(&buffer[..length], b"request", "{pattern:?}");
        }
    }

    #[test]
    fn handshake_with_the_wrong_key_fails() {
        for pattern in [ClientHandshake::Classical, ClientHandshake::PostQuantum] {
            let enclave = SimulatedEnclave::new(7);
            let impostor = SimulatedEnclave::new(7);
            let (_state, message1) = start_handshake(&verified(&enclave, pattern)).unwrap();
            let mut responder = impostor.responder(pattern);
            let mut buffer = vec![0u8; NOISE_MESSAGE_BYTES_MAX];
            assert!(responder.read_message(&message1, &mut buffer).is_err());
        }
    }

    #[test]
    fn message_2_with_payload_or_garbage_is_refused() {
        let enclave = SimulatedEnclave::new(7);
        let verified = verified(&enclave, ClientHandshake::Classical);
        let (state, message1) = start_handshake(&verified).unwrap();
        let mut responder = enclave.responder(ClientHandshake::Classical);
        let mut buffer = vec![0u8; NOISE_MESSAGE_BYTES_MAX];
        responder.read_message(&message1, &mut buffer).unwrap();
        let length = responder.write_message(b"surprise", &mut buffer).unwrap();
        assert!(matches!(
            state.on_reply(&buffer[..length]),
            Err(Error::Protocol(_))
        ));
        let (state, _) = start_handshake(&verified).unwrap();
        assert!(matches!(state.on_reply(&[0; 48]), Err(Error::Noise(_))));
    }

    // Bounds: an NKhfs message 2 is exactly 1632 bytes; shorter, longer or the NK size is
    // refused with a message naming the sizes, and a tampered one fails its tag.
    #[test]
    fn pq_message_2_of_the_wrong_size_or_tampered_is_refused() {
        let enclave = SimulatedEnclave::new(7);
        let verified = verified(&enclave, ClientHandshake::PostQuantum);
        let (_, message1) = start_handshake(&verified).unwrap();
        let mut responder = enclave.responder(ClientHandshake::PostQuantum);
        let mut buffer = vec![0u8; NOISE_MESSAGE_BYTES_MAX];
        responder.read_message(&message1, &mut buffer).unwrap();
        let length = responder.write_message(&[], &mut buffer).unwrap();
        let good = buffer[..length].to_vec();
        assert_eq!(good.len(), 1632);
        for bad in [
            good[..1631].to_vec(),
            [good.as_slice(), &[0]].concat(),
            good[..48].to_vec(),
            vec![0; NOISE_MESSAGE_BYTES_MAX + 1],
        ] {
            let (state, _) = start_handshake(&verified).unwrap();
            let error = state.on_reply(&bad).unwrap_err();
            assert!(matches!(error, Error::Protocol(_)), "{error}");
            let text = error.to_string();
            assert!(
                text.contains(&format!("is {} bytes", bad.len())) && text.contains("exactly 1632"),
                "{text}"
            );
        }
        let (state, _) = start_handshake(&verified).unwrap();
        let mut tampered = good;
        tampered[40] ^= 1;
        assert!(matches!(state.on_reply(&tampered), Err(Error::Noise(_))));
    }
}
