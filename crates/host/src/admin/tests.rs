//! The admin API end to end over the fake enclave.

use crate::testing::{FAKE_MEASUREMENT, TEST_USER, TestNode, http};

async fn get(test: &TestNode, path: &str) -> crate::testing::HttpAnswer {
    http(test.node.admin_addr(), "GET", path, &[], "").await
}

async fn post(test: &TestNode, path: &str, body: &str) -> crate::testing::HttpAnswer {
    let headers = [("content-type", "application/json")];
    http(test.node.admin_addr(), "POST", path, &headers, body).await
}

#[tokio::test]
async fn status_reports_the_enclave_in_json_with_hex_bytes() {
    let test = TestNode::start(false, |_| {}).await;
    let answer = get(&test, "/v1/status").await;
    assert_eq!(answer.status, 200);
    let status = answer.json();
    assert_eq!(status["measurement"], hex::encode(FAKE_MEASUREMENT));
    assert_eq!(status["peer_id"], hex::encode([7; 32]));
    assert_eq!(status["simulated"], true);
    assert!(status["group_config"].is_null());
    assert_eq!(test.node.enclave_id(), hex::encode(FAKE_MEASUREMENT));
    test.stop().await;
}

#[tokio::test]
async fn create_group_makes_the_node_ready_once() {
    let test = TestNode::start(false, |_| {}).await;
    assert_eq!(get(&test, "/health/live").await.status, 200);
    let answer = get(&test, "/health/ready").await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.json()["ready"], false);
    let answer = post(&test, "/v1/create-group", r#"{"max_voting_replicas": 3}"#).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["group_config"]["group_id"], 42);
    assert!(test.journal().contains(&"create_group 3".to_owned()));
    let answer = get(&test, "/health/ready").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["role"], "leader");
    // A second group on the same enclave is a conflict.
    let answer = post(&test, "/v1/create-group", "").await;
    assert_eq!(answer.status, 409);
    assert_eq!(answer.json()["error"], "enclave_failed_precondition");
    test.stop().await;
}

#[tokio::test]
async fn bad_bodies_are_400_and_change_nothing() {
    let test = TestNode::start(false, |_| {}).await;
    let cases = [
        ("/v1/create-group", "{"),
        ("/v1/create-group", r#"{"max_voting_replicas": -1}"#),
        ("/v1/create-group", r#"{"max_voting_replicas": 0}"#),
        ("/v1/create-group", r#"{"voters": 3}"#),
        ("/v1/create-group", "[]"),
        ("/v1/log-level", r#"{"level": "loud"}"#),
        ("/v1/log-level", "{}"),
        ("/v1/delete-backup", r#"{"backup_id": "00"}"#),
        ("/v1/update-minimums", r#"{"limits": {}}"#),
        ("/v1/update-minimums", r#"{"limits": {"Bad Name": "01"}}"#),
        (
            "/v1/update-minimums",
            r#"{"limits": {"sim.security_version": "0x1"}}"#,
        ),
        (
            "/v1/update-minimums",
            r#"{"limits": {"sim.security_version": ""}}"#,
        ),
        (
            "/v1/update-minimums",
            r#"{"limits": {"sim.security_version": 1}}"#,
        ),
        ("/v1/update-minimums", r#"{"minimums": {}}"#),
        (
            "/v1/delete-backup",
            &format!(r#"{{"backup_id": "{}"}}"#, TEST_USER.to_uppercase()),
        ),
    ];
    for (path, body) in cases {
        let answer = post(&test, path, body).await;
        assert_eq!(answer.status, 400, "{path} {body}: {}", answer.body);
        assert_eq!(answer.json()["error"], "bad_request");
    }
    assert!(test.journal().is_empty(), "{:?}", test.journal());
    let answer = post(&test, "/v1/create-group", &" ".repeat(100 * 1024)).await;
    assert_eq!(answer.status, 413);
    test.stop().await;
}

#[tokio::test]
async fn log_level_delete_minimums_and_refresh_reach_the_enclave() {
    let test = TestNode::start(true, |_| {}).await;
    let answer = post(&test, "/v1/log-level", r#"{"level": "verbose"}"#).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["level"], "verbose");
    let body = format!(r#"{{"backup_id": "{TEST_USER}"}}"#);
    let answer = post(&test, "/v1/delete-backup", &body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["ok"], true);
    // The fake, like an early core, does not support this call: 501 with its error.
    let answer = post(&test, "/v1/refresh-attestation", "").await;
    assert_eq!(answer.status, 501);
    assert_eq!(answer.json()["error"], "enclave_not_supported");
    let body = r#"{"limits": {"sim.security_version": "0003", "sgx.isv_svn": "07"}}"#;
    let answer = post(&test, "/v1/update-minimums", body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let journal = test.journal();
    assert!(
        journal.contains(&"update_minimums sgx.isv_svn=07,sim.security_version=0003".to_owned()),
        "{journal:?}"
    );
    assert!(journal.contains(&"log_level 6".to_owned()), "{journal:?}");
    assert!(journal.contains(&format!("delete_backup {TEST_USER}")));
    test.stop().await;
}

#[tokio::test]
async fn hashes_and_enclave_metrics_are_json() {
    let test = TestNode::start(true, |_| {}).await;
    let hashes = get(&test, "/v1/hashes").await.json();
    assert_eq!(hashes["db_hash"], hex::encode([1; 32]));
    assert_eq!(hashes["commit_index"], 5);
    let metrics = get(&test, "/v1/metrics/enclave").await.json();
    assert_eq!(metrics["counters"]["client_sessions_opened"], 0);
    assert_eq!(metrics["gauges"]["client_sessions"], 0);
    test.stop().await;
}

#[tokio::test]
async fn prometheus_exposes_host_and_enclave_metrics() {
    let test = TestNode::start(true, |_| {}).await;
    get(&test, "/v1/status").await;
    let answer = get(&test, "/metrics").await;
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let text = answer.body;
    assert!(
        text.contains("\ncloister_host_admin_requests_total 2\n"),
        "{text}"
    );
    assert!(text.contains("\ncloister_host_enclave_metrics_up 1\n"));
    assert!(text.contains("\ncloister_client_sessions_opened_total 0\n"));
    assert!(text.contains("\ncloister_client_sessions 0\n"));
    assert!(text.contains("cloister_host_ticks_total"));
    test.stop().await;
}

#[tokio::test]
async fn unknown_routes_are_404() {
    let test = TestNode::start(true, |_| {}).await;
    let answer = get(&test, "/v1/nothing").await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json()["error"], "not_found");
    assert_eq!(get(&test, "/v1/create-group").await.status, 405);
    test.stop().await;
}
