//! The core's side of minimums: the host's `UpdateMinimums` call (leader only, checked
//! before proposing) and applying the committed entry on every replica.
//!
//! ```text
//!  UpdateMinimums ──leader? ──well formed? ──only raises? ──own values meet it?
//!                 ──every connected peer's values meet it?──▶ propose UpdateMinimums entry
//!  commit ──▶ merge (max per name) ──▶ drop peers below ──▶ re-attest client key and peer key
//! ```

use std::collections::BTreeMap;

use cloister_attest::Policy;
use cloister_proto::enclave::{EnclaveLogLevel, host_to_enclave_response::Inner as Answer};
use cloister_proto::log::{LogEntry, UpdateMinimums, log_entry};
use prost::Message;

use crate::Error;
use crate::core::{Enclave, Origin};
use crate::minimums::Minimums;
use crate::peers::short;

impl Enclave {
    /// `UpdateMinimums` from the host: check, then propose; answered when the entry commits.
    pub(crate) fn on_update_minimums(
        &mut self,
        request_id: u64,
        update: &cloister_proto::attest::MinimumLimits,
    ) -> Result<Option<Answer>, Error> {
        let Some(group) = &self.group else {
            return Err(Error::FailedPrecondition("no group yet".into()));
        };
        if !group.replication.is_leader() {
            return Err(Error::FailedPrecondition(format!(
                "this replica is not the leader (the leader is raft id {}); send update-minimums \
                 to the leader",
                group.replication.leader_id()
            )));
        }
        let update = Minimums::from_proto(update)?;
        if update.is_empty() {
            return Err(Error::InvalidArgument("no minimums given".into()));
        }
        let raised = group.minimums.raised_by(&update)?;
        let own = self.own_attested_values()?;
        raised.check(&own).map_err(|reason| {
            Error::FailedPrecondition(format!(
                "this replica would not meet the minimums: {reason}"
            ))
        })?;
        for peer in self.peers.connected_peers() {
            if let Some(attestation) = self.peers.attestation(&peer) {
                raised
                    .check(attestation.attested_values())
                    .map_err(|reason| {
                        Error::FailedPrecondition(format!(
                            "connected peer {} would not meet the minimums: {reason}",
                            short(&peer)
                        ))
                    })?;
            }
        }
        let entry = LogEntry {
            inner: Some(log_entry::Inner::UpdateMinimums(UpdateMinimums {
                limits: Some(update.to_proto()),
            })),
            forwarded_by: None,
        };
        self.propose(entry.encode_to_vec(), Origin::Host { request_id })?;
        Ok(None)
    }

    /// The values this replica's own current peer evidence attests.
    fn own_attested_values(&self) -> Result<BTreeMap<String, Vec<u8>>, Error> {
        let measurements = vec![self.env.measurement()];
        let policy = if self.env.simulated() {
            Policy::insecure_allow_simulated(measurements)
        } else {
            Policy::strict(measurements)
        }
        .with_evidence_age_max_secs(u64::MAX);
        let verified = cloister_attest::verify(
            &self.peer_evidence,
            &self.peer_endorsements,
            &policy,
            self.now_unix_secs,
        )
        .map_err(|error| {
            Error::Internal(format!(
                "this replica's own evidence does not verify: {error}"
            ))
        })?;
        Ok(verified.claims().attested_values().clone())
    }

    /// Apply a committed `UpdateMinimums` entry: merge (so every replica ends with the same
    /// limits whatever it held), drop peers below them, and re-attest with the result.
    pub(crate) fn apply_update_minimums(&mut self, update: &UpdateMinimums) -> Result<(), Error> {
        let update = Minimums::from_proto(&update.limits.clone().unwrap_or_default())
            .inspect_err(|_| self.counters.entries_rejected += 1)?;
        let now = self.now_unix_secs;
        let Some(group) = &mut self.group else {
            return Err(Error::Internal("minimums entry without a group".into()));
        };
        let merged = group.minimums.merged(&update);
        if merged == group.minimums {
            return Ok(());
        }
        group.minimums = merged;
        // The same client key, with evidence binding the new minimums: sessions keep working
        // and every new client sees the limits.
        // A platform failure leaves the evidence binding the old limits (clients then see
        // those); the group's limits themselves changed, as on every replica.
        match group
            .client_key
            .reattested(self.env.as_mut(), &group.config, &group.minimums, now)
        {
            Ok(key) => group.client_key = key,
            Err(error) => {
                let _ = self.platform_failed("client", error);
            }
        }
        self.expire_peers();
        self.refresh_peer_attestation();
        self.log(
            EnclaveLogLevel::Info,
            "the group's minimums were raised".into(),
        );
        Ok(())
    }
}
