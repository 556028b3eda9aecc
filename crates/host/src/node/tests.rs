//! The node over the real enclave core (simulated TEE), and its start/stop paths.

use std::time::Duration;

use cloister_enclave::{Enclave, InsecureSimulatedEnv};
use cloister_proto::svr2::client::ClientHandshakeStart;
use futures_util::StreamExt;
use prost::Message as _;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::*;
use crate::testing::{FakeEnclave, TEST_USER, basic_auth, http};

fn scratch_config(name: &str) -> HostConfig {
    let dir = std::env::temp_dir().join(format!("cloister-host-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    HostConfig {
        client_listen_addr: "127.0.0.1:0".parse().unwrap(),
        admin_listen_addr: "127.0.0.1:0".parse().unwrap(),
        auth_secret_path: dir.join("auth.secret"),
        tick_interval: Duration::from_millis(20),
        ..HostConfig::default()
    }
}

fn real_enclave(config: &HostConfig) -> Enclave {
    let init = config.init_config(unix_now_secs()).encode_to_vec();
    Enclave::init(&init, Box::new(InsecureSimulatedEnv::from_seed([1; 32]))).unwrap()
}

#[tokio::test]
async fn serves_the_real_core_from_group_creation_to_a_handshake_start() {
    let mut config = scratch_config("real");
    config.auth_secret_path = {
        let path = config.auth_secret_path.clone();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, hex::encode(crate::testing::TEST_SECRET)).unwrap();
        path
    };
    let node = Node::start(config.clone(), real_enclave(&config))
        .await
        .unwrap();
    assert_eq!(
        node.enclave_id(),
        hex::encode(cloister_attest::sim::measurement())
    );
    let admin = node.admin_addr();
    assert_eq!(
        http(admin, "GET", "/health/ready", &[], "").await.status,
        503
    );
    let created = http(admin, "POST", "/v1/create-group", &[], "{}").await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.json()["group_config"]["simulated"], true);
    let mut ready = false;
    for _ in 0..250 {
        if http(admin, "GET", "/health/ready", &[], "").await.status == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        ready,
        "a single-voter group elects itself within a few ticks"
    );

    let url = format!("ws://{}/v1/{}", node.client_addr(), node.enclave_id());
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", basic_auth(TEST_USER).parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let first = socket.next().await.unwrap().unwrap().into_data();
    let start = ClientHandshakeStart::decode(first).unwrap();
    assert_eq!(start.test_only_pubkey.len(), 32);
    assert!(!start.evidence.is_empty());
    let metrics = http(admin, "GET", "/metrics", &[], "").await.body;
    assert!(
        metrics.contains("\ncloister_client_sessions_opened_total 1\n"),
        "{metrics}"
    );
    drop(socket);
    node.shutdown().await.unwrap();
    std::fs::remove_dir_all(config.auth_secret_path.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn run_creates_the_secret_and_returns_when_told_to_stop() {
    let config = scratch_config("run");
    let secret_path = config.auth_secret_path.clone();
    let (fake, _journal) = FakeEnclave::new(true);
    let stop = tokio::time::sleep(Duration::from_millis(200));
    run(config, fake, stop).await.unwrap();
    assert!(secret_path.exists());
    std::fs::remove_dir_all(secret_path.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn wait_reports_an_enclave_that_died() {
    let config = scratch_config("died");
    let dir = config.auth_secret_path.parent().unwrap().to_owned();
    let (fake, _journal) = FakeEnclave::new(true);
    let node = Node::start(config, fake).await.unwrap();
    let user = crate::auth::BackupId::parse_hex(TEST_USER).unwrap();
    let client_id = node.dispatcher().new_client(&user).await.unwrap().client_id;
    let dispatcher = node.dispatcher().clone();
    let _ = dispatcher
        .existing_client(client_id, b"panic".to_vec())
        .await;
    let result = node.wait(std::future::pending()).await;
    assert!(
        matches!(result, Err(HostError::EnclavePanicked)),
        "{result:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn start_failures_are_clear_and_stop_the_enclave_thread() {
    let invalid = HostConfig {
        idle_timeout: Duration::ZERO,
        ..scratch_config("invalid")
    };
    let (fake, _journal) = FakeEnclave::new(true);
    let result = Node::start(invalid, fake).await;
    assert!(matches!(result, Err(HostError::Config(_))));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = HostConfig {
        client_listen_addr: taken.local_addr().unwrap(),
        ..scratch_config("taken")
    };
    let dir = config.auth_secret_path.parent().unwrap().to_owned();
    let (fake, _journal) = FakeEnclave::new(true);
    match Node::start(config, fake).await {
        Err(error @ HostError::Io { .. }) => assert!(error.to_string().contains("client listener")),
        Err(other) => panic!("expected an I/O error, got {other}"),
        Ok(_) => panic!("expected an I/O error, got a node"),
    }

    let malformed = scratch_config("malformed");
    std::fs::create_dir_all(malformed.auth_secret_path.parent().unwrap()).unwrap();
    std::fs::write(&malformed.auth_secret_path, "nonsense").unwrap();
    let (fake, _journal) = FakeEnclave::new(true);
    let result = Node::start(malformed.clone(), fake).await;
    assert!(matches!(result, Err(HostError::AuthSecret(_))));
    assert_eq!(
        std::fs::read_to_string(&malformed.auth_secret_path).unwrap(),
        "nonsense"
    );
    std::fs::remove_dir_all(malformed.auth_secret_path.parent().unwrap()).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn the_attestation_refresh_timer_rotates_the_client_key() {
    let mut config = scratch_config("refresh");
    config.attestation_refresh_interval = Duration::from_secs(1);
    // Each probe below is a new WebSocket for the same user.
    config.rate_limit_burst = 1_000;
    config.auth_secret_path = {
        let path = config.auth_secret_path.clone();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, hex::encode(crate::testing::TEST_SECRET)).unwrap();
        path
    };
    let node = Node::start(config.clone(), real_enclave(&config))
        .await
        .unwrap();
    let admin = node.admin_addr();
    let created = http(admin, "POST", "/v1/create-group", &[], "{}").await;
    assert_eq!(created.status, 200, "{}", created.body);
    let client_key = || async {
        let url = format!("ws://{}/v1/{}", node.client_addr(), node.enclave_id());
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", basic_auth(TEST_USER).parse().unwrap());
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.ok()?;
        let first = socket.next().await?.ok()?.into_data();
        Some(ClientHandshakeStart::decode(first).ok()?.test_only_pubkey)
    };
    let mut first = None;
    for _ in 0..250 {
        first = client_key().await;
        if first.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = first.expect("the group serves within a few ticks");
    // The timer fires every second: within a few the key must have changed.
    let mut rotated = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if client_key().await.is_some_and(|key| key != first) {
            rotated = true;
            break;
        }
    }
    assert!(rotated, "the client key never rotated");
    let metrics = http(admin, "GET", "/metrics", &[], "").await.body;
    assert!(
        !metrics.contains("\ncloister_attestation_refreshes_total 0\n"),
        "{metrics}"
    );
    node.shutdown().await.unwrap();
    std::fs::remove_dir_all(config.auth_secret_path.parent().unwrap()).unwrap();
}
