//! Raw frames a host should never send: each is refused, and the core is unchanged.

use super::*;

/// Writes one frame of raw bytes (length prefix and body).
fn send_raw(stream: &mut UnixStream, body: &[u8]) {
    stream
        .write_all(&(body.len() as u32).to_be_bytes())
        .unwrap();
    stream.write_all(body).unwrap();
}

fn send(stream: &mut UnixStream, kind: host_frame::Kind) {
    send_raw(stream, &HostFrame { kind: Some(kind) }.encode_to_vec());
}

fn receive(stream: &mut UnixStream) -> Option<enclave_frame::Kind> {
    let bytes = frame::read_frame(stream, ENCLAVE_FRAME_BYTES_MAX).unwrap()?;
    EnclaveFrame::decode(bytes.as_slice()).unwrap().kind
}

/// The enclave's refusal, after which it closes the connection.
fn expect_refused(mut stream: UnixStream) -> String {
    let reason = match receive(&mut stream) {
        Some(enclave_frame::Kind::Refused(refused)) => refused.reason,
        other => panic!("expected Refused, got {other:?}"),
    };
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "nothing after Refused");
    reason
}

fn raw_attach(server: &Running) -> UnixStream {
    let mut stream = server.raw();
    let attach = Attach {
        protocol_version: frame::PROTOCOL_VERSION,
        init_config: init_config(EnclaveLogLevel::Info, NOW),
    };
    send(&mut stream, host_frame::Kind::Attach(attach));
    assert!(matches!(
        receive(&mut stream),
        Some(enclave_frame::Kind::Attached(Attached {
            reattached: true,
            ..
        }))
    ));
    stream
}

#[test]
fn garbage_from_a_host_is_refused_and_leaves_the_core_as_it_was() {
    let server = Running::unix("garbage");
    let mut door = server
        .connect(&init_config(EnclaveLogLevel::Info, NOW))
        .unwrap();
    let before = create_group(&mut door);
    let hashes_before = hashes(&mut door);
    drop(door);

    let mut stream = server.raw();
    stream
        .write_all(&((HOST_FRAME_BYTES_MAX + 1) as u32).to_be_bytes())
        .unwrap();
    assert!(expect_refused(stream).contains("exceeds"));

    let mut stream = server.raw();
    send_raw(&mut stream, &[0xff; 12]);
    assert!(expect_refused(stream).contains("not a HostFrame"));

    let mut stream = server.raw();
    send_raw(&mut stream, &[]);
    assert!(expect_refused(stream).contains("empty frame"));

    let mut stream = server.raw();
    send(&mut stream, host_frame::Kind::UntrustedMessage(tick(NOW)));
    assert!(expect_refused(stream).contains("must be Attach"));

    let mut stream = server.raw();
    let attach = Attach {
        protocol_version: 2,
        init_config: init_config(EnclaveLogLevel::Info, NOW),
    };
    send(&mut stream, host_frame::Kind::Attach(attach));
    assert!(expect_refused(stream).contains("protocol version 2"));

    let mut stream = server.raw();
    let attach = Attach {
        protocol_version: frame::PROTOCOL_VERSION,
        init_config: vec![0xff; 20],
    };
    send(&mut stream, host_frame::Kind::Attach(attach));
    assert!(expect_refused(stream).contains("not a valid InitConfig"));

    let mut stream = raw_attach(&server);
    send(&mut stream, host_frame::Kind::Attach(Attach::default()));
    assert!(expect_refused(stream).contains("already attached"));

    // Messages the core refuses, one more than a batch may hold.
    let mut stream = raw_attach(&server);
    for _ in 0..=BATCH_MESSAGES_MAX {
        send(&mut stream, host_frame::Kind::UntrustedMessage(vec![0xff]));
    }
    assert!(expect_refused(stream).contains("before a Drain"));

    // Half a frame, then gone.
    let mut stream = raw_attach(&server);
    stream.write_all(&[0, 0, 1, 0, 9, 9]).unwrap();
    drop(stream);

    let mut door = server
        .connect(&init_config(EnclaveLogLevel::Info, NOW))
        .unwrap();
    assert!(door.attachment().reattached);
    let after = status(&mut door);
    assert_eq!(
        (after.peer_id, after.group_config),
        (before.peer_id, before.group_config)
    );
    assert_eq!(hashes(&mut door), hashes_before);
}

#[test]
fn a_refused_message_in_a_raw_batch_is_reported_by_its_index() {
    let server = Running::unix("indexes");
    drop(
        server
            .connect(&init_config(EnclaveLogLevel::Info, NOW))
            .unwrap(),
    );
    let mut stream = raw_attach(&server);
    for message in [tick(NOW), vec![0xff], tick(NOW), vec![]] {
        send(&mut stream, host_frame::Kind::UntrustedMessage(message));
    }
    send(
        &mut stream,
        host_frame::Kind::Drain(cloister_proto::door::Drain { messages_max: 0 }),
    );
    match receive(&mut stream) {
        Some(enclave_frame::Kind::Drained(Drained { refusals, more, .. })) => {
            let indexes: Vec<u32> = refusals.iter().map(|refusal| refusal.index).collect();
            assert_eq!(indexes, vec![1, 3]);
            assert!(!more);
        }
        other => panic!("expected Drained, got {other:?}"),
    }
}
