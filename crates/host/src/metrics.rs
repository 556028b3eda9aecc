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
    /// Peer messages dropped (this build has no peer transport).
    EnclavePeerMessagesDropped,
    /// Timer ticks sent to the enclave.
    Ticks,
    /// Requests served by the admin API.
    AdminRequests,
}

impl Counter {
    /// Every counter, in rendering order.
    pub const ALL: [Counter; 20] = [
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
#[derive(Debug, Default)]
pub struct HostMetrics {
    counters: [AtomicU64; Counter::ALL.len()],
    closes: [AtomicU64; CLOSE_CODES_COUNTED.len() + 1],
    connections_open: AtomicU64,
    pending_calls: AtomicU64,
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
mod tests {
    use super::*;
    use cloister_proto::enclave::Metric;

    fn metric(name: &str, value: u64) -> Metric {
        Metric {
            name: name.to_owned(),
            value,
        }
    }

    #[test]
    fn renders_host_counters_gauges_and_close_codes() {
        let host = HostMetrics::default();
        host.increment(Counter::AuthFailures);
        host.add(Counter::BytesIn, 42);
        host.record_close(4003);
        host.record_close(4003);
        host.record_close(1234);
        host.connection_opened();
        let text = render_prometheus(&host, None);
        assert!(text.contains("# TYPE cloister_host_auth_failures_total counter\n"));
        assert!(text.contains("\ncloister_host_auth_failures_total 1\n"));
        assert!(text.contains("\ncloister_host_bytes_in_total 42\n"));
        assert!(text.contains("\ncloister_host_ws_closes_total{code=\"4003\"} 2\n"));
        assert!(text.contains("\ncloister_host_ws_closes_total{code=\"other\"} 1\n"));
        assert!(text.contains("\ncloister_host_connections_open 1\n"));
        assert!(text.contains("\ncloister_host_enclave_metrics_up 0\n"));
        assert_eq!(host.closes(4003), 2);
    }

    #[test]
    fn renders_every_enclave_metric_with_the_prefix() {
        let host = HostMetrics::default();
        let reply = MetricsReply {
            counters: vec![
                metric("client_sessions_opened", 5),
                metric("raft_ready_total", 9),
            ],
            gauges: vec![metric("raft.term", 3), metric("", 1)],
        };
        let text = render_prometheus(&host, Some(&reply));
        assert!(text.contains("# TYPE cloister_client_sessions_opened_total counter\n"));
        assert!(text.contains("\ncloister_client_sessions_opened_total 5\n"));
        assert!(text.contains("\ncloister_raft_ready_total 9\n"));
        assert!(text.contains("# TYPE cloister_raft_term gauge\n"));
        assert!(text.contains("\ncloister_raft_term 3\n"));
        assert!(text.contains("\ncloister_unnamed 1\n"));
        assert!(text.contains("\ncloister_host_enclave_metrics_up 1\n"));
    }

    #[test]
    fn every_line_is_a_comment_or_a_well_formed_sample() {
        let host = HostMetrics::default();
        let reply = MetricsReply {
            counters: vec![
                metric("a b\nc", 1),
                metric("a b\nc", 2),
                metric("host_ticks", 7),
            ],
            gauges: vec![],
        };
        let text = render_prometheus(&host, Some(&reply));
        let mut families = BTreeSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(families.insert(name.to_owned()), "family {name} repeated");
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            let (name, value) = line.rsplit_once(' ').unwrap();
            let name = name.split('{').next().unwrap();
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
            value.parse::<u64>().unwrap();
        }
        assert!(text.contains("\ncloister_a_b_c_total 1\n"));
        assert!(!text.contains("cloister_a_b_c_total 2"));
    }
}
