//! The core's side of enclave-to-enclave traffic: peer evidence, frames in and out through
//! [`PeerChannels`](crate::peers::PeerChannels), and dispatch of what arrives (Raft messages, transactions).

use cloister_proto::attest::AttestationData;
use cloister_proto::e2e::{EnclaveToEnclave, enclave_to_enclave};
use cloister_proto::enclave::{EnclaveLogLevel, PeerMessage, enclave_message};
use prost::Message;

use crate::Error;
use crate::client::bound_minimums;
use crate::core::Enclave;
use crate::membership::{PeerId, raft_id_of};
use crate::minimums::Minimums;
use crate::peers::{PeerContext, PeerEvent, ungrouped_config};
use crate::replication::Replication;

impl Enclave {
    /// Evidence binding this replica's peer id and its group (or "no group yet"). When the
    /// platform fails, the current evidence stays (it expires on its own) and the failure is
    /// counted, logged and returned.
    pub(crate) fn attest_peer_key(&mut self) -> Result<(), Error> {
        let (group_config, minimum_limits) = match &self.group {
            Some(group) => (group.config, bound_minimums(&group.minimums)),
            None => (ungrouped_config(self.env.simulated()), None),
        };
        let data = AttestationData {
            public_key: self.peer_id.to_vec(),
            group_config: Some(group_config),
            minimum_limits,
        };
        match self.env.attest(&data, self.now_unix_secs) {
            Ok(attestation) => {
                self.peer_evidence = attestation.evidence.encode_to_vec();
                self.peer_endorsements = attestation.endorsements;
                Ok(())
            }
            Err(error) => Err(self.platform_failed("peer", error)),
        }
    }

    /// Count and log a platform that failed to attest `what`, as the error to return.
    pub(crate) fn platform_failed(&mut self, what: &str, error: crate::PlatformError) -> Error {
        self.counters.attestation_failures += 1;
        let text = format!("the platform could not attest the {what} key: {error}");
        self.log(EnclaveLogLevel::Warning, text.clone());
        Error::Platform(text)
    }

    /// Run `call` against the peer channels with a fresh context, then act on its events.
    fn with_peers(
        &mut self,
        call: impl FnOnce(
            &mut crate::peers::PeerChannels,
            &PeerContext,
        ) -> Result<Vec<PeerEvent>, Error>,
    ) -> Result<(), Error> {
        let mut seed = [0u8; 32];
        self.env.fill_random(&mut seed);
        let no_minimums = Minimums::NONE;
        let context = PeerContext {
            evidence: &self.peer_evidence,
            endorsements: &self.peer_endorsements,
            measurement: self.env.measurement(),
            simulated: self.env.simulated(),
            group_config: self.group.as_ref().map(|group| group.config),
            minimums: self
                .group
                .as_ref()
                .map_or(&no_minimums, |group| &group.minimums),
            now_unix_secs: self.group_time_unix_secs(),
            seed,
        };
        let events = call(&mut self.peers, &context)?;
        self.on_peer_events(events);
        Ok(())
    }

    /// Send `message` to `peer`, connecting first if needed.
    pub(crate) fn send_peer(
        &mut self,
        peer: PeerId,
        message: EnclaveToEnclave,
    ) -> Result<(), Error> {
        self.with_peers(|peers, context| {
            let frames = peers.send(&peer, &message, context)?;
            Ok(frames.into_iter().map(PeerEvent::Send).collect())
        })
    }

    /// A frame relayed by the host from `peer_id`.
    pub(crate) fn on_peer_message(&mut self, message: PeerMessage) -> Result<(), Error> {
        let peer: PeerId = message.peer_id.as_slice().try_into().map_err(|_| {
            self.counters.host_messages_malformed += 1;
            Error::HostMisbehaved("peer id must be 32 bytes".into())
        })?;
        self.with_peers(|peers, context| peers.on_frame(&peer, &message.data, context))
    }

    /// The host says messages to `peer` may have been lost.
    pub(crate) fn on_reset_peer(&mut self, peer_id: &[u8]) -> Result<(), Error> {
        let peer: PeerId = peer_id
            .try_into()
            .map_err(|_| Error::HostMisbehaved("peer id must be 32 bytes".into()))?;
        let events = self.peers.reset(&peer)?;
        self.on_peer_events(events);
        Ok(())
    }

