//! The client listener end to end over the fake enclave: statuses, frames, close codes.

use std::time::Duration;

use cloister_proto::svr2::client::ClientHandshakeStart;
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::metrics::Counter;
use crate::testing::{FAKE_MEASUREMENT, TEST_USER, TestNode, basic_auth, http};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn path() -> String {
    format!("/v1/{}", hex::encode(FAKE_MEASUREMENT))
}

async fn connect(test: &TestNode, user: &str) -> Result<Socket, tungstenite::Error> {
    let url = format!("ws://{}{}", test.node.client_addr(), path());
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", basic_auth(user).parse().unwrap());
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// Connects and reads the handshake start the host sends first.
async fn open(test: &TestNode) -> Socket {
    let mut socket = connect(test, TEST_USER).await.unwrap();
    let first = socket.next().await.unwrap().unwrap();
    let start = ClientHandshakeStart::decode(first.into_data()).unwrap();
    assert_eq!(start.test_only_pubkey, vec![9; 32]);
    socket
}

/// Reads until the close frame and returns its code.
async fn close_code(socket: &mut Socket) -> u16 {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(Message::Close(None))) | None => panic!("closed without a code"),
            Some(Ok(_)) => {}
            Some(Err(error)) => panic!("read failed: {error}"),
        }
    }
}

fn refused_status(result: Result<Socket, tungstenite::Error>) -> (u16, Option<String>) {
    match result {
        Err(tungstenite::Error::Http(response)) => {
            let retry = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            (response.status().as_u16(), retry)
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, got a connection"),
    }
}

async fn wait_for(test: &TestNode, entry: &str) {
    for _ in 0..200 {
        if test.journal().iter().any(|seen| seen == entry) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{entry:?} never reached the enclave: {:?}", test.journal());
}

#[tokio::test]
async fn relays_frames_in_order_and_closes_the_enclave_session() {
    let test = TestNode::start(true, |_| {}).await;
    let mut socket = open(&test).await;
    for index in 0..5u8 {
        socket
            .send(Message::binary(vec![b'x', index]))
            .await
            .unwrap();
    }
    for index in 0..5u8 {
        let reply = socket.next().await.unwrap().unwrap().into_data();
        assert_eq!(reply.as_ref(), [b"echo:x".as_slice(), &[index]].concat());
    }
    socket.close(None).await.unwrap();
    wait_for(&test, "close_client 1").await;
    let metrics = test.node.dispatcher().metrics();
    assert_eq!(metrics.counter(Counter::FramesIn), 5);
    assert_eq!(metrics.counter(Counter::FramesOut), 6);
    test.stop().await;
}

#[tokio::test]
async fn refuses_unknown_enclaves_and_bad_credentials() {
    let test = TestNode::start(true, |_| {}).await;
    let addr = test.node.client_addr();
    let auth = basic_auth(TEST_USER);
    let answer = http(addr, "GET", "/v1/00ff", &[("authorization", &auth)], "").await;
    assert_eq!(answer.status, 404);
    let upper = format!("/v1/{}", hex::encode_upper(FAKE_MEASUREMENT));
    let answer = http(addr, "GET", &upper, &[], "").await;
    assert_eq!(answer.status, 401, "the id compares case-insensitively");
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Basic realm=\"cloister\"")
    );
    let answer = http(
        addr,
        "GET",
        &path(),
        &[("authorization", "Basic Zm9vOmJhcg==")],
        "",
    )
    .await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["error"], "unauthorized");
    // Good credentials but no upgrade: refused by the WebSocket extractor, not served.
    let answer = http(addr, "GET", &path(), &[("authorization", &auth)], "").await;
    assert!(answer.status >= 400, "{}", answer.status);
    assert_eq!(
        test.node
            .dispatcher()
            .metrics()
            .counter(Counter::AuthFailures),
        2
    );
    test.stop().await;
}

