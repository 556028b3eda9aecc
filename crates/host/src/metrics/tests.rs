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
    host.add(Counter::PeerResends, 3);
    host.set_peers_connected(2);
    let text = render_prometheus(&host, None);
    assert!(text.contains("\ncloister_host_peer_resends_total 3\n"));
    assert!(text.contains("\ncloister_host_peers_connected 2\n"));
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
