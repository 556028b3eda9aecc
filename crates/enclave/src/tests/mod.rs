//! Tests of the core through its door only, as a host would drive it.

mod attest_path;
mod client_pq;
mod cluster;
mod harness;
mod join_net;
mod join_pipeline;
mod join_refusals;
mod join_timing;
mod leaving;
mod minimums;
mod mutation;
mod raft_messages;

use cloister_proto::enclave::{
    CloseClientRequest, CreateNewRaftGroupRequest, DeleteBackupRequest, EnclaveConfig,
    EnclaveLogLevel, ErrorCode, ExistingClientRequest, GetEnclaveStatusRequest, HashesRequest,
    JoinRaftRequest, MetricsRequest, NewClientRequest, RefreshAttestationRequest,
    SetLogLevelRequest, UntrustedMessage, enclave_message, host_to_enclave_request::Inner as Call,
    host_to_enclave_response::Inner as Answer, untrusted_message,
};
use cloister_proto::svr2::client::{
    BackupRequest, DeleteRequest, ExposeRequest, Request, RestoreRequest, TriesRequest, request,
    response, restore_response, tries_response,
};
use harness::{Harness, NOW};
use prost::Message;

const ALICE: [u8; 16] = [0xa1; 16];
const BOB: [u8; 16] = [0xb0; 16];

fn backup(data: &[u8], pin: &[u8], max_tries: u32) -> Request {
    let inner = BackupRequest {
        data: data.to_vec(),
        pin: pin.to_vec(),
        max_tries,
    };
    Request {
        inner: Some(request::Inner::Backup(inner)),
    }
}
fn expose(data: &[u8]) -> Request {
    Request {
        inner: Some(request::Inner::Expose(ExposeRequest {
            data: data.to_vec(),
        })),
    }
}
fn restore(pin: &[u8]) -> Request {
    Request {
        inner: Some(request::Inner::Restore(RestoreRequest {
            pin: pin.to_vec(),
        })),
    }
}
fn tries() -> Request {
    Request {
        inner: Some(request::Inner::Tries(TriesRequest {})),
    }
}

fn error_code(answer: &Answer) -> ErrorCode {
    match answer {
        Answer::Error(error) => error.code(),
        other => panic!("expected an error, got {other:?}"),
    }
}

fn db_hash(harness: &mut Harness) -> Vec<u8> {
    match harness.call(Call::Hashes(HashesRequest {})) {
        Answer::Hashes(hashes) => hashes.db_hash,
        other => panic!("{other:?}"),
    }
}

pub(super) fn metric(harness: &mut Harness, name: &str) -> u64 {
    let Answer::Metrics(metrics) = harness.call(Call::Metrics(MetricsRequest {})) else {
        panic!()
    };
    metrics
        .counters
        .iter()
        .chain(&metrics.gauges)
        .find(|m| m.name == name)
        .unwrap()
        .value
}

#[test]
fn backup_expose_restore_round_trip_through_raft() {
    let mut harness = Harness::with_group(1);
    let mut alice = harness.connect(ALICE);
    assert!(matches!(
        harness
            .request(&mut alice, &backup(&[5; 32], &[6; 32], 3))
            .inner,
        Some(response::Inner::Backup(_))
    ));
    harness.request(&mut alice, &expose(&[5; 32]));
    let Some(response::Inner::Restore(restored)) =
        harness.request(&mut alice, &restore(&[6; 32])).inner
    else {
        panic!()
    };
    assert_eq!(
        (restored.status(), restored.data, restored.tries),
        (restore_response::Status::Ok, vec![5; 32], 3)
    );
    let Answer::Status(status) = harness.call(Call::GetEnclaveStatus(GetEnclaveStatusRequest {}))
    else {
        panic!()
    };
    assert_eq!(status.role, "leader");
    assert_eq!(status.backups, 1);
    assert!(status.commit_index >= 4, "every operation is a log entry");
    assert_eq!(status.commit_index, status.applied_index);
    assert!(status.group_config.unwrap().simulated);
}

