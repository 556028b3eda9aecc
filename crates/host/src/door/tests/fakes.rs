//! `RemoteDoor` against fake enclave processes that hang or break the protocol.

use super::*;

/// A fake enclave process on a unix socket: `script` runs on the accepted connection.
fn fake_enclave(
    name: &str,
    script: impl FnOnce(UnixStream) + Send + 'static,
) -> (EnclaveAddress, JoinHandle<()>, TempDir) {
    let dir = TempDir::new(name);
    let path = dir.path().join("fake.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let thread = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        script(stream);
    });
    (EnclaveAddress::Unix(path), thread, dir)
}

fn answer_attach(stream: &mut UnixStream) {
    let bytes = frame::read_frame(stream, HOST_FRAME_BYTES_MAX)
        .unwrap()
        .unwrap();
    let frame = HostFrame::decode(bytes.as_slice()).unwrap();
    assert!(matches!(frame.kind, Some(host_frame::Kind::Attach(_))));
    let attached = Attached {
        protocol_version: frame::PROTOCOL_VERSION,
        reattached: false,
        first_request_id: 1,
        backend: "fake".into(),
    };
    let frame = EnclaveFrame {
        kind: Some(enclave_frame::Kind::Attached(attached)),
    };
    frame::write_frame(stream, &frame, ENCLAVE_FRAME_BYTES_MAX).unwrap();
}

fn short_timeouts() -> RemoteSettings {
    RemoteSettings {
        connect_timeout: Duration::from_millis(300),
        exchange_timeout: Duration::from_millis(300),
    }
}

/// Keeps the connection open until the host closes it, answering nothing.
fn hang(mut stream: UnixStream) {
    let mut sink = Vec::new();
    let _ = stream.read_to_end(&mut sink);
}

#[test]
fn an_enclave_that_never_answers_attach_is_a_timeout() {
    let (address, thread, _dir) = fake_enclave("hung-attach", hang);
    let init = init_config(EnclaveLogLevel::Info, NOW);
    match RemoteDoor::connect(&address, &init, short_timeouts()) {
        Err(DoorError::Timeout { context, .. }) => assert!(context.contains("fake.sock")),
        Err(other) => panic!("expected a timeout, got {other}"),
        Ok(_) => panic!("attached to a silent enclave"),
    }
    thread.join().unwrap();
}

#[test]
fn an_enclave_that_hangs_mid_batch_breaks_the_door_for_good() {
    let (address, thread, _dir) = fake_enclave("hung-batch", |mut stream| {
        answer_attach(&mut stream);
        hang(stream);
    });
    let init = init_config(EnclaveLogLevel::Info, NOW);
    let mut door = RemoteDoor::connect(&address, &init, short_timeouts()).unwrap();
    let mut outputs = 0;
    let timed_out = door.exchange(&[tick(NOW)], 16, &mut |_| outputs += 1);
    assert!(
        matches!(timed_out, Err(DoorError::Timeout { .. })),
        "{timed_out:?}"
    );
    let again = door.exchange(&[tick(NOW)], 16, &mut |_| outputs += 1);
    assert!(matches!(again, Err(DoorError::Broken(_))), "{again:?}");
    assert_eq!(outputs, 0);
    // handle() and poll_message() report the broken door too, without blocking.
    assert!(door.handle(&tick(NOW)).is_err());
    assert!(door.poll_message().is_none());
    drop(door);
    thread.join().unwrap();
}

#[test]
fn an_enclave_that_breaks_the_protocol_breaks_the_door() {
    let (address, thread, _dir) = fake_enclave("liar", |mut stream| {
        answer_attach(&mut stream);
        // Two Handle frames and a Drain arrive; answer with a refusal outside the batch.
        for _ in 0..3 {
            frame::read_frame(&mut stream, HOST_FRAME_BYTES_MAX).unwrap();
        }
        let drained = Drained {
            refusals: vec![Refusal {
                index: 5,
                reason: "no".into(),
            }],
            ..Drained::default()
        };
        let frame = EnclaveFrame {
            kind: Some(enclave_frame::Kind::Drained(drained)),
        };
        frame::write_frame(&mut stream, &frame, ENCLAVE_FRAME_BYTES_MAX).unwrap();
        hang(stream);
    });
    let init = init_config(EnclaveLogLevel::Info, NOW);
    let mut door = RemoteDoor::connect(&address, &init, short_timeouts()).unwrap();
    let broken = door.exchange(&[tick(NOW), tick(NOW)], 16, &mut |_| {});
    match broken {
        Err(DoorError::Protocol { what, .. }) => assert!(what.contains("refusal index 5")),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    drop(door);
    thread.join().unwrap();
}

#[test]
fn vsock_addresses_parse_and_an_unreachable_one_is_a_clear_error() {
    // This machine's vsock (if any) has no loopback, so only the failure path is tested here.
    let address: EnclaveAddress = "vsock:1:47000".parse().unwrap();
    assert_eq!(
        address,
        EnclaveAddress::Vsock {
            cid: 1,
            port: 47000
        }
    );
    let init = init_config(EnclaveLogLevel::Info, NOW);
    let error = RemoteDoor::connect(&address, &init, short_timeouts())
        .err()
        .unwrap();
    assert!(error.to_string().contains("vsock:1:47000"), "{error}");
}
