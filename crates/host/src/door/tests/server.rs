//! A real enclave server and core, driven by `RemoteDoor`s: attach, reattach, refusals.

use super::*;

#[test]
fn the_first_host_creates_the_core_and_a_batch_is_answered_in_one_exchange() {
    let server = Running::unix("fresh");
    let mut door = server
        .connect(&init_config(EnclaveLogLevel::Info, NOW))
        .unwrap();
    let attachment = door.attachment().clone();
    assert_eq!(
        attachment,
        Attachment {
            reattached: false,
            first_request_id: 1,
            backend: "simulated".into()
        }
    );
    assert_eq!(door.first_request_id(), 1);
    let batch = [
        tick(NOW),
        status_request(1),
        vec![0xff, 0xff],
        status_request(2),
    ];
    let (exchanged, answers) = exchange(&mut door, &batch);
    assert!(exchanged.drained);
    assert_eq!(exchanged.refusals.len(), 4);
    assert!(exchanged.refusals[2].is_some(), "{exchanged:?}");
    assert!(
        [0, 1, 3]
            .iter()
            .all(|index| exchanged.refusals[*index].is_none()),
        "{exchanged:?}"
    );
    let ids: Vec<u64> = answers.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![1, 2]);
    assert!(
        answers
            .iter()
            .all(|(_, answer)| matches!(answer, host_to_enclave_response::Inner::Status(_)))
    );
}

#[test]
fn a_restarted_host_reattaches_to_the_running_core_and_finds_its_state() {
    let server = Running::unix("reattach");
    let mut first = server
        .connect(&init_config(EnclaveLogLevel::Info, NOW))
        .unwrap();
    let before = create_group(&mut first);
    let hashes_before = hashes(&mut first);
    drop(first);

    // A restarted host: the same settings, a later clock.
    let mut second = server
        .connect(&init_config(EnclaveLogLevel::Info, NOW + 600))
        .unwrap();
    assert!(second.attachment().reattached);
    assert_eq!(second.first_request_id(), REQUEST_IDS_PER_ATTACH + 1);
    let after = status(&mut second);
    assert_eq!(after.peer_id, before.peer_id);
    assert_eq!(after.group_config, before.group_config);
    assert_eq!(hashes(&mut second), hashes_before);
    drop(second);

    let third = server
        .connect(&init_config(EnclaveLogLevel::Info, NOW + 1200))
        .unwrap();
    assert_eq!(third.first_request_id(), 2 * REQUEST_IDS_PER_ATTACH + 1);
}

#[test]
fn a_second_host_is_refused_while_one_is_attached() {
    let server = Running::unix("second");
    let init = init_config(EnclaveLogLevel::Info, NOW);
    let mut first = server.connect(&init).unwrap();
    let peer_id = status(&mut first).peer_id;
    match server.connect(&init) {
        Err(DoorError::Refused { reason, .. }) => {
            assert!(reason.contains("another host is attached"), "{reason}");
        }
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("a second host was attached"),
    }
    // The attached host did not notice.
    assert_eq!(status(&mut first).peer_id, peer_id);
}

#[test]
fn a_reattach_with_a_different_config_is_refused_and_changes_nothing() {
    let server = Running::unix("config");
    let mut first = server
        .connect(&init_config(EnclaveLogLevel::Info, NOW))
        .unwrap();
    let before = create_group(&mut first);
    drop(first);
    match server.connect(&init_config(EnclaveLogLevel::Verbose, NOW)) {
        Err(DoorError::Refused { reason, .. }) => {
            assert!(reason.contains("different config"), "{reason}");
            assert!(reason.contains("Verbose"), "names what differs: {reason}");
        }
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("attached with a different config"),
    }
    let mut again = server
        .connect(&init_config(EnclaveLogLevel::Info, NOW))
        .unwrap();
    // The refused attach did not count: this is the second host.
    assert_eq!(again.first_request_id(), REQUEST_IDS_PER_ATTACH + 1);
    let after = status(&mut again);
    assert_eq!(
        (after.peer_id, after.group_config),
        (before.peer_id, before.group_config)
    );
}

