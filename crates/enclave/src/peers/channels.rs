//! The table of peer connections and its outbound side: sending, attestation refreshes,
//! expiry and resets. Inbound frames are in `inbound.rs`.
//!
//! ```text
//!   (none) ───────send───────▶ AwaitSynAck ───SynAck verified───▶ Connected
//!   (none) ─────────────────Syn verified: we answer─────────────▶ Connected
//!   AwaitSynAck ──Syn verified and our id is larger: we answer──▶ Connected
//!   Connected ────Syn verified: the peer started over───────────▶ Connected (new)
//!   either ───Rst in, bad frame, expiry, reset───▶ (none), with an Rst out
//! ```

use std::collections::BTreeMap;

use cloister_proto::e2e::{
    AttestationUpdate, EnclaveToEnclave, PeerFrame, Rst, enclave_to_enclave, peer_frame,
};
use prost::Message;
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::attestation::PeerAttestation;
use super::attestation::attestation_timeout_secs;
use super::connected::Connected;
use super::handshake::AwaitSynAck;
use super::{Outbound, PeerContext, PeerEvent, PeerId, PeerLimits, RST_REASON_BYTES_MAX, short};
use crate::Error;

/// One peer's connection, in the state named after what it waits for.
pub(super) enum Connection {
    /// We sent a Syn; messages queue until the SynAck.
    AwaitSynAck(AwaitSynAck),
    /// Attested both ways; messages flow.
    Connected(Box<Connected>),
}

/// A connection's state, for status reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectionState {
    /// We sent a Syn and wait for the SynAck; `queued` messages wait with us.
    AwaitSynAck { queued: usize },
    /// Connected; the peer's evidence was produced at `attested_at_unix_secs`.
    Connected { attested_at_unix_secs: u64 },
}

/// Every connection this enclave has with its peers, keyed by peer id.
pub(crate) struct PeerChannels {
    pub(super) own_private: Zeroizing<[u8; 32]>,
    pub(super) own_id: PeerId,
    pub(super) limits: PeerLimits,
    pub(super) connections: BTreeMap<PeerId, Connection>,
    /// Mixed into every handshake seed, so a seed the caller reuses never repeats a key.
    handshakes_started: u64,
}

impl std::fmt::Debug for PeerChannels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerChannels")
            .field("own_id", &hex::encode(self.own_id))
            .field("own_private", &"<redacted>")
            .field("connections", &self.connections.len())
            .finish_non_exhaustive()
    }
}

impl PeerChannels {
    /// Channels for the enclave whose peer private key is `own_private`.
    pub(crate) fn new(own_private: &[u8; 32], limits: PeerLimits) -> Self {
        let own_id = PublicKey::from(&StaticSecret::from(*own_private)).to_bytes();
        Self {
            own_private: Zeroizing::new(*own_private),
            own_id,
            limits,
            connections: BTreeMap::new(),
            handshakes_started: 0,
        }
    }

    /// Send `message` to `to`: now if connected, else queued behind a handshake this call
    /// may start (its Syn is among the returned frames). Changes nothing on `Err`, except
    /// that a connection whose encryption failed (nonce exhaustion) is dropped.
    pub(crate) fn send(
        &mut self,
        to: &PeerId,
        message: &EnclaveToEnclave,
        ctx: &PeerContext<'_>,
    ) -> Result<Vec<Outbound>, Error> {
        self.check_sendable(to, message)?;
        match self.connections.get_mut(to) {
            Some(Connection::Connected(connected)) => match connected.seal(message) {
                Ok(frames) => Ok(outbound(to, frames)),
                Err(error) => {
                    self.connections.remove(to);
                    Err(error)
                }
            },
            Some(Connection::AwaitSynAck(attempt)) => {
                attempt.queue(message.clone(), &self.limits)?;
                Ok(Vec::new())
            }
            None => self.connect(to, message, ctx),
        }
    }