#[test]
fn wrong_pins_count_down_to_deletion() {
    let mut harness = Harness::with_group(2);
    let mut alice = harness.connect(ALICE);
    harness.request(&mut alice, &backup(&[5; 16], &[6; 32], 2));
    harness.request(&mut alice, &expose(&[5; 16]));
    let statuses: Vec<_> = (0..3)
        .map(
            |_| match harness.request(&mut alice, &restore(&[0; 32])).inner {
                Some(response::Inner::Restore(r)) => (r.status(), r.tries),
                other => panic!("{other:?}"),
            },
        )
        .collect();
    assert_eq!(statuses[0], (restore_response::Status::PinMismatch, 1));
    assert_eq!(statuses[1].0, restore_response::Status::Missing);
    assert_eq!(statuses[2].0, restore_response::Status::Missing);
    assert_eq!(metric(&mut harness, "backups_deleted_out_of_tries"), 1);
    assert_eq!(metric(&mut harness, "backups"), 0);
}

#[test]
fn sessions_are_bound_to_their_authenticated_backup_id() {
    let mut harness = Harness::with_group(3);
    let mut alice = harness.connect(ALICE);
    let mut bob = harness.connect(BOB);
    harness.request(&mut alice, &backup(&[1; 16], &[1; 32], 5));
    let Some(response::Inner::Tries(t)) = harness.request(&mut bob, &tries()).inner else {
        panic!()
    };
    assert_eq!(t.status(), tries_response::Status::Missing);
    harness.request(
        &mut bob,
        &Request {
            inner: Some(request::Inner::Delete(DeleteRequest {})),
        },
    );
    let Some(response::Inner::Tries(t)) = harness.request(&mut alice, &tries()).inner else {
        panic!()
    };
    assert_eq!((t.status(), t.tries), (tries_response::Status::Ok, 5));
}

#[test]
fn garbage_from_the_host_is_refused_and_changes_nothing() {
    let mut harness = Harness::with_group(4);
    let mut alice = harness.connect(ALICE);
    harness.request(&mut alice, &backup(&[1; 16], &[1; 32], 5));
    let before = db_hash(&mut harness);
    let oversized = vec![0u8; crate::UNTRUSTED_MESSAGE_BYTES_MAX + 1];
    let empty = UntrustedMessage { inner: None }.encode_to_vec();
    for garbage in [
        &[0xff, 0xff, 0xff][..],
        &[0x0a, 0x05, 0x01],
        &oversized,
        &empty,
    ] {
        assert!(matches!(
            harness.feed(garbage),
            Err(crate::Error::HostMisbehaved(_))
        ));
    }
    // A request without a call is answered with an error, not dropped.
    let request_id = harness.send_raw_request(None);
    assert_eq!(
        error_code(
            &harness
                .answers()
                .pop()
                .filter(|(id, _)| *id == request_id)
                .unwrap()
                .1
        ),
        ErrorCode::InvalidArgument
    );
    assert_eq!(db_hash(&mut harness), before);
    assert_eq!(metric(&mut harness, "host_messages_malformed"), 4);
    // The node keeps serving the session that was open.
    let Some(response::Inner::Tries(t)) = harness.request(&mut alice, &tries()).inner else {
        panic!()
    };
    assert_eq!(t.tries, 5);
}

impl Harness {
    fn send_raw_request(&mut self, call: Option<Call>) -> u64 {
        let message = UntrustedMessage {
            inner: Some(untrusted_message::Inner::H2eRequest(
                cloister_proto::enclave::HostToEnclaveRequest {
                    request_id: 77,
                    inner: call,
                },
            )),
        };
        self.enclave.handle(&message.encode_to_vec()).unwrap();
        77
    }
}

#[test]
fn bad_client_frames_close_only_that_session() {
    let mut harness = Harness::with_group(5);
    let mut alice = harness.connect(ALICE);
    let before = db_hash(&mut harness);
    // Not a Noise message of this session.
    let answer = harness.call(Call::ExistingClient(ExistingClientRequest {
        client_id: alice.client_id,
        data: vec![1; 40],
    }));
    assert_eq!(error_code(&answer), ErrorCode::InvalidArgument);
    // The session is gone: the next frame finds nothing.
    let answer = harness.request_raw(&mut alice, &tries());
    assert_eq!(error_code(&answer), ErrorCode::NotFound);
    // Valid Noise around bytes that are not a Request.
    let mut bob = harness.connect(BOB);
    let frame = bob.encrypt(&[0xff, 0xff, 0xff]);
    let answer = harness.call(Call::ExistingClient(ExistingClientRequest {
        client_id: bob.client_id,
        data: frame,
    }));
    assert_eq!(error_code(&answer), ErrorCode::InvalidArgument);
    // A frame larger than one Noise message.
    let mut carol = harness.connect([0xc0; 16]);
    let answer = harness.call(Call::ExistingClient(ExistingClientRequest {
        client_id: carol.client_id,
        data: vec![0; 65_536],
    }));
    assert_eq!(error_code(&answer), ErrorCode::InvalidArgument);
    assert_eq!(db_hash(&mut harness), before);
    let mut dave = harness.connect([0xd0; 16]);
    assert!(harness.request(&mut dave, &tries()).inner.is_some());
    let _ = harness.request_raw(&mut carol, &tries());
}

