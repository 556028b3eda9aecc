//! Bad input before the Noise channel exists, over raw WebSockets: refused upgrades (404,
//! 401, 429) and bad frames (oversized, garbage, text). Each case shows the clear refusal,
//! that nothing changed, and that the node keeps serving a good client.

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cloister_client::{RestoreOutcome, TriesOutcome};
use cloister_host::auth;
use common::ws::{self, FRAME_BYTES_MAX};
use common::{DAY_SECS, Node, TestDir, basic_header, bounded, unix_now_secs, username};
use tokio_tungstenite::tungstenite::Message;

/// A good client's full round trip on fresh connections: the node still serves.
async fn good_client_round_trips(node: &Node) {
    let client = node.sdk_client(&username("good"));
    let mut connection = client.connect().await.unwrap();
    connection.backup(&[7; 32], &[8; 32], 4).await.unwrap();
    connection.expose(&[7; 32]).await.unwrap();
    connection.close().await;
    let mut connection = client.connect().await.unwrap();
    match connection.restore(&[8; 32]).await.unwrap() {
        RestoreOutcome::Ok { data, tries } => {
            assert_eq!(data.as_slice(), [7; 32].as_slice());
            assert_eq!(tries, 4);
        }
        other => panic!("expected OK, got {other:?}"),
    }
    connection.close().await;
}

// SVR2 client protocol: Transport and authentication ("Unknown id: HTTP 404"; "Tokens older or
// newer than a configured maximum age (default 120 days) are refused"; "Bad or missing auth:
// HTTP 401").
#[tokio::test]
async fn refused_upgrades_answer_404_and_401_and_change_nothing() {
    bounded(async {
        let dir = TestDir::new("refused");
        let node = Node::start(&dir).await;
        let db_hash = node.db_hash().await;
        let user = username("refused");
        let secret = node.secret();
        let now = unix_now_secs();

        let other_enclave = format!("/v1/{}", "ab".repeat(32));
        let good_auth = node.basic_auth(&user);
        let (status, _) =
            ws::refused(ws::connect_path(&node, &other_enclave, Some(&good_auth)).await);
        assert_eq!(status, 404, "unknown enclave id");

        let (status, _) = ws::refused(ws::connect(&node, None).await);
        assert_eq!(status, 401, "missing auth");

        let other_secret = auth::AuthSecret::from_bytes([3; 32]);
        let wrong_password = auth::mint(&other_secret, &user, now).unwrap();
        let expired = auth::mint(&secret, &user, now - 121 * DAY_SECS).unwrap();
        let from_future = auth::mint(&secret, &user, now + 121 * DAY_SECS).unwrap();
        // A right token for a different user: the MAC binds the username.
        let someone_else = auth::mint(&secret, &username("other"), now).unwrap();
        let cases = [
            ("wrong password", basic_header(&user, &wrong_password)),
            ("expired token", basic_header(&user, &expired)),
            ("token from the future", basic_header(&user, &from_future)),
            ("another user's token", basic_header(&user, &someone_else)),
            (
                "malformed username",
                basic_header("alice", &node.password(&user)),
            ),
            (
                "uppercase username",
                basic_header(&user.to_uppercase(), &node.password(&user)),
            ),
            ("not Basic", format!("Bearer {}", node.password(&user))),
        ];
        for (case, header) in &cases {
            let (status, _) = ws::refused(ws::connect(&node, Some(header)).await);
            assert_eq!(status, 401, "{case}");
        }
        // Tokens just inside the maximum age are accepted both ways.
        for timestamp in [now - 119 * DAY_SECS, now + 119 * DAY_SECS] {
            let password = auth::mint(&secret, &user, timestamp).unwrap();
            let mut socket = ws::connect(&node, Some(&basic_header(&user, &password)))
                .await
                .unwrap();
            ws::read_binary(&mut socket).await;
            socket.close(None).await.unwrap();
        }

        assert_eq!(node.db_hash().await, db_hash);
        let metrics = common::http(node.admin_addr, "GET", "/metrics", &[], "").await;
        let refusals = 1 + cases.len();
        assert!(
            metrics
                .body
                .contains(&format!("cloister_host_auth_failures_total {refusals}\n")),
            "{}",
            metrics.body
        );
        good_client_round_trips(&node).await;
    })
    .await;
}

