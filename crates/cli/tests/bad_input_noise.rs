//! Bad input inside the Noise channel, sent by a hand-driven initiator: frames that do not
//! decrypt, plaintext that is not a `Request`, and Backup requests with out-of-range fields.
//! Each closes the session with 4003, changes nothing, and leaves the node serving others.

// Test code: a failed unwrap is a failed test. clippy.toml allows unwrap only inside
// #[test] functions, and these helpers sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cloister_proto::prost::Message as _;
use cloister_proto::svr2::client::{
    BackupRequest, Request, TriesRequest, request, response, tries_response,
};
use common::ws::{self, NoiseSocket};
use common::{Node, TestDir, bounded, username};

fn backup(data_bytes: usize, pin_bytes: usize, max_tries: u32) -> Request {
    Request {
        inner: Some(request::Inner::Backup(BackupRequest {
            data: vec![0x33; data_bytes],
            pin: vec![0x44; pin_bytes],
            max_tries,
        })),
    }
}

fn tries_request() -> Request {
    Request {
        inner: Some(request::Inner::Tries(TriesRequest {})),
    }
}

/// Tries over a hand-driven session: (status, tries, exposed).
async fn raw_tries(node: &Node, user: &str) -> (i32, u32, bool) {
    let mut session = NoiseSocket::open(node, user).await;
    let answer = session.request(&tries_request()).await;
    let Some(response::Inner::Tries(tries)) = answer.inner else {
        panic!("expected a Tries response, got {answer:?}");
    };
    (tries.status, tries.tries, tries.exposed)
}

// SVR2 client protocol: Session ("Every later binary frame carries one Noise transport
// message holding one serialized Request"; close 4003 invalid argument).
#[tokio::test]
async fn frames_that_are_not_encrypted_requests_close_with_4003() {
    bounded(async {
        let dir = TestDir::new("noise-garbage");
        let node = Node::start(&dir).await;
        let user = username("noise-garbage");
        // A good request first proves the hand-driven channel is right.
        assert_eq!(
            raw_tries(&node, &user).await,
            (tries_response::Status::Missing as i32, 0, false)
        );
        let db_hash = node.db_hash().await;

        // Transport-mode garbage: no valid authentication tag.
        let mut session = NoiseSocket::open(&node, &user).await;
        ws::send_binary(&mut session.socket, vec![0x5c; 64]).await;
        assert_eq!(session.close_code().await, 4003);

        // Correctly encrypted bytes that are not a protobuf Request (a truncated varint).
        let mut session = NoiseSocket::open(&node, &user).await;
        session.send_plaintext(&[0xff, 0xff, 0xff]).await;
        assert_eq!(session.close_code().await, 4003);

        // A Noise message 1 sent again after the handshake is garbage to transport mode.
        let mut session = NoiseSocket::open(&node, &user).await;
        ws::send_binary(&mut session.socket, vec![0; 48]).await;
        assert_eq!(session.close_code().await, 4003);

        assert_eq!(node.db_hash().await, db_hash);
        let other = username("noise-good");
        let mut session = NoiseSocket::open(&node, &other).await;
        let answer = session.request(&backup(32, 32, 5)).await;
        assert!(
            matches!(answer.inner, Some(response::Inner::Backup(_))),
            "{answer:?}"
        );
        assert_eq!(
            session.request(&tries_request()).await.inner,
            Some(response::Inner::Tries(
                cloister_proto::svr2::client::TriesResponse {
                    status: tries_response::Status::Ok as i32,
                    tries: 5,
                    exposed: false,
                }
            ))
        );
    })
    .await;
}

// SVR2 client protocol: Messages ("data 16..=48 bytes; pin exactly 32 bytes ...; max_tries
// 1..=255. Anything else: invalid argument (close 4003), nothing changed").
#[tokio::test]
async fn backup_requests_with_bad_sizes_close_with_4003_and_change_nothing() {
    bounded(async {
        let dir = TestDir::new("noise-sizes");
        let node = Node::start(&dir).await;
        let user = username("noise-sizes");
        let mut session = NoiseSocket::open(&node, &user).await;
        let answer = session.request(&backup(16, 32, 7)).await;
        assert!(
            matches!(answer.inner, Some(response::Inner::Backup(_))),
            "{answer:?}"
        );
        drop(session);
        let db_hash = node.db_hash().await;

        let cases = [
            ("pin of 31 bytes", backup(32, 31, 3)),
            ("data of 15 bytes", backup(15, 32, 3)),
            ("data of 49 bytes", backup(49, 32, 3)),
            ("max_tries 0", backup(32, 32, 0)),
            ("max_tries 256", backup(32, 32, 256)),
        ];
        for (case, request) in &cases {
            let mut session = NoiseSocket::open(&node, &user).await;
            session.send_plaintext(&request.encode_to_vec()).await;
            assert_eq!(session.close_code().await, 4003, "{case}");
        }

        // The row is exactly as the good Backup left it.
        assert_eq!(node.db_hash().await, db_hash);
        assert_eq!(
            raw_tries(&node, &user).await,
            (tries_response::Status::Ok as i32, 7, false)
        );
        // The bounds themselves are accepted (16 and 48 bytes, 1 and 255 tries).
        let other = username("noise-bounds");
        let mut session = NoiseSocket::open(&node, &other).await;
        for request in [backup(16, 32, 1), backup(48, 32, 255)] {
            let answer = session.request(&request).await;
            assert!(
                matches!(answer.inner, Some(response::Inner::Backup(_))),
                "{answer:?}"
            );
        }
        assert_eq!(
            session.request(&tries_request()).await.inner,
            Some(response::Inner::Tries(
                cloister_proto::svr2::client::TriesResponse {
                    status: tries_response::Status::Ok as i32,
                    tries: 255,
                    exposed: false,
                }
            ))
        );
        let status = node.admin_json("/v1/status").await;
        assert_eq!(status["backups"], 2, "{status}");
    })
    .await;
}