    /// Re-attest the peer key and tell every connected peer (nothing to tell when the
    /// platform failed: the failure is logged and the old evidence stays until it expires).
    pub(crate) fn refresh_peer_attestation(&mut self) {
        if self.attest_peer_key().is_err() {
            return;
        }
        let _ = self.with_peers(|peers, context| Ok(peers.refresh_attestation(context)));
    }

    /// Drop peers whose evidence is too old by group time.
    pub(crate) fn expire_peers(&mut self) {
        let _ = self.with_peers(|peers, context| Ok(peers.expire(context)));
    }

    fn on_peer_events(&mut self, events: Vec<PeerEvent>) {
        for event in events {
            match event {
                PeerEvent::Send(outbound) => {
                    self.counters.peer_frames_sent += 1;
                    let message = PeerMessage {
                        peer_id: outbound.peer.to_vec(),
                        data: outbound.frame,
                    };
                    self.emit(enclave_message::Inner::PeerMessage(message));
                }
                PeerEvent::Connected { peer, attestation }
                | PeerEvent::Reattested { peer, attestation } => {
                    self.counters.peer_connections += 1;
                    let standing = match attestation.group_config() {
                        Some(_) => "in our group",
                        None => "not in a group yet",
                    };
                    let message = format!("peer {} attested, {standing}", short(&peer));
                    self.log(EnclaveLogLevel::Info, message);
                }
                PeerEvent::Received { peer, message } => self.on_peer_received(peer, message),
                PeerEvent::Disconnected { peer, reason } => {
                    self.counters.peer_disconnections += 1;
                    self.log(
                        EnclaveLogLevel::Warning,
                        format!("peer {} disconnected: {reason}", short(&peer)),
                    );
                    self.fail_transactions_to(&peer, &reason);
                }
                PeerEvent::Refused { peer, reason } => {
                    self.counters.peer_frames_refused += 1;
                    self.log(
                        EnclaveLogLevel::Warning,
                        format!("frame from {} refused: {reason}", short(&peer)),
                    );
                }
            }
        }
    }

    fn on_peer_received(&mut self, peer: PeerId, message: EnclaveToEnclave) {
        self.heard_from(&peer);
        match message.inner {
            Some(enclave_to_enclave::Inner::RaftMessage(bytes)) => {
                self.on_raft_message(peer, &bytes)
            }
            Some(enclave_to_enclave::Inner::TransactionRequest(request)) => {
                self.on_transaction_request(peer, request);
            }
            Some(enclave_to_enclave::Inner::TransactionResponse(response)) => {
                self.on_transaction_response(peer, response);
            }
            // Attestation updates are verified inside the channel; anything else is a peer
            // speaking a protocol we do not: count it and move on.
            Some(enclave_to_enclave::Inner::AttestationUpdate(_)) | None => {
                self.counters.peer_frames_refused += 1;
            }
        }
    }

    fn on_raft_message(&mut self, peer: PeerId, bytes: &[u8]) {
        let Some(group) = &mut self.group else {
            return; // not loaded yet: the leader retries once we are
        };
        if !group.members.contains(&peer) {
            self.counters.peer_frames_refused += 1;
            return;
        }
        if let Err(error) = group.replication.step(raft_id_of(&peer), bytes) {
            self.counters.peer_frames_refused += 1;
            self.log(
                EnclaveLogLevel::Warning,
                format!("raft message from {} refused: {error}", short(&peer)),
            );
        }
    }

    /// Send Raft's outgoing messages to the members they are for.
    pub(crate) fn send_raft_messages(&mut self, messages: Vec<raft::eraftpb::Message>) {
        for message in messages {
            let Some(peer) = self
                .group
                .as_ref()
                .and_then(|group| group.members.peer_id(message.to).copied())
            else {
                self.counters.raft_messages_unroutable += 1;
                continue;
            };
            let bytes = Replication::encode_message(&message);
            let envelope = EnclaveToEnclave {
                inner: Some(enclave_to_enclave::Inner::RaftMessage(bytes)),
            };
            if self.send_peer(peer, envelope).is_err() {
                self.counters.raft_messages_unroutable += 1;
            }
        }
    }
}

/// A short, loggable form of a peer id.
pub(crate) fn short(peer: &PeerId) -> String {
    hex::encode(&peer[..4])
}
