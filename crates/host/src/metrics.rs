//! Host counters and gauges, and their Prometheus text exposition together with the
//! enclave's own metrics.
//!
//! Host metrics are `cloister_host_*`; every enclave metric `x` from `MetricsReply` becomes
//! `cloister_x` (counters get a `_total` suffix, as Prometheus names counters).

use std::collections::BTreeSet;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use cloister_proto::enclave::MetricsReply;

use crate::error::close_code;

/// What the host counts. Each renders as `cloister_host_<name>_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Client WebSockets upgraded and handed a session.
    ConnectionsAccepted,
    /// Client connections refused because `connections_max` were open.
    ConnectionsRefused,
    /// Requests refused for missing or bad credentials.
    AuthFailures,
    /// Requests refused by the per-user rate limit (or its full table).
    RateLimited,
    /// Binary frames received from clients.
    FramesIn,
    /// Binary frames sent to clients.
    FramesOut,
    /// Payload bytes received from clients.
    BytesIn,
    /// Payload bytes sent to clients.
    BytesOut,
    /// Backups deleted through `DELETE /v1/delete` or the admin API.
    Deletes,
    /// Requests sent to the enclave.
    EnclaveCalls,
    /// Enclave answers that were errors.
    EnclaveErrors,
    /// Messages the enclave refused to decode (`handle` returned an error).
    EnclaveHandleErrors,
    /// Calls refused because `pending_calls_max` were waiting.
    EnclaveBusy,
    /// Calls that gave up waiting for the enclave.
    EnclaveTimeouts,
    /// Enclave answers nobody was waiting for any more.
    EnclaveOrphanResponses,
    /// Messages drained from the enclave.
    EnclaveMessagesOut,
    /// Log records the enclave emitted.
    EnclaveLogRecords,
    /// Peer messages dropped because no peer transport runs (`peer_listen_addr` unset).
    EnclavePeerMessagesDropped,
    /// Timer ticks sent to the enclave.
    Ticks,
    /// Requests served by the admin API.
    AdminRequests,
    /// Peer transport frames written (every kind).
    PeerFramesOut,
    /// Peer transport frames read (every kind).
    PeerFramesIn,
    /// Peer transport bytes written, length prefixes included.
    PeerBytesOut,
    /// Peer transport bytes read, length prefixes included.
    PeerBytesIn,
    /// Peer messages handed to the enclave.
    PeerMessagesDelivered,
    /// Data frames written again on a new link (not acknowledged on the old one).
    PeerResends,
    /// Data frames received that were already delivered, and dropped.
    PeerDuplicates,
    /// Links established to a peer that had a link before.
    PeerReconnects,
    /// Connection attempts to peers that failed.
    PeerDialFailures,
    /// Peers given up on after `abandon_after` unreachable.
    PeerAbandons,
    /// Enclave messages the transport refused (buffer full, too large, peer table full).
    PeerSendRefusals,
    /// Queued frames dropped (after a refusal, an abandon, or a peer restart).
    PeerFramesDropped,
    /// `ResetPeer`s sent to the enclave.
    PeerResets,
    /// Peer connections dropped for sending invalid frames.
    PeerViolations,
}

impl Counter {
    /// Every counter, in rendering order.
    pub const ALL: [Counter; 34] = [
        Counter::ConnectionsAccepted,
        Counter::ConnectionsRefused,
        Counter::AuthFailures,
        Counter::RateLimited,
        Counter::FramesIn,
        Counter::FramesOut,
        Counter::BytesIn,
        Counter::BytesOut,
        Counter::Deletes,
        Counter::EnclaveCalls,
        Counter::EnclaveErrors,
        Counter::EnclaveHandleErrors,
        Counter::EnclaveBusy,
        Counter::EnclaveTimeouts,
        Counter::EnclaveOrphanResponses,
        Counter::EnclaveMessagesOut,
        Counter::EnclaveLogRecords,
        Counter::EnclavePeerMessagesDropped,
        Counter::Ticks,
        Counter::AdminRequests,
        Counter::PeerFramesOut,
        Counter::PeerFramesIn,
        Counter::PeerBytesOut,
        Counter::PeerBytesIn,
        Counter::PeerMessagesDelivered,
        Counter::PeerResends,
        Counter::PeerDuplicates,
        Counter::PeerReconnects,
        Counter::PeerDialFailures,
        Counter::PeerAbandons,
        Counter::PeerSendRefusals,
        Counter::PeerFramesDropped,
        Counter::PeerResets,
        Counter::PeerViolations,
    ];

