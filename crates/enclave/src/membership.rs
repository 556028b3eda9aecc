//! Who the members of a group are: raft ids and the peer ids (static keys) behind them.
//!
//! Raft knows members only by `u64` ids. Every membership change carries the added
//! replica's peer id in its context, so every replica that applies the change learns the
//! same mapping, deterministically, from the log.

use std::collections::BTreeMap;

use cloister_proto::enclave::RaftMember;
use cloister_proto::log::MembershipContext;
use prost::Message as _;
use raft::eraftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2};

use crate::Error;

/// A replica's peer id: its X25519 static public key.
pub type PeerId = [u8; 32];

/// Raft ids are the first 8 bytes of the peer id; 0 is reserved by Raft for "none".
pub fn raft_id_of(peer_id: &PeerId) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&peer_id[..8]);
    u64::from_be_bytes(first).max(1)
}

/// The group's members by raft id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    peers: BTreeMap<u64, PeerId>,
}

impl Members {
    /// A group of one: its founder.
    pub fn founding(peer_id: PeerId) -> Self {
        Self {
            peers: BTreeMap::from([(raft_id_of(&peer_id), peer_id)]),
        }
    }

    /// Members as streamed by a peer.
    pub fn from_proto(members: &[RaftMember]) -> Result<Self, Error> {
        let mut peers = BTreeMap::new();
        for member in members {
            let peer_id: PeerId =
                member.peer_id.as_slice().try_into().map_err(|_| {
                    Error::InvalidArgument("member peer id must be 32 bytes".into())
                })?;
            if raft_id_of(&peer_id) != member.raft_id {
                return Err(Error::InvalidArgument(
                    "member raft id does not match its peer id".into(),
                ));
            }
            peers.insert(member.raft_id, peer_id);
        }
        Ok(Self { peers })
    }

    /// The peer id behind a raft id.
    pub fn peer_id(&self, raft_id: u64) -> Option<&PeerId> {
        self.peers.get(&raft_id)
    }

    /// True when `peer_id` is a member.
    pub fn contains(&self, peer_id: &PeerId) -> bool {
        self.peers.get(&raft_id_of(peer_id)) == Some(peer_id)
    }

    /// Every (raft id, peer id).
    pub fn iter(&self) -> impl Iterator<Item = (&u64, &PeerId)> {
        self.peers.iter()
    }

    /// A membership change for `peer_id`, carrying it in the context.
    pub fn change(kind: ConfChangeType, peer_id: &PeerId) -> ConfChangeV2 {
        let mut single = ConfChangeSingle::default();
        single.set_change_type(kind);
        single.node_id = raft_id_of(peer_id);
        let mut change = ConfChangeV2::default();
        change.set_changes(vec![single].into());
        change.context = MembershipContext {
            peer_id: peer_id.to_vec(),
        }
        .encode_to_vec()
        .into();
        change
    }

    /// Apply a committed change. A change whose context does not name the peer behind its
    /// raft id is refused (the same way on every replica) and changes nothing.
    pub fn apply(&mut self, change: &ConfChangeV2) -> Result<(), Error> {
        let [single] = change.get_changes() else {
            return Err(Error::Internal(
                "membership changes carry exactly one change".into(),
            ));
        };
        match single.get_change_type() {
            ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                let context = MembershipContext::decode(change.get_context())
                    .map_err(|_| Error::Internal("membership context does not decode".into()))?;
                let peer_id: PeerId = context
                    .peer_id
                    .as_slice()
                    .try_into()
                    .map_err(|_| Error::Internal("membership context peer id".into()))?;
                if raft_id_of(&peer_id) != single.node_id {
                    return Err(Error::Internal(
                        "membership context names another peer".into(),
                    ));
                }
                self.peers.insert(single.node_id, peer_id);
            }
            ConfChangeType::RemoveNode => {
                self.peers.remove(&single.node_id);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_carry_the_peer_id_and_apply_deterministically() {
        let (founder, joiner) = ([1u8; 32], [2u8; 32]);
        let mut members = Members::founding(founder);
        members
            .apply(&Members::change(ConfChangeType::AddLearnerNode, &joiner))
            .unwrap();
        assert!(members.contains(&joiner));
        assert_eq!(members.peer_id(raft_id_of(&joiner)), Some(&joiner));
        members
            .apply(&Members::change(ConfChangeType::RemoveNode, &joiner))
            .unwrap();
        assert!(!members.contains(&joiner));
    }

    #[test]
    fn a_context_naming_another_peer_is_refused_unchanged() {
        let mut members = Members::founding([1; 32]);
        let mut change = Members::change(ConfChangeType::AddNode, &[2; 32]);
        change.context = MembershipContext {
            peer_id: vec![3; 32],
        }
        .encode_to_vec()
        .into();
        let before = members.clone();
        assert!(members.apply(&change).is_err());
        change.context = vec![0xff, 0x01].into();
        assert!(members.apply(&change).is_err());
        assert_eq!(members, before);
    }
}