// SVR2 client protocol: Transport and authentication ("Per-user rate limit on connections
// (leaky bucket; default burst 10, 10 per minute): HTTP 429 with Retry-After").
#[tokio::test]
async fn the_eleventh_quick_connection_of_one_user_gets_429_with_retry_after() {
    bounded(async {
        let dir = TestDir::new("rate-limit");
        let node = Node::start(&dir).await;
        let user = username("eager");
        // Burst 10: ten connections in a row are admitted, the eleventh is refused. The
        // bucket drains one unit per 6 s, so only a machine slower than that admits more.
        let started = std::time::Instant::now();
        let mut admitted = 0;
        let refusal = loop {
            match ws::connect(&node, Some(&node.basic_auth(&user))).await {
                Ok(mut socket) => {
                    admitted += 1;
                    socket.close(None).await.unwrap();
                }
                refused => break ws::refused(refused),
            }
            assert!(admitted <= 20, "never rate limited");
        };
        assert!(
            admitted == 10 || started.elapsed().as_secs() >= 6,
            "{admitted} admitted in {:?}",
            started.elapsed()
        );
        let (status, retry_after) = refusal;
        assert_eq!(status, 429);
        let retry_after: u64 = retry_after.expect("Retry-After").parse().unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        // The SDK reports the same refusal as a typed, retryable error.
        let error = node.sdk_client(&user).connect().await.unwrap_err();
        assert!(
            matches!(
                error,
                cloister_client::Error::RateLimited {
                    retry_after: Some(_)
                }
            ),
            "{error:?}"
        );
        // Other users are not limited.
        good_client_round_trips(&node).await;
    })
    .await;
}

/// Opens a session as `user`, skips the handshake start, sends `message`, and returns the
/// close code the host answers with.
async fn close_code_after(node: &Node, user: &str, message: Message) -> u16 {
    let mut socket = ws::connect_as(node, user).await;
    ws::read_binary(&mut socket).await;
    futures_util::SinkExt::send(&mut socket, message)
        .await
        .unwrap();
    ws::close_code(&mut socket).await
}

// SVR2 client protocol: Transport ("Frame limit 128 KiB") and Session ("message 1 (empty
// payload)"; "4003 invalid argument"). The host closes oversized frames with 1009.
#[tokio::test]
async fn bad_frames_before_the_handshake_close_the_session_and_change_nothing() {
    bounded(async {
        let dir = TestDir::new("bad-frames");
        let node = Node::start(&dir).await;
        let user = username("frames");
        let mut connection = node.sdk_client(&user).connect().await.unwrap();
        connection.backup(&[1; 16], &[2; 32], 6).await.unwrap();
        connection.close().await;
        let db_hash = node.db_hash().await;

        let oversized = Message::binary(vec![0u8; FRAME_BYTES_MAX + 1]);
        assert_eq!(close_code_after(&node, &user, oversized).await, 1009);
        let garbage = Message::binary(vec![0xde, 0xad, 0xbe]);
        assert_eq!(close_code_after(&node, &user, garbage).await, 4003);
        let text = Message::text("hello");
        assert_eq!(close_code_after(&node, &user, text).await, 4003);

        assert_eq!(node.db_hash().await, db_hash);
        let mut connection = node.sdk_client(&user).connect().await.unwrap();
        assert_eq!(
            connection.tries().await.unwrap(),
            TriesOutcome::Ok {
                tries: 6,
                exposed: false
            }
        );
        connection.close().await;
        let metrics = common::http(node.admin_addr, "GET", "/metrics", &[], "").await;
        for line in [
            "cloister_host_ws_closes_total{code=\"1009\"} 1\n",
            "cloister_host_ws_closes_total{code=\"4003\"} 2\n",
        ] {
            assert!(metrics.body.contains(line), "{line}: {}", metrics.body);
        }
        good_client_round_trips(&node).await;
    })
    .await;
}