    /// The metric name without the `cloister_host_` prefix and `_total` suffix.
    pub fn name(self) -> &'static str {
        match self {
            Counter::ConnectionsAccepted => "connections_accepted",
            Counter::ConnectionsRefused => "connections_refused",
            Counter::AuthFailures => "auth_failures",
            Counter::RateLimited => "rate_limited",
            Counter::FramesIn => "frames_in",
            Counter::FramesOut => "frames_out",
            Counter::BytesIn => "bytes_in",
            Counter::BytesOut => "bytes_out",
            Counter::Deletes => "backup_deletes",
            Counter::EnclaveCalls => "enclave_calls",
            Counter::EnclaveErrors => "enclave_errors",
            Counter::EnclaveHandleErrors => "enclave_handle_errors",
            Counter::EnclaveBusy => "enclave_busy",
            Counter::EnclaveTimeouts => "enclave_timeouts",
            Counter::EnclaveOrphanResponses => "enclave_orphan_responses",
            Counter::EnclaveMessagesOut => "enclave_messages_out",
            Counter::EnclaveLogRecords => "enclave_log_records",
            Counter::EnclavePeerMessagesDropped => "enclave_peer_messages_dropped",
            Counter::Ticks => "ticks",
            Counter::AdminRequests => "admin_requests",
            Counter::PeerFramesOut => "peer_frames_out",
            Counter::PeerFramesIn => "peer_frames_in",
            Counter::PeerBytesOut => "peer_bytes_out",
            Counter::PeerBytesIn => "peer_bytes_in",
            Counter::PeerMessagesDelivered => "peer_messages_delivered",
            Counter::PeerResends => "peer_resends",
            Counter::PeerDuplicates => "peer_duplicates_dropped",
            Counter::PeerReconnects => "peer_reconnects",
            Counter::PeerDialFailures => "peer_dial_failures",
            Counter::PeerAbandons => "peer_abandons",
            Counter::PeerSendRefusals => "peer_send_refusals",
            Counter::PeerFramesDropped => "peer_frames_dropped",
            Counter::PeerResets => "peer_resets",
            Counter::PeerViolations => "peer_protocol_violations",
        }
    }
}

/// Close codes counted one by one; anything else counts as "other".
const CLOSE_CODES_COUNTED: [u16; 6] = [
    close_code::NORMAL,
    close_code::GOING_AWAY,
    close_code::MESSAGE_TOO_BIG,
    close_code::INVALID_ARGUMENT,
    close_code::INTERNAL,
    close_code::UNAVAILABLE,
];

/// The host's counters and gauges. Shared by reference; every update is one atomic add.
#[derive(Debug)]
pub struct HostMetrics {
    counters: [AtomicU64; Counter::ALL.len()],
    closes: [AtomicU64; CLOSE_CODES_COUNTED.len() + 1],
    connections_open: AtomicU64,
    pending_calls: AtomicU64,
    peers_connected: AtomicU64,
}

// Written out because `Default` for arrays stops at 32 elements.
impl Default for HostMetrics {
    fn default() -> Self {
        HostMetrics {
            counters: std::array::from_fn(|_| AtomicU64::new(0)),
            closes: std::array::from_fn(|_| AtomicU64::new(0)),
            connections_open: AtomicU64::new(0),
            pending_calls: AtomicU64::new(0),
            peers_connected: AtomicU64::new(0),
        }
    }
}

impl HostMetrics {
    /// Adds `amount` to `counter`.
    pub fn add(&self, counter: Counter, amount: u64) {
        self.counters[counter as usize].fetch_add(amount, Ordering::Relaxed);
    }

    /// Adds one to `counter`.
    pub fn increment(&self, counter: Counter) {
        self.add(counter, 1);
    }

    /// The current value of `counter`.
    pub fn counter(&self, counter: Counter) -> u64 {
        self.counters[counter as usize].load(Ordering::Relaxed)
    }