#[test]
fn frames_before_the_handshake_are_refused() {
    let mut harness = Harness::with_group(6);
    let Answer::NewClient(reply) = harness.call(Call::NewClient(NewClientRequest {
        client_authenticated_id: ALICE.to_vec(),
    })) else {
        panic!()
    };
    for data in [vec![], vec![0; 16], vec![7; 200]] {
        let answer = harness.call(Call::ExistingClient(ExistingClientRequest {
            client_id: reply.client_id,
            data,
        }));
        assert!(matches!(
            error_code(&answer),
            ErrorCode::InvalidArgument | ErrorCode::NotFound
        ));
    }
    assert_eq!(metric(&mut harness, "client_sessions"), 0);
}

#[test]
fn out_of_bounds_requests_are_invalid_and_change_nothing() {
    let mut harness = Harness::with_group(7);
    let mut alice = harness.connect(ALICE);
    harness.request(&mut alice, &backup(&[1; 16], &[1; 32], 5));
    let before = db_hash(&mut harness);
    for bad in [
        backup(&[1; 15], &[1; 32], 5),
        backup(&[1; 49], &[1; 32], 5),
        backup(&[1; 16], &[1; 31], 5),
        backup(&[1; 16], &[1; 32], 0),
        backup(&[1; 16], &[1; 32], 256),
        expose(&[1; 50]),
        restore(&[1; 33]),
        Request { inner: None },
    ] {
        let mut client = harness.connect(ALICE);
        assert_eq!(
            error_code(&harness.request_raw(&mut client, &bad)),
            ErrorCode::InvalidArgument,
            "{bad:?}"
        );
    }
    assert_eq!(db_hash(&mut harness), before);
    let Some(response::Inner::Tries(t)) = harness.request(&mut alice, &tries()).inner else {
        panic!()
    };
    assert_eq!(t.tries, 5);
}

#[test]
fn new_clients_need_a_group_and_a_sixteen_byte_id() {
    let mut harness = Harness::bare(8);
    let answer = harness.call(Call::NewClient(NewClientRequest {
        client_authenticated_id: ALICE.to_vec(),
    }));
    assert_eq!(error_code(&answer), ErrorCode::Unavailable);
    let mut harness = Harness::with_group(8);
    for id in [vec![], vec![1; 15], vec![1; 17]] {
        let answer = harness.call(Call::NewClient(NewClientRequest {
            client_authenticated_id: id,
        }));
        assert_eq!(error_code(&answer), ErrorCode::InvalidArgument);
    }
    let again = harness.call(Call::CreateNewRaftGroup(
        CreateNewRaftGroupRequest::default(),
    ));
    assert_eq!(error_code(&again), ErrorCode::FailedPrecondition);
}

#[test]
fn the_session_table_is_bounded() {
    let mut harness = Harness::with_group(9);
    let config = EnclaveConfig {
        client_sessions_max: 2,
        ..Default::default()
    };
    assert!(matches!(
        harness.call(Call::Reconfigure(config)),
        Answer::Done(_)
    ));
    harness.connect(ALICE);
    let bob = harness.connect(BOB);
    let answer = harness.call(Call::NewClient(NewClientRequest {
        client_authenticated_id: ALICE.to_vec(),
    }));
    assert_eq!(error_code(&answer), ErrorCode::ResourceExhausted);
    assert!(matches!(
        harness.call(Call::CloseClient(CloseClientRequest {
            client_id: bob.client_id
        })),
        Answer::Done(_)
    ));
    harness.connect(BOB);
}