    fn check_sendable(&self, to: &PeerId, message: &EnclaveToEnclave) -> Result<(), Error> {
        if *to == self.own_id {
            return Err(Error::InvalidArgument(
                "an enclave does not send peer messages to itself".into(),
            ));
        }
        match &message.inner {
            None => return Err(Error::InvalidArgument("peer message is empty".into())),
            Some(enclave_to_enclave::Inner::AttestationUpdate(_)) => {
                return Err(Error::InvalidArgument(
                    "attestation updates are sent by refresh_attestation".into(),
                ));
            }
            Some(_) => {}
        }
        let size = message.encoded_len();
        if size > self.limits.message_bytes_max {
            return Err(Error::InvalidArgument(format!(
                "peer message of {size} bytes exceeds the {} allowed",
                self.limits.message_bytes_max
            )));
        }
        Ok(())
    }

    fn connect(
        &mut self,
        to: &PeerId,
        message: &EnclaveToEnclave,
        ctx: &PeerContext<'_>,
    ) -> Result<Vec<Outbound>, Error> {
        self.check_room()?;
        let (mut attempt, syn) = AwaitSynAck::start(&self.own_private, to, ctx, self.seed(ctx))?;
        attempt.queue(message.clone(), &self.limits)?;
        self.count_handshake();
        self.connections
            .insert(*to, Connection::AwaitSynAck(attempt));
        Ok(vec![Outbound {
            peer: *to,
            frame: syn,
        }])
    }

    /// Refuse a new connection when the table is full.
    pub(super) fn check_room(&self) -> Result<(), Error> {
        if self.connections.len() >= self.limits.connections_max {
            return Err(Error::ResourceExhausted(format!(
                "busy: {} peer connections, the most allowed",
                self.connections.len()
            )));
        }
        Ok(())
    }

    /// The seed for the next handshake (count it with `handshakes_started` once it is used).
    pub(super) fn seed(&self, ctx: &PeerContext<'_>) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(b"cloister peer handshake seed");
        hash.update(ctx.seed);
        hash.update(self.handshakes_started.to_be_bytes());
        hash.finalize().into()
    }

    /// Count a handshake that used [`Self::seed`].
    pub(super) fn count_handshake(&mut self) {
        self.handshakes_started += 1;
    }

    /// Send our current evidence to every connected peer (after the core refreshed it).
    /// Handshakes in flight send it when they complete, if it changed meanwhile.
    pub(crate) fn refresh_attestation(&mut self, ctx: &PeerContext<'_>) -> Vec<PeerEvent> {
        let update = attestation_update(ctx);
        let mut events = Vec::new();
        for peer in self.connected_peers() {
            events.extend(self.seal_or_drop(&peer, &update));
        }
        events
    }

    /// Drop connections whose peer evidence is older than the attestation timeout at
    /// `ctx.now_unix_secs` or no longer meets `ctx.minimums`, and handshakes older than the
    /// handshake timeout.
    pub(crate) fn expire(&mut self, ctx: &PeerContext<'_>) -> Vec<PeerEvent> {
        let expired: Vec<(PeerId, Error)> = self
            .connections
            .iter()
            .filter_map(|(peer, connection)| {
                let reason = self.expiry(peer, connection, ctx)?;
                Some((*peer, Error::Unavailable(reason)))
            })
            .collect();
        let mut events = Vec::new();
        for (peer, reason) in expired {
            events.extend(self.drop_connection(&peer, reason));
        }
        events
    }

    /// Why `connection` has expired at `ctx.now_unix_secs`, if it has.
    fn expiry(
        &self,
        peer: &PeerId,
        connection: &Connection,
        ctx: &PeerContext<'_>,
    ) -> Option<String> {
        let now = ctx.now_unix_secs;
        match connection {
            Connection::Connected(connected) => {
                if let Err(reason) = ctx
                    .minimums
                    .check(connected.attestation().attested_values())
                {
                    let peer = short(peer);
                    return Some(format!(
                        "peer {peer} no longer meets the minimums: {reason}"
                    ));
                }
                let at = connected.attestation().attested_at_unix_secs();
                let timeout = attestation_timeout_secs(ctx);
                (now.saturating_sub(at) > timeout).then(|| {
                    let peer = short(peer);
                    format!("peer {peer}'s evidence from {at} is older than {timeout}s at {now}")
                })
            }
            Connection::AwaitSynAck(attempt) => {
                let at = attempt.started_unix_secs();
                let timeout = self.limits.handshake_timeout_secs;
                (now.saturating_sub(at) > timeout)
                    .then(|| format!("no SynAck from peer {} within {timeout}s", short(peer)))
            }
        }
    }

