//! Frames from peers, by kind and by the state of the sender's connection.
//!
//! ```text
//!  frame \ state   (none)                AwaitSynAck                 Connected
//!  Syn             answer                answer if our id is larger,  answer, replacing it
//!                                        else leave it to the peer
//!  SynAck          Rst, Refused          finish or drop               drop
//!  data            Rst, Refused          drop                         open, or drop
//!  Rst             NotFound              Disconnected                 Disconnected
//!  garbage         HostMisbehaved        drop                         drop
//! ```
//!
//! "drop" is Rst to the peer plus `Disconnected`; "Refused" is Rst plus `Refused` with no
//! connection touched. An Rst is unauthenticated, so a host can forge one: like dropping
//! frames, that denies service and nothing more.

use cloister_proto::e2e::{
    AttestationUpdate, EnclaveToEnclave, PeerFrame, Syn, SynAck, enclave_to_enclave, peer_frame,
};
use prost::Message;

use super::attestation::verify_update;
use super::channels::{Connection, PeerChannels, attestation_update, bounded, rst};
use super::handshake::{Pending, answer_syn};
use super::{PEER_FRAME_BYTES_MAX, PeerContext, PeerEvent, PeerId, short};
use crate::Error;

impl PeerChannels {
    /// Handle one frame the host says came from peer `from`.
    ///
    /// `Err` means the frame was refused, nothing changed and nothing is to be sent. `Ok`
    /// events say what happened, including a connection reset by a bad frame (which
    /// touches no other connection).
    pub(crate) fn on_frame(
        &mut self,
        from: &PeerId,
        frame: &[u8],
        ctx: &PeerContext<'_>,
    ) -> Result<Vec<PeerEvent>, Error> {
        if *from == self.own_id {
            return Err(Error::HostMisbehaved(
                "peer frame claims to come from this enclave".into(),
            ));
        }
        let inner = match decode(frame) {
            Ok(inner) => inner,
            Err(error) if self.connections.contains_key(from) => {
                return Ok(self.drop_connection(from, error));
            }
            Err(error) => return Err(error),
        };
        match inner {
            peer_frame::Inner::Syn(syn) => Ok(self.on_syn(from, &syn, ctx)),
            peer_frame::Inner::Synack(synack) => Ok(self.on_synack(from, &synack, ctx)),
            peer_frame::Inner::Data(data) => Ok(self.on_data(from, &data, ctx)),
            peer_frame::Inner::Rst(rst) => self.on_rst(from, &rst.reason),
        }
    }

    fn on_syn(&mut self, from: &PeerId, syn: &Syn, ctx: &PeerContext<'_>) -> Vec<PeerEvent> {
        match self.connections.get(from) {
            // Simultaneous open: the larger id answers, so the peer will answer our Syn.
            Some(Connection::AwaitSynAck(_)) if self.own_id < *from => return Vec::new(),
            None => {
                if let Err(error) = self.check_room() {
                    return self.refuse(from, error);
                }
            }
            Some(_) => {}
        }
        let (connected, synack) =
            match answer_syn(&self.own_private, from, syn, ctx, self.seed(ctx)) {
                Ok(answer) => answer,
                Err(error) => return self.refuse(from, error),
            };
        self.count_handshake();
        let mut events = Vec::new();
        let pending = match self.connections.remove(from) {
            Some(Connection::AwaitSynAck(attempt)) => attempt.into_pending(),
            Some(Connection::Connected(_)) => {
                let reason = Error::Unavailable(format!(
                    "peer {} opened a new connection, replacing this one",
                    short(from)
                ));
                events.push(PeerEvent::Disconnected {
                    peer: *from,
                    reason,
                });
                Pending::default()
            }
            None => Pending::default(),
        };
        events.push(PeerEvent::Send(super::Outbound {
            peer: *from,
            frame: synack,
        }));
        events.push(PeerEvent::Connected {
            peer: *from,
            attestation: connected.attestation().clone(),
        });
        self.connections
            .insert(*from, Connection::Connected(Box::new(connected)));
        events.extend(self.flush(from, pending));
        events
    }