#[test]
fn sessions_idle_past_the_bound_close_on_a_tick_and_free_their_place() {
    use crate::client::CLIENT_SESSION_IDLE_SECS_MAX;
    let mut harness = Harness::with_group(19);
    let config = EnclaveConfig {
        client_sessions_max: 2,
        ..Default::default()
    };
    assert!(matches!(
        harness.call(Call::Reconfigure(config)),
        Answer::Done(_)
    ));
    let tries = Request {
        inner: Some(request::Inner::Tries(TriesRequest {})),
    };
    let mut alice = harness.connect(ALICE);
    let mut bob = harness.connect(BOB);
    // Bob is active half way through; Alice never again (her host went away silently).
    harness.tick(NOW + CLIENT_SESSION_IDLE_SECS_MAX / 2);
    harness.request(&mut bob, &tries);
    harness.tick(NOW + CLIENT_SESSION_IDLE_SECS_MAX);
    harness.request(&mut alice, &tries); // at the bound: still open
    harness.tick(NOW + CLIENT_SESSION_IDLE_SECS_MAX + CLIENT_SESSION_IDLE_SECS_MAX / 2 + 1);
    // Bob's last frame is now over the bound ago, Alice's is not.
    harness.request(&mut alice, &tries);
    let answer = harness.request_raw(&mut bob, &tries);
    assert_eq!(error_code(&answer), ErrorCode::NotFound);
    // Bob's place is free again for a new session.
    harness.connect(BOB);
    assert_eq!(metric(&mut harness, "client_sessions_expired"), 1);
}

#[test]
fn key_rotation_keeps_old_sessions_and_attests_the_new_key() {
    let mut harness = Harness::with_group(10);
    let mut before = harness.connect(ALICE);
    // A session that started its handshake before the rotation finishes with the old key.
    let Answer::NewClient(pending) = harness.call(Call::NewClient(NewClientRequest {
        client_authenticated_id: BOB.to_vec(),
    })) else {
        panic!()
    };
    assert!(matches!(
        harness.call(Call::RefreshAttestation(RefreshAttestationRequest {})),
        Answer::Done(_)
    ));
    let Answer::NewClient(fresh) = harness.call(Call::NewClient(NewClientRequest {
        client_authenticated_id: BOB.to_vec(),
    })) else {
        panic!()
    };
    let old_key = pending.handshake_start.unwrap().test_only_pubkey;
    assert_ne!(old_key, fresh.handshake_start.unwrap().test_only_pubkey);
    let mut initiator = snow::Builder::new(crate::CLIENT_NOISE_PATTERN.parse().unwrap())
        .remote_public_key(&old_key)
        .unwrap()
        .build_initiator()
        .unwrap();
    let mut message = vec![0; 256];
    let length = initiator.write_message(&[], &mut message).unwrap();
    let answer = harness.call(Call::ExistingClient(ExistingClientRequest {
        client_id: pending.client_id,
        data: message[..length].to_vec(),
    }));
    assert!(matches!(answer, Answer::ExistingClient(_)));
    assert!(harness.request(&mut before, &tries()).inner.is_some());
    let mut after = harness.connect(ALICE);
    assert!(harness.request(&mut after, &tries()).inner.is_some());
}

#[test]
fn replica_group_calls_check_their_preconditions() {
    let mut harness = Harness::with_group(11);
    let answer = harness.call(Call::JoinRaft(JoinRaftRequest {
        peer_id: vec![1; 32],
    }));
    assert_eq!(
        error_code(&answer),
        ErrorCode::FailedPrecondition,
        "already in a group"
    );
    let mut bare = Harness::bare(12);
    for peer_id in [vec![], vec![1; 31], bare.enclave.peer_id().to_vec()] {
        let answer = bare.call(Call::JoinRaft(JoinRaftRequest { peer_id }));
        assert_eq!(error_code(&answer), ErrorCode::InvalidArgument);
    }
    let answer = bare.call(Call::RequestVoting(Default::default()));
    assert_eq!(
        error_code(&answer),
        ErrorCode::FailedPrecondition,
        "no group"
    );
    let answer = harness.call(Call::PingPeer(cloister_proto::enclave::PingPeerRequest {
        peer_id: vec![1; 3],
    }));
    assert_eq!(error_code(&answer), ErrorCode::InvalidArgument);
    let answer = harness.call(Call::RelinquishLeadership(Default::default()));
    assert_eq!(
        error_code(&answer),
        ErrorCode::FailedPrecondition,
        "no other voter"
    );
    // SVR2's client_pq option is served (tests/client_pq.rs covers its handshakes).
    let pq = CreateNewRaftGroupRequest {
        client_pq: true,
        ..Default::default()
    };
    let Answer::Status(status) = Harness::bare(11).call(Call::CreateNewRaftGroup(pq)) else {
        panic!("a client_pq group is created")
    };
    assert!(status.group_config.unwrap().client_pq);
    let reset = UntrustedMessage {
        inner: Some(untrusted_message::Inner::ResetPeer(Default::default())),
    };
    assert!(matches!(
        harness.feed(&reset.encode_to_vec()),
        Err(crate::Error::HostMisbehaved(_))
    ));
}