#[test]
fn tcp_carries_the_door_too() {
    let address: EnclaveAddress = "tcp:127.0.0.1:0".parse().unwrap();
    let server = Running::on(&address, None);
    assert_ne!(server.address, address, "the bound port is reported");
    let mut door = server
        .connect(&init_config(EnclaveLogLevel::Info, NOW))
        .unwrap();
    assert_eq!(status(&mut door).peer_id.len(), 32);
}

#[tokio::test]
async fn the_dispatcher_numbers_requests_from_the_enclaves_range_and_stops_when_it_goes() {
    let mut server = Running::unix("dispatcher");
    drop(
        server
            .connect(&init_config(EnclaveLogLevel::Info, NOW))
            .unwrap(),
    );
    let door = server
        .connect(&init_config(EnclaveLogLevel::Info, NOW))
        .unwrap();
    assert_eq!(door.first_request_id(), REQUEST_IDS_PER_ATTACH + 1);
    let settings = crate::dispatcher::DispatcherSettings {
        queue_messages_max: 64,
        batch_messages_max: 16,
        pending_calls_max: 64,
        call_timeout: Duration::from_secs(10),
    };
    let metrics = std::sync::Arc::new(crate::metrics::HostMetrics::default());
    let (dispatcher, thread) = crate::dispatcher::spawn(door, settings, metrics).unwrap();
    dispatcher.tick(NOW).await.unwrap();
    let status = dispatcher.status().await.unwrap();
    assert_eq!(status.peer_id.len(), 32);

    // The enclave process goes away: the next exchange fails, and the thread stops.
    tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap()
        .unwrap();
    let _ = dispatcher.tick(NOW + 1).await;
    tokio::time::timeout(Duration::from_secs(30), dispatcher.stopped())
        .await
        .unwrap();
    // `stopped` fires as the worker drops, a moment before its thread returns.
    for _ in 0..1_000 {
        if thread.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(thread.is_finished());
    assert!(matches!(
        dispatcher.status().await,
        Err(crate::HostError::EnclaveStopped)
    ));
}

#[test]
fn a_platform_backend_gives_the_core_its_env_or_the_host_the_reason_it_cannot() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use cloister_enclave::{InsecureSimulatedEnv, PlatformError};

    // A platform whose device comes and goes (the simulated Env stands in for its evidence).
    let present = Arc::new(AtomicBool::new(false));
    let device = present.clone();
    let backend = EnclaveBackend::Platform {
        name: "tdx".into(),
        open: Arc::new(move || {
            if device.load(Ordering::Relaxed) {
                Ok(Box::new(InsecureSimulatedEnv::from_seed([5; 32]))
                    as Box<dyn cloister_enclave::Env>)
            } else {
                Err(PlatformError(
                    "configfs-tsm not found at /sys/kernel/config/tsm/report".into(),
                ))
            }
        }),
    };
    let dir = TempDir::new("platform");
    let address = EnclaveAddress::Unix(dir.path().join("enclave.sock"));
    let server = Running::with_backend(&address, Some(dir), backend);
    match server.connect(&init_config(EnclaveLogLevel::Info, NOW)) {
        Err(DoorError::Refused { reason, .. }) => assert!(
            reason.contains("the tdx platform: configfs-tsm not found"),
            "{reason}"
        ),
        other => panic!("attached without a platform: {:?}", other.map(|_| ())),
    }
    // No core was made: once the device is there, the next host creates one.
    present.store(true, Ordering::Relaxed);
    let door = server
        .connect(&init_config(EnclaveLogLevel::Info, NOW))
        .unwrap();
    assert_eq!(door.attachment().backend, "tdx");
    assert!(!door.attachment().reattached);
}