    /// The host may have lost frames to or from `peer` (ResetPeer): drop the connection, so
    /// the next send reconnects. `NotFound` when there is none.
    pub(crate) fn reset(&mut self, peer: &PeerId) -> Result<Vec<PeerEvent>, Error> {
        if !self.connections.contains_key(peer) {
            return Err(Error::NotFound(format!(
                "no connection with peer {}",
                short(peer)
            )));
        }
        let reason = Error::Unavailable("the host reset the connection".into());
        Ok(self.drop_connection(peer, reason))
    }

    /// The state of the connection with `peer`, if any.
    pub(crate) fn connection_state(&self, peer: &PeerId) -> Option<ConnectionState> {
        self.connections
            .get(peer)
            .map(|connection| match connection {
                Connection::AwaitSynAck(attempt) => ConnectionState::AwaitSynAck {
                    queued: attempt.queued(),
                },
                Connection::Connected(connected) => ConnectionState::Connected {
                    attested_at_unix_secs: connected.attestation().attested_at_unix_secs(),
                },
            })
    }

    /// The latest verified attestation of a connected peer.
    pub(crate) fn attestation(&self, peer: &PeerId) -> Option<&PeerAttestation> {
        match self.connections.get(peer) {
            Some(Connection::Connected(connected)) => Some(connected.attestation()),
            _ => None,
        }
    }

    /// Connected peers, in id order.
    pub(crate) fn connected_peers(&self) -> Vec<PeerId> {
        let connected = |(peer, connection): (&PeerId, &Connection)| {
            matches!(connection, Connection::Connected(_)).then_some(*peer)
        };
        self.connections.iter().filter_map(connected).collect()
    }

    /// Every peer with a connection, handshaking or established, in id order.
    pub(crate) fn peers(&self) -> Vec<PeerId> {
        self.connections.keys().copied().collect()
    }

    /// Connections, handshaking or established.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.connections.len()
    }

    /// Encrypt `message` to the connected `peer`; drop the connection if that fails.
    pub(super) fn seal_or_drop(
        &mut self,
        peer: &PeerId,
        message: &EnclaveToEnclave,
    ) -> Vec<PeerEvent> {
        let Some(Connection::Connected(connected)) = self.connections.get_mut(peer) else {
            return Vec::new();
        };
        match connected.seal(message) {
            Ok(frames) => outbound(peer, frames)
                .into_iter()
                .map(PeerEvent::Send)
                .collect(),
            Err(error) => self.drop_connection(peer, error),
        }
    }

    /// End the connection with `peer`: tell it why, and report it.
    pub(super) fn drop_connection(&mut self, peer: &PeerId, reason: Error) -> Vec<PeerEvent> {
        self.connections.remove(peer);
        vec![
            rst(peer, &reason),
            PeerEvent::Disconnected {
                peer: *peer,
                reason,
            },
        ]
    }
}

/// Our current evidence, as an update for connected peers.
pub(super) fn attestation_update(ctx: &PeerContext<'_>) -> EnclaveToEnclave {
    EnclaveToEnclave {
        inner: Some(enclave_to_enclave::Inner::AttestationUpdate(
            AttestationUpdate {
                evidence: ctx.evidence.to_vec(),
                endorsements: ctx.endorsements.to_vec(),
            },
        )),
    }
}

fn outbound(peer: &PeerId, frames: Vec<Vec<u8>>) -> Vec<Outbound> {
    frames
        .into_iter()
        .map(|frame| Outbound { peer: *peer, frame })
        .collect()
}

/// An Rst frame for `peer` carrying `reason` (bounded; errors here never carry secrets).
pub(super) fn rst(peer: &PeerId, reason: &Error) -> PeerEvent {
    let frame = PeerFrame {
        inner: Some(peer_frame::Inner::Rst(Rst {
            reason: bounded(reason.to_string()),
        })),
    };
    PeerEvent::Send(Outbound {
        peer: *peer,
        frame: frame.encode_to_vec(),
    })
}

/// `text` cut to at most [`RST_REASON_BYTES_MAX`] bytes, on a character boundary.
pub(super) fn bounded(mut text: String) -> String {
    if text.len() > RST_REASON_BYTES_MAX {
        let mut end = RST_REASON_BYTES_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