#[test]
fn host_delete_commits_through_the_log() {
    let mut harness = Harness::with_group(12);
    let mut alice = harness.connect(ALICE);
    harness.request(&mut alice, &backup(&[1; 16], &[1; 32], 5));
    let answer = harness.call(Call::DeleteBackup(DeleteBackupRequest {
        backup_id: ALICE.to_vec(),
    }));
    assert!(matches!(answer, Answer::Done(_)));
    let bad = harness.call(Call::DeleteBackup(DeleteBackupRequest {
        backup_id: vec![1; 3],
    }));
    assert_eq!(error_code(&bad), ErrorCode::InvalidArgument);
    let Some(response::Inner::Tries(t)) = harness.request(&mut alice, &tries()).inner else {
        panic!()
    };
    assert_eq!(t.status(), tries_response::Status::Missing);
}

#[test]
fn the_log_is_capped_in_bytes_and_drains_after_apply() {
    let mut harness = Harness::bare(13);
    let create = CreateNewRaftGroupRequest {
        log_bytes_max: 64 * 1024,
        ..Default::default()
    };
    assert!(matches!(
        harness.call(Call::CreateNewRaftGroup(create)),
        Answer::Status(_)
    ));
    let mut client = harness.connect(ALICE);
    // Propose without polling: nothing commits, so the log fills up.
    let mut refused = None;
    for attempt in 0..2_000 {
        let frame = client.encrypt(&backup(&[1; 48], &[1; 32], 5).encode_to_vec());
        harness.send(Call::ExistingClient(ExistingClientRequest {
            client_id: client.client_id,
            data: frame,
        }));
        if harness.enclave.outbox_len() > 0 {
            refused = Some(attempt);
            break;
        }
    }
    let refused = refused.expect("the log cap refuses proposals");
    assert!(refused > 100, "refused after {refused}");
    let answers = harness.answers();
    assert!(
        answers
            .iter()
            .any(|(_, a)| matches!(a, Answer::Error(e) if e.code() == ErrorCode::Unavailable))
    );
    // Applied entries are trimmed in chunks: down to three eighths of the cap.
    let held = metric(&mut harness, "log_bytes");
    assert!(held <= 64 * 1024 / 2 * 3 / 4, "{held} bytes held");
    assert!(metric(&mut harness, "log_entries") < refused as u64);
    let mut fresh = harness.connect(BOB);
    assert!(harness.request(&mut fresh, &tries()).inner.is_some());
}

#[test]
fn time_only_moves_forward() {
    let mut harness = Harness::with_group(14);
    harness.tick(NOW + 100);
    harness.tick(NOW + 50);
    assert_eq!(metric(&mut harness, "timestamp_unix_secs"), NOW + 100);
}

#[test]
fn log_records_respect_the_level() {
    let mut harness = Harness::with_group(15);
    let quiet = SetLogLevelRequest {
        log_level: EnclaveLogLevel::Error as i32,
    };
    assert!(matches!(
        harness.call(Call::SetLogLevel(quiet)),
        Answer::Done(_)
    ));
    harness.tick(NOW - 10); // would log a warning
    let logs = harness
        .drain()
        .into_iter()
        .filter(|m| matches!(m.inner, Some(enclave_message::Inner::Log(_))))
        .count();
    assert_eq!(logs, 0);
    let bad = SetLogLevelRequest { log_level: 99 };
    assert_eq!(
        error_code(&harness.call(Call::SetLogLevel(bad))),
        ErrorCode::InvalidArgument
    );
}

#[test]
fn the_same_seed_and_inputs_give_the_same_bytes() {
    let run = || {
        let mut harness = Harness::with_group(16);
        let mut alice = harness.connect(ALICE);
        harness.request(&mut alice, &backup(&[1; 16], &[1; 32], 5));
        harness.request(&mut alice, &expose(&[1; 16]));
        harness.request(&mut alice, &restore(&[2; 32]));
        harness.tick(NOW + 1);
        harness.call(Call::RefreshAttestation(RefreshAttestationRequest {}));
        harness.connect(BOB);
        harness.transcript
    };
    let (first, second) = (run(), run());
    // Client-side snow ephemerals are random, so compare what does not depend on them.
    assert_eq!(first.len(), second.len());
    assert_eq!(
        first[0], second[0],
        "group creation (ids, keys, evidence) replays exactly"
    );
}
