//! Healing: the leader keeps the group's membership matched to who is alive.
//!
//! On every tick the leader proposes at most one membership change (Raft allows one in
//! flight):
//! 1. demote a voter it has not heard from for `voting_timeout_secs`;
//! 2. remove a member it has not heard from for `membership_timeout_secs`, or one so far
//!    behind that the leader's log no longer holds what it needs;
//! 3. promote a learner that is caught up and alive, while voters < `max_voting_replicas`.
//!
//! Client writes are refused (4014, nothing changed) while the group has fewer than
//! `min_voting_replicas` voters.

use raft::eraftpb::ConfChangeType;

use crate::Error;
use crate::core::Enclave;
use crate::membership::PeerId;

/// A learner within this many entries of the commit index counts as caught up.
pub const PROMOTION_LAG_ENTRIES_MAX: u64 = 64;

impl Enclave {
    /// Note that `peer` was heard from now.
    pub(crate) fn heard_from(&mut self, peer: &PeerId) {
        self.last_heard.insert(*peer, self.now_unix_secs);
    }

    /// Refuse writes while the group has too few voters.
    pub(crate) fn check_min_voters(&self) -> Result<(), Error> {
        let Some(group) = &self.group else {
            return Ok(());
        };
        let voters = group
            .replication
            .members()
            .iter()
            .filter(|(_, voting, _)| *voting)
            .count();
        let min = group.config.min_voting_replicas as usize;
        if voters < min {
            return Err(Error::Unavailable(format!(
                "the group has {voters} voters, fewer than its minimum of {min}"
            )));
        }
        Ok(())
    }

    /// One healing step; the leader only.
    pub(crate) fn heal(&mut self) {
        let Some(change) = self.healing_change() else {
            return;
        };
        let (kind, peer) = change;
        let Some(group) = &mut self.group else { return };
        if group
            .replication
            .propose_conf_change(crate::membership::Members::change(kind, &peer))
            .is_ok()
        {
            self.counters.healing_changes += 1;
            let what = match kind {
                ConfChangeType::AddNode => "promoting",
                ConfChangeType::AddLearnerNode => "demoting",
                ConfChangeType::RemoveNode => "removing",
            };
            let message = format!("healing: {what} {}", crate::peer_calls::short(&peer));
            self.log(cloister_proto::enclave::EnclaveLogLevel::Info, message);
        }
    }

    fn healing_change(&self) -> Option<(ConfChangeType, PeerId)> {
        let group = self.group.as_ref()?;
        if !group.replication.is_leader() || group.replication.conf_change_pending() {
            return None;
        }
        let now = self.now_unix_secs;
        let silent_for = |peer: &PeerId| {
            now.saturating_sub(
                *self
                    .last_heard
                    .get(peer)
                    .unwrap_or(&self.leader_since_unix_secs),
            )
        };
        let members = group.replication.members();
        let voters = members.iter().filter(|(_, voting, _)| *voting).count() as u32;
        let commit = group.replication.commit_index();
        let mut promote = None;
        for (raft_id, voting, matched) in members {
            if raft_id == self.raft_id {
                continue;
            }
            let Some(peer) = group.members.peer_id(raft_id).copied() else {
                continue;
            };
            let silence = silent_for(&peer);
            if silence >= u64::from(group.config.membership_timeout_secs) {
                return Some((ConfChangeType::RemoveNode, peer));
            }
            // Behind what this leader's log still holds (the next append to it names the term
            // of its last entry): without raft snapshots it can never catch up, so it leaves
            // and rejoins by streaming state.
            if matched > 0 && group.replication.term_of(matched).is_err() {
                return Some((ConfChangeType::RemoveNode, peer));
            }
            if voting && silence >= u64::from(group.config.voting_timeout_secs) {
                return Some((ConfChangeType::AddLearnerNode, peer));
            }
            let caught_up = matched + PROMOTION_LAG_ENTRIES_MAX >= commit && matched > 0;
            if !voting
                && caught_up
                && silence < u64::from(group.config.voting_timeout_secs)
                && promote.is_none()
            {
                promote = Some(peer);
            }
        }
        if voters < group.config.max_voting_replicas {
            return promote.map(|peer| (ConfChangeType::AddNode, peer));
        }
        None
    }
}
