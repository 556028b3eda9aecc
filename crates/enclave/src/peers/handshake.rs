//! The attested Noise KK handshake: the initiator's state while it waits, and the
//! responder's answer in one step.
//!
//! ```text
//!  AwaitSynAck::start ──Syn{evidence, endorsements, msg 1: e, es, ss}──▶ answer_syn
//!                                                                          │ verify, read, write
//!  AwaitSynAck::on_synack ◀──SynAck{evidence, endorsements, msg 2: e, ee, se}─┘ ─▶ Connected
//!        └─▶ Connected (+ messages queued meanwhile)
//! ```
//!
//! Both sides know both static keys before the first message: the initiator was told whom
//! to call, and the responder's host names the caller. Noise KK then fails unless each side
//! holds the private half of the key it claims, and each side's evidence binds that key.

use std::collections::VecDeque;

use cloister_proto::e2e::{EnclaveToEnclave, PeerFrame, Syn, SynAck, peer_frame};
use prost::Message;
use sha2::{Digest, Sha256};
use snow::HandshakeState;
use snow::params::NoiseParams;

use super::attestation::verify_handshake;
use super::connected::Connected;
use super::{PeerContext, PeerId, PeerLimits, short};
use crate::Error;
use cloister_noise::Resolver;

/// The peer handshake: both static keys known in advance.
pub(crate) const PEER_NOISE_PATTERN: &str = "Noise_KK_25519_ChaChaPoly_SHA256";
/// Binds every handshake to this protocol and version.
const PROLOGUE: &[u8] = b"cloister peer channel v1";
/// Both KK messages are an ephemeral key and an empty encrypted payload (32 + 16 bytes);
/// anything longer is refused.
const HANDSHAKE_MESSAGE_BYTES_MAX: usize = 48;

fn peer_params() -> NoiseParams {
    // A constant that parses; covered by every handshake test.
    #[allow(clippy::expect_used)]
    PEER_NOISE_PATTERN
        .parse()
        .expect("the peer Noise pattern is valid")
}

fn build(
    own_private: &[u8; 32],
    peer: &PeerId,
    seed: [u8; 32],
    initiator: bool,
) -> Result<HandshakeState, Error> {
    let builder = snow::Builder::with_resolver(peer_params(), Box::new(Resolver::seeded(seed)))
        .prologue(PROLOGUE)
        .and_then(|builder| builder.local_private_key(own_private))
        .and_then(|builder| builder.remote_public_key(peer));
    let handshake = if initiator {
        builder.and_then(|builder| builder.build_initiator())
    } else {
        builder.and_then(|builder| builder.build_responder())
    };
    handshake.map_err(|error| Error::Internal(format!("building a peer handshake: {error}")))
}

/// Messages sent to a peer before its handshake completed, flushed in order on connecting.
#[derive(Default)]
pub(super) struct Pending {
    messages: VecDeque<EnclaveToEnclave>,
    bytes: usize,
}

impl Pending {
    /// Queue `message`, refusing it (and changing nothing) when a bound would be passed.
    pub(super) fn push(
        &mut self,
        message: EnclaveToEnclave,
        limits: &PeerLimits,
    ) -> Result<(), Error> {
        let size = message.encoded_len();
        if self.messages.len() >= limits.pending_messages_max
            || self.bytes + size > limits.pending_bytes_max
        {
            return Err(Error::ResourceExhausted(format!(
                "{} messages ({} bytes) already wait for the peer's handshake",
                self.messages.len(),
                self.bytes
            )));
        }
        self.bytes += size;
        self.messages.push_back(message);
        Ok(())
    }

    /// The queued messages, oldest first.
    pub(super) fn into_messages(self) -> VecDeque<EnclaveToEnclave> {
        self.messages
    }

    /// How many messages wait.
    pub(super) fn len(&self) -> usize {
        self.messages.len()
    }
}

/// We sent a Syn and wait for the peer's SynAck.
pub(super) struct AwaitSynAck {
    handshake: Box<HandshakeState>,
    pending: Pending,
    started_unix_secs: u64,
    /// SHA-256 of the evidence our Syn carried, to tell whether it went stale meanwhile.
    evidence_sent_digest: [u8; 32],
}

/// A SynAck that completed the handshake.
pub(super) struct Accepted {
    pub(super) connected: Connected,
    pub(super) pending: Pending,
    /// Our evidence was refreshed after the Syn left: the peer should get the new one.
    pub(super) evidence_stale: bool,
}

impl AwaitSynAck {
    /// Start a handshake with `peer`. Returns the state and the serialized Syn frame.
    pub(super) fn start(
        own_private: &[u8; 32],
        peer: &PeerId,
        ctx: &PeerContext<'_>,
        seed: [u8; 32],
    ) -> Result<(Self, Vec<u8>), Error> {
        let mut handshake = build(own_private, peer, seed, true)?;
        let mut message = [0u8; HANDSHAKE_MESSAGE_BYTES_MAX];
        let length = handshake
            .write_message(&[], &mut message)
            .map_err(|error| Error::Internal(format!("writing KK message 1: {error}")))?;
        let syn = Syn {
            evidence: ctx.evidence.to_vec(),
            endorsements: ctx.endorsements.to_vec(),
            noise: message[..length].to_vec(),
        };
        let state = Self {
            handshake: Box::new(handshake),
            pending: Pending::default(),
            started_unix_secs: ctx.now_unix_secs,
            evidence_sent_digest: Sha256::digest(ctx.evidence).into(),
        };
        let frame = PeerFrame {
            inner: Some(peer_frame::Inner::Syn(syn)),
        };
        Ok((state, frame.encode_to_vec()))
    }