#[tokio::test]
async fn rate_limits_connections_per_user() {
    let test = TestNode::start(true, |config| config.rate_limit_burst = 2).await;
    let first = open(&test).await;
    let second = open(&test).await;
    let (status, retry_after) = refused_status(connect(&test, TEST_USER).await);
    assert_eq!(status, 429);
    assert_eq!(retry_after.as_deref(), Some("6"));
    // Another user has a bucket of their own.
    connect(&test, "ffeeddccbbaa99887766554433221100")
        .await
        .unwrap();
    drop((first, second));
    test.stop().await;
}

#[tokio::test]
async fn bounds_open_connections() {
    let test = TestNode::start(true, |config| config.connections_max = 1).await;
    let first = open(&test).await;
    let (status, _) = refused_status(connect(&test, "ffeeddccbbaa99887766554433221100").await);
    assert_eq!(status, 503);
    assert_eq!(
        test.node
            .dispatcher()
            .metrics()
            .counter(Counter::ConnectionsRefused),
        1
    );
    drop(first);
    test.stop().await;
}

#[tokio::test]
async fn enclave_errors_close_with_the_svr2_codes() {
    // SVR2 client protocol: 4003 invalid argument, 4013 internal, 4014 unavailable.
    let test = TestNode::start(true, |_| {}).await;
    for (payload, code) in [("invalid", 4003), ("unavailable", 4014), ("internal", 4013)] {
        let mut socket = open(&test).await;
        socket
            .send(Message::binary(payload.as_bytes().to_vec()))
            .await
            .unwrap();
        assert_eq!(close_code(&mut socket).await, code, "{payload}");
    }
    assert_eq!(test.node.dispatcher().metrics().closes(4014), 1);
    test.stop().await;
}

#[tokio::test]
async fn a_text_frame_closes_with_4003() {
    let test = TestNode::start(true, |_| {}).await;
    let mut socket = open(&test).await;
    socket.send(Message::text("hello")).await.unwrap();
    assert_eq!(close_code(&mut socket).await, 4003);
    wait_for(&test, "close_client 1").await;
    test.stop().await;
}

#[tokio::test]
async fn an_oversized_frame_closes_with_1009() {
    let test = TestNode::start(true, |config| config.frame_bytes_max = 2048).await;
    let mut socket = open(&test).await;
    socket.send(Message::binary(vec![1; 2048])).await.unwrap();
    assert_eq!(
        socket.next().await.unwrap().unwrap().into_data().len(),
        2048 + 5
    );
    socket.send(Message::binary(vec![1; 2049])).await.unwrap();
    assert_eq!(close_code(&mut socket).await, 1009);
    wait_for(&test, "close_client 1").await;
    test.stop().await;
}

#[tokio::test]
async fn an_idle_client_is_closed_with_1000() {
    let test = TestNode::start(true, |config| {
        config.idle_timeout = Duration::from_millis(200)
    })
    .await;
    let mut socket = open(&test).await;
    assert_eq!(close_code(&mut socket).await, 1000);
    test.stop().await;
}

#[tokio::test]
async fn without_a_group_sessions_close_with_4014() {
    let test = TestNode::start(false, |_| {}).await;
    let mut socket = connect(&test, TEST_USER).await.unwrap();
    assert_eq!(close_code(&mut socket).await, 4014);
    test.stop().await;
}

#[tokio::test]
async fn shutdown_closes_open_sessions_with_1001() {
    let test = TestNode::start(true, |_| {}).await;
    let mut socket = open(&test).await;
    let closing = tokio::spawn(async move { close_code(&mut socket).await });
    test.stop().await;
    assert_eq!(closing.await.unwrap(), 1001);
}

#[tokio::test]
async fn delete_removes_the_authenticated_users_backup() {
    let test = TestNode::start(true, |_| {}).await;
    let addr = test.node.client_addr();
    let answer = http(addr, "DELETE", "/v1/delete", &[], "").await;
    assert_eq!(answer.status, 401);
    let auth = basic_auth(TEST_USER);
    let answer = http(
        addr,
        "DELETE",
        "/v1/delete",
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(answer.status, 200);
    assert!(
        test.journal()
            .contains(&format!("delete_backup {TEST_USER}"))
    );
    test.stop().await;
}