    /// Counts a WebSocket the host closed with `code`.
    pub fn record_close(&self, code: u16) {
        let slot = CLOSE_CODES_COUNTED
            .iter()
            .position(|counted| *counted == code);
        let slot = slot.unwrap_or(CLOSE_CODES_COUNTED.len());
        self.closes[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// WebSockets closed with `code` so far (codes not counted one by one read as 0).
    pub fn closes(&self, code: u16) -> u64 {
        CLOSE_CODES_COUNTED
            .iter()
            .position(|counted| *counted == code)
            .map_or(0, |slot| self.closes[slot].load(Ordering::Relaxed))
    }

    /// A client WebSocket opened.
    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    /// A client WebSocket closed.
    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Client WebSockets open now.
    pub fn connections_open(&self) -> u64 {
        self.connections_open.load(Ordering::Relaxed)
    }

    /// Records how many calls wait for the enclave now.
    pub fn set_pending_calls(&self, pending: usize) {
        self.pending_calls.store(pending as u64, Ordering::Relaxed);
    }

    /// Records how many peers have a transport link now.
    pub fn set_peers_connected(&self, connected: usize) {
        self.peers_connected
            .store(connected as u64, Ordering::Relaxed);
    }

    /// Peers with a transport link now.
    pub fn peers_connected(&self) -> u64 {
        self.peers_connected.load(Ordering::Relaxed)
    }
}

/// Renders the host's metrics and, when the enclave answered, its metrics, in the
/// Prometheus text exposition format (version 0.0.4).
pub fn render_prometheus(host: &HostMetrics, enclave: Option<&MetricsReply>) -> String {
    let mut out = String::new();
    let mut names = BTreeSet::new();
    for counter in Counter::ALL {
        let name = format!("cloister_host_{}_total", counter.name());
        family(&mut out, &name, "counter", "Host counter.");
        sample(&mut out, &name, "", host.counter(counter));
        names.insert(name);
    }
    let closes = "cloister_host_ws_closes_total";
    family(
        &mut out,
        closes,
        "counter",
        "Client WebSockets closed by the host, by close code.",
    );
    for (slot, code) in CLOSE_CODES_COUNTED.iter().enumerate() {
        let value = host.closes[slot].load(Ordering::Relaxed);
        sample(&mut out, closes, &format!("{{code=\"{code}\"}}"), value);
    }
    let other = host.closes[CLOSE_CODES_COUNTED.len()].load(Ordering::Relaxed);
    sample(&mut out, closes, "{code=\"other\"}", other);
    let gauges = [
        ("cloister_host_connections_open", host.connections_open()),
        (
            "cloister_host_pending_calls",
            host.pending_calls.load(Ordering::Relaxed),
        ),
        ("cloister_host_peers_connected", host.peers_connected()),
        (
            "cloister_host_enclave_metrics_up",
            u64::from(enclave.is_some()),
        ),
    ];
    for (name, value) in gauges {
        family(&mut out, name, "gauge", "Host gauge.");
        sample(&mut out, name, "", value);
    }
    names.extend(
        [closes.to_owned()]
            .into_iter()
            .chain(gauges.map(|(name, _)| name.to_owned())),
    );
    if let Some(reply) = enclave {
        render_enclave(&mut out, &mut names, reply);
    }
    out
}

fn render_enclave(out: &mut String, names: &mut BTreeSet<String>, reply: &MetricsReply) {
    let kinds = [(&reply.counters, "counter"), (&reply.gauges, "gauge")];
    for (metrics, kind) in kinds {
        for metric in metrics {
            let mut name = format!("cloister_{}", sanitize(&metric.name));
            if kind == "counter" && !name.ends_with("_total") {
                name.push_str("_total");
            }
            // A name already rendered (a host metric, or a repeat) is skipped: Prometheus
            // refuses a family that appears twice.
            if !names.insert(name.clone()) {
                continue;
            }
            family(out, &name, kind, &format!("Enclave {kind}."));
            sample(out, &name, "", metric.value);
        }
    }
}

/// Keeps `[a-zA-Z0-9_]`, replacing anything else with `_`, so an odd name from the enclave
/// cannot break the exposition format.
fn sanitize(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "unnamed".to_owned()
    } else {
        cleaned
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: u64) {
    let _ = writeln!(out, "{name}{labels} {value}");
}

#[cfg(test)]
mod tests;
