//! Counters the core keeps about itself, reported by `RequestMetrics`.
//! Counts only: nothing here can identify a user or reveal a secret.

use cloister_proto::enclave::{Metric, MetricsReply};

/// Monotonic counters.
#[derive(Default, Debug, Clone)]
pub struct Counters {
    pub(crate) client_sessions_opened: u64,
    pub(crate) client_sessions_closed: u64,
    /// Sessions closed by the core because no frame came for too long.
    pub(crate) client_sessions_expired: u64,
    pub(crate) client_handshakes_completed: u64,
    pub(crate) client_handshakes_failed: u64,
    pub(crate) client_requests_backup: u64,
    pub(crate) client_requests_expose: u64,
    pub(crate) client_requests_restore: u64,
    pub(crate) client_requests_delete: u64,
    pub(crate) client_requests_tries: u64,
    pub(crate) client_requests_invalid: u64,
    pub(crate) restores_ok: u64,
    pub(crate) restores_pin_mismatch: u64,
    pub(crate) restores_missing: u64,
    pub(crate) backups_deleted_out_of_tries: u64,
    pub(crate) host_deletes: u64,
    pub(crate) host_messages_malformed: u64,
    pub(crate) requests_unavailable: u64,
    pub(crate) transactions_cancelled: u64,
    pub(crate) entries_applied: u64,
    pub(crate) entries_rejected: u64,
    pub(crate) timer_ticks: u64,
    pub(crate) attestation_refreshes: u64,
    pub(crate) attestation_failures: u64,
    pub(crate) peer_frames_sent: u64,
    pub(crate) peer_frames_refused: u64,
    pub(crate) peer_connections: u64,
    pub(crate) peer_disconnections: u64,
    pub(crate) raft_messages_unroutable: u64,
    pub(crate) raft_writes_forwarded: u64,
    pub(crate) replicate_state_pushes: u64,
    pub(crate) healing_changes: u64,
}

/// Point-in-time values.
#[derive(Default, Debug, Clone)]
pub struct Gauges {
    pub(crate) client_sessions: u64,
    pub(crate) backups: u64,
    pub(crate) pending_requests: u64,
    pub(crate) raft_term: u64,
    pub(crate) raft_commit_index: u64,
    pub(crate) raft_applied_index: u64,
    pub(crate) raft_is_leader: u64,
    pub(crate) log_bytes: u64,
    pub(crate) log_entries: u64,
    pub(crate) timestamp_unix_secs: u64,
}

fn metric(name: &str, value: u64) -> Metric {
    Metric {
        name: name.to_owned(),
        value,
    }
}

impl Counters {
    fn to_metrics(&self) -> Vec<Metric> {
        vec![
            metric("client_sessions_opened", self.client_sessions_opened),
            metric("client_sessions_closed", self.client_sessions_closed),
            metric("client_sessions_expired", self.client_sessions_expired),
            metric(
                "client_handshakes_completed",
                self.client_handshakes_completed,
            ),
            metric("client_handshakes_failed", self.client_handshakes_failed),
            metric("client_requests_backup", self.client_requests_backup),
            metric("client_requests_expose", self.client_requests_expose),
            metric("client_requests_restore", self.client_requests_restore),
            metric("client_requests_delete", self.client_requests_delete),
            metric("client_requests_tries", self.client_requests_tries),
            metric("client_requests_invalid", self.client_requests_invalid),
            metric("restores_ok", self.restores_ok),
            metric("restores_pin_mismatch", self.restores_pin_mismatch),
            metric("restores_missing", self.restores_missing),
            metric(
                "backups_deleted_out_of_tries",
                self.backups_deleted_out_of_tries,
            ),
            metric("host_deletes", self.host_deletes),
            metric("host_messages_malformed", self.host_messages_malformed),
            metric("requests_unavailable", self.requests_unavailable),
            metric("transactions_cancelled", self.transactions_cancelled),
            metric("entries_applied", self.entries_applied),
            metric("entries_rejected", self.entries_rejected),
            metric("timer_ticks", self.timer_ticks),
            metric("attestation_refreshes", self.attestation_refreshes),
            metric("attestation_failures", self.attestation_failures),
            metric("peer_frames_sent", self.peer_frames_sent),
            metric("peer_frames_refused", self.peer_frames_refused),
            metric("peer_connections", self.peer_connections),
            metric("peer_disconnections", self.peer_disconnections),
            metric("raft_messages_unroutable", self.raft_messages_unroutable),
            metric("raft_writes_forwarded", self.raft_writes_forwarded),
            metric("replicate_state_pushes", self.replicate_state_pushes),
            metric("healing_changes", self.healing_changes),
        ]
    }
}

impl Gauges {
    fn to_metrics(&self) -> Vec<Metric> {
        vec![
            metric("client_sessions", self.client_sessions),
            metric("backups", self.backups),
            metric("pending_requests", self.pending_requests),
            metric("raft_term", self.raft_term),
            metric("raft_commit_index", self.raft_commit_index),
            metric("raft_applied_index", self.raft_applied_index),
            metric("raft_is_leader", self.raft_is_leader),
            metric("log_bytes", self.log_bytes),
            metric("log_entries", self.log_entries),
            metric("timestamp_unix_secs", self.timestamp_unix_secs),
        ]
    }
}

/// The wire form of a metrics snapshot.
pub fn to_reply(counters: &Counters, gauges: &Gauges) -> MetricsReply {
    MetricsReply {
        counters: counters.to_metrics(),
        gauges: gauges.to_metrics(),
    }
}
