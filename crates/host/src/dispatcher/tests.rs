use std::sync::Arc;
use std::time::Duration;

use cloister_proto::enclave::ErrorCode;

use super::*;
use crate::auth::BackupId;
use crate::testing::{FAKE_MEASUREMENT, FakeEnclave};

fn settings(pending_calls_max: usize, call_timeout: Duration) -> DispatcherSettings {
    DispatcherSettings {
        queue_messages_max: 16,
        batch_messages_max: 4,
        pending_calls_max,
        call_timeout,
    }
}

fn start(pending_calls_max: usize, call_timeout: Duration) -> (Dispatcher, DispatcherThread) {
    let (fake, _journal) = FakeEnclave::new(true);
    spawn(
        fake,
        settings(pending_calls_max, call_timeout),
        Arc::default(),
    )
    .unwrap()
}

fn user() -> BackupId {
    BackupId::parse_hex("00112233445566778899aabbccddeeff").unwrap()
}

#[tokio::test]
async fn calls_are_answered_by_request_id() {
    let (dispatcher, thread) = start(64, Duration::from_secs(5));
    let status = dispatcher.status().await.unwrap();
    assert_eq!(status.measurement, FAKE_MEASUREMENT);
    let client = dispatcher.new_client(&user()).await.unwrap();
    // Many concurrent calls, each answered with its own data.
    let calls = (0..32u32).map(|index| {
        let dispatcher = dispatcher.clone();
        async move {
            let data = index.to_be_bytes().to_vec();
            let reply = dispatcher
                .existing_client(client.client_id, data.clone())
                .await
                .unwrap();
            assert_eq!(reply, [b"echo:".as_slice(), &data].concat());
        }
    });
    futures_util::future::join_all(calls).await;
    assert_eq!(dispatcher.pending_calls(), 0);
    assert_eq!(dispatcher.metrics().counter(Counter::EnclaveCalls), 34);
    thread.stop().await.unwrap();
}

#[tokio::test]
async fn an_enclave_error_becomes_a_host_error_with_its_code() {
    let (dispatcher, thread) = start(64, Duration::from_secs(5));
    let client = dispatcher.new_client(&user()).await.unwrap();
    let result = dispatcher
        .existing_client(client.client_id, b"invalid".to_vec())
        .await;
    assert!(matches!(
        result,
        Err(HostError::Enclave {
            code: ErrorCode::InvalidArgument,
            ..
        })
    ));
    assert_eq!(dispatcher.metrics().counter(Counter::EnclaveErrors), 1);
    // Closing a session the enclave already ended is fine.
    dispatcher.close_client(client.client_id).await.unwrap();
    thread.stop().await.unwrap();
}

#[tokio::test]
async fn a_refused_message_fails_only_its_call() {
    let (dispatcher, thread) = start(64, Duration::from_secs(5));
    let client = dispatcher.new_client(&user()).await.unwrap();
    let result = dispatcher
        .existing_client(client.client_id, b"refuse".to_vec())
        .await;
    assert!(matches!(result, Err(HostError::EnclaveRejected(_))));
    assert_eq!(
        dispatcher.metrics().counter(Counter::EnclaveHandleErrors),
        1
    );
    dispatcher.status().await.unwrap();
    thread.stop().await.unwrap();
}

#[tokio::test]
async fn a_full_pending_table_answers_busy_and_changes_nothing() {
    let (dispatcher, thread) = start(1, Duration::from_secs(5));
    let client = dispatcher.new_client(&user()).await.unwrap();
    let hanging = {
        let dispatcher = dispatcher.clone();
        tokio::spawn(async move {
            dispatcher
                .existing_client(client.client_id, b"hang".to_vec())
                .await
        })
    };
    while dispatcher.pending_calls() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(matches!(dispatcher.status().await, Err(HostError::Busy(_))));
    assert_eq!(dispatcher.metrics().counter(Counter::EnclaveBusy), 1);
    // A caller that goes away frees its slot.
    hanging.abort();
    let _ = hanging.await;
    assert_eq!(dispatcher.pending_calls(), 0);
    dispatcher.status().await.unwrap();
    thread.stop().await.unwrap();
}

#[tokio::test]
async fn a_late_answer_times_out_and_is_counted_as_an_orphan() {
    let (dispatcher, thread) = start(8, Duration::from_millis(100));
    let client = dispatcher.new_client(&user()).await.unwrap();
    let result = dispatcher
        .existing_client(client.client_id, b"late".to_vec())
        .await;
    assert!(matches!(result, Err(HostError::EnclaveTimeout(_))));
    assert_eq!(dispatcher.pending_calls(), 0);
    dispatcher.tick(1).await.unwrap();
    // The tick's log record and the late answer are drained together.
    while dispatcher.metrics().counter(Counter::EnclaveLogRecords) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        dispatcher
            .metrics()
            .counter(Counter::EnclaveOrphanResponses),
        1
    );
    assert_eq!(dispatcher.metrics().counter(Counter::EnclaveTimeouts), 1);
    thread.stop().await.unwrap();
}

#[tokio::test]
async fn stopping_fails_waiting_and_later_calls() {
    let (dispatcher, thread) = start(8, Duration::from_secs(30));
    let client = dispatcher.new_client(&user()).await.unwrap();
    let hanging = {
        let dispatcher = dispatcher.clone();
        tokio::spawn(async move {
            dispatcher
                .existing_client(client.client_id, b"hang".to_vec())
                .await
        })
    };
    while dispatcher.pending_calls() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    thread.stop().await.unwrap();
    assert!(matches!(
        hanging.await.unwrap(),
        Err(HostError::EnclaveStopped)
    ));
    assert!(matches!(
        dispatcher.status().await,
        Err(HostError::EnclaveStopped)
    ));
    assert!(matches!(
        dispatcher.tick(2).await,
        Err(HostError::EnclaveStopped)
    ));
    dispatcher.stopped().await;
}

#[tokio::test]
async fn a_panicking_enclave_fails_calls_and_reports_the_panic() {
    let (dispatcher, thread) = start(8, Duration::from_secs(30));
    let client = dispatcher.new_client(&user()).await.unwrap();
    let result = dispatcher
        .existing_client(client.client_id, b"panic".to_vec())
        .await;
    assert!(matches!(result, Err(HostError::EnclaveStopped)));
    // `stopped` wakes while the thread unwinds; `stop` joins it and reports the panic.
    dispatcher.stopped().await;
    assert!(matches!(
        thread.stop().await,
        Err(HostError::EnclavePanicked)
    ));
}