    /// Queue a message until the handshake completes.
    pub(super) fn queue(
        &mut self,
        message: EnclaveToEnclave,
        limits: &PeerLimits,
    ) -> Result<(), Error> {
        self.pending.push(message, limits)
    }

    /// How many messages wait for the handshake.
    pub(super) fn queued(&self) -> usize {
        self.pending.len()
    }

    /// When the Syn was sent, by the caller's clock.
    pub(super) fn started_unix_secs(&self) -> u64 {
        self.started_unix_secs
    }

    /// Give up the attempt, keeping what was queued (simultaneous open: we answer instead).
    pub(super) fn into_pending(self) -> Pending {
        self.pending
    }

    /// Verify the peer's SynAck and finish the handshake. Consumes the state: a bad SynAck
    /// ends the attempt (its handshake hash already absorbed the bad message).
    pub(super) fn on_synack(
        mut self,
        synack: &SynAck,
        peer: &PeerId,
        ctx: &PeerContext<'_>,
    ) -> Result<Accepted, Error> {
        let attestation = verify_handshake(&synack.evidence, &synack.endorsements, peer, ctx)?;
        read_empty(&mut self.handshake, &synack.noise, peer, 2)?;
        let transport = self
            .handshake
            .into_transport_mode()
            .map_err(|error| Error::Internal(format!("entering transport mode: {error}")))?;
        check_remote_static(transport.get_remote_static(), peer)?;
        let evidence_now: [u8; 32] = Sha256::digest(ctx.evidence).into();
        Ok(Accepted {
            connected: Connected::new(transport, attestation),
            pending: self.pending,
            evidence_stale: evidence_now != self.evidence_sent_digest,
        })
    }
}

/// Answer `peer`'s Syn: verify its evidence, read KK message 1, write message 2. Returns
/// the connection and the serialized SynAck frame. Changes nothing on `Err`.
pub(super) fn answer_syn(
    own_private: &[u8; 32],
    peer: &PeerId,
    syn: &Syn,
    ctx: &PeerContext<'_>,
    seed: [u8; 32],
) -> Result<(Connected, Vec<u8>), Error> {
    let attestation = verify_handshake(&syn.evidence, &syn.endorsements, peer, ctx)?;
    let mut handshake = build(own_private, peer, seed, false)?;
    read_empty(&mut handshake, &syn.noise, peer, 1)?;
    let mut message = [0u8; HANDSHAKE_MESSAGE_BYTES_MAX];
    let length = handshake
        .write_message(&[], &mut message)
        .map_err(|error| Error::Internal(format!("writing KK message 2: {error}")))?;
    let transport = handshake
        .into_transport_mode()
        .map_err(|error| Error::Internal(format!("entering transport mode: {error}")))?;
    check_remote_static(transport.get_remote_static(), peer)?;
    let synack = SynAck {
        evidence: ctx.evidence.to_vec(),
        endorsements: ctx.endorsements.to_vec(),
        noise: message[..length].to_vec(),
    };
    let frame = PeerFrame {
        inner: Some(peer_frame::Inner::Synack(synack)),
    };
    Ok((
        Connected::new(transport, attestation),
        frame.encode_to_vec(),
    ))
}

/// Read handshake message `number`, whose payload must be empty.
fn read_empty(
    handshake: &mut HandshakeState,
    message: &[u8],
    peer: &PeerId,
    number: u8,
) -> Result<(), Error> {
    let refused = |reason: String| {
        Error::InvalidArgument(format!(
            "peer {} handshake refused: KK message {number} {reason}",
            short(peer)
        ))
    };
    if message.len() > HANDSHAKE_MESSAGE_BYTES_MAX {
        return Err(refused(format!("has {} bytes", message.len())));
    }
    let mut payload = [0u8; HANDSHAKE_MESSAGE_BYTES_MAX];
    let length = handshake
        .read_message(message, &mut payload)
        .map_err(|error| {
            refused(format!(
                "does not verify ({error}): forged, or the sender lacks the key it claims"
            ))
        })?;
    if length != 0 {
        return Err(refused("carries a payload".into()));
    }
    Ok(())
}

/// KK fixes the remote static key in advance; check that Noise ended with that key.
fn check_remote_static(remote: Option<&[u8]>, peer: &PeerId) -> Result<(), Error> {
    if remote != Some(peer.as_slice()) {
        return Err(Error::Internal(
            "the Noise remote static key is not the peer id".into(),
        ));
    }
    Ok(())
}