    fn on_synack(
        &mut self,
        from: &PeerId,
        synack: &SynAck,
        ctx: &PeerContext<'_>,
    ) -> Vec<PeerEvent> {
        match self.connections.remove(from) {
            Some(Connection::AwaitSynAck(attempt)) => match attempt.on_synack(synack, from, ctx) {
                Ok(accepted) => {
                    let mut events = vec![PeerEvent::Connected {
                        peer: *from,
                        attestation: accepted.connected.attestation().clone(),
                    }];
                    self.connections
                        .insert(*from, Connection::Connected(Box::new(accepted.connected)));
                    if accepted.evidence_stale {
                        events.extend(self.seal_or_drop(from, &attestation_update(ctx)));
                    }
                    events.extend(self.flush(from, accepted.pending));
                    events
                }
                Err(reason) => self.drop_connection(from, reason),
            },
            Some(connected @ Connection::Connected(_)) => {
                self.connections.insert(*from, connected);
                let reason = Error::FailedPrecondition(format!(
                    "SynAck from peer {} which is already connected",
                    short(from)
                ));
                self.drop_connection(from, reason)
            }
            None => self.refuse(
                from,
                Error::FailedPrecondition(format!(
                    "SynAck from peer {} with no handshake in progress",
                    short(from)
                )),
            ),
        }
    }

    fn on_data(&mut self, from: &PeerId, data: &[u8], ctx: &PeerContext<'_>) -> Vec<PeerEvent> {
        let message_bytes_max = self.limits.message_bytes_max;
        let opened = match self.connections.get_mut(from) {
            Some(Connection::Connected(connected)) => connected.open(data, message_bytes_max),
            Some(Connection::AwaitSynAck(_)) => Err(Error::FailedPrecondition(format!(
                "data from peer {} before its SynAck",
                short(from)
            ))),
            None => {
                let reason = Error::FailedPrecondition(format!(
                    "data from peer {} with no connection",
                    short(from)
                ));
                return self.refuse(from, reason);
            }
        };
        match opened {
            Ok(None) => Vec::new(),
            Ok(Some(message)) => self.on_message(from, message, ctx),
            Err(reason) => self.drop_connection(from, reason),
        }
    }

    fn on_message(
        &mut self,
        from: &PeerId,
        message: EnclaveToEnclave,
        ctx: &PeerContext<'_>,
    ) -> Vec<PeerEvent> {
        match message.inner {
            Some(enclave_to_enclave::Inner::AttestationUpdate(update)) => {
                self.on_attestation_update(from, &update, ctx)
            }
            _ => vec![PeerEvent::Received {
                peer: *from,
                message,
            }],
        }
    }

    fn on_attestation_update(
        &mut self,
        from: &PeerId,
        update: &AttestationUpdate,
        ctx: &PeerContext<'_>,
    ) -> Vec<PeerEvent> {
        let verified = verify_update(&update.evidence, &update.endorsements, from, ctx);
        match (verified, self.connections.get_mut(from)) {
            (Ok(attestation), Some(Connection::Connected(connected))) => {
                connected.set_attestation(attestation.clone());
                vec![PeerEvent::Reattested {
                    peer: *from,
                    attestation,
                }]
            }
            (Err(reason), _) => self.drop_connection(from, reason),
            // on_data only calls this for a connected peer.
            (Ok(_), _) => Vec::new(),
        }
    }

    fn on_rst(&mut self, from: &PeerId, reason: &str) -> Result<Vec<PeerEvent>, Error> {
        if self.connections.remove(from).is_none() {
            return Err(Error::NotFound(format!(
                "Rst from peer {} with no connection",
                short(from)
            )));
        }
        let reason = Error::Unavailable(format!(
            "peer {} (or its host) reset the connection: {}",
            short(from),
            bounded(reason.to_owned())
        ));
        Ok(vec![PeerEvent::Disconnected {
            peer: *from,
            reason,
        }])
    }

    /// Send what waited for the handshake, in order.
    fn flush(&mut self, peer: &PeerId, pending: Pending) -> Vec<PeerEvent> {
        let mut events = Vec::new();
        for message in pending.into_messages() {
            events.extend(self.seal_or_drop(peer, &message));
        }
        events
    }

    /// Refuse a frame without touching any connection, telling the peer why.
    fn refuse(&self, peer: &PeerId, reason: Error) -> Vec<PeerEvent> {
        vec![
            rst(peer, &reason),
            PeerEvent::Refused {
                peer: *peer,
                reason,
            },
        ]
    }
}

fn decode(frame: &[u8]) -> Result<peer_frame::Inner, Error> {
    if frame.len() > PEER_FRAME_BYTES_MAX {
        return Err(Error::HostMisbehaved(format!(
            "peer frame of {} bytes exceeds {PEER_FRAME_BYTES_MAX}",
            frame.len()
        )));
    }
    PeerFrame::decode(frame)
        .map_err(|_| Error::HostMisbehaved("bytes are not a valid PeerFrame".into()))?
        .inner
        .ok_or_else(|| Error::HostMisbehaved("peer frame is empty".into()))
}
