//! One connection against the fake server: handshake, typed operations, refusals.

use std::time::Duration;

use crate::test_support::server::{ConnectionFault, FakeServer, RequestFault};
use crate::{
    Client, ClientHandshake, ConnectOptions, Credentials, EnclaveId, Error, ExposeOutcome, Phase,
    RestoreOutcome, TriesOutcome,
};

const PIN: [u8; 32] = [0x11; 32];
const WRONG_PIN: [u8; 32] = [0x22; 32];

// SVR2 client protocol: several requests may share one connection; Backup, Expose,
// Restore, Delete and Tries semantics.
#[tokio::test]
async fn typed_operations_share_one_connection() {
    typed_operations(FakeServer::start().await, ClientHandshake::Classical).await;
}

// SVR2 client protocol: Session 3, `client_pq`. The SDK reads the option from the attested
// group config and runs NKhfs against snow's own responder (PQClean's KEM).
#[tokio::test]
async fn typed_operations_over_the_post_quantum_handshake() {
    typed_operations(FakeServer::start_pq().await, ClientHandshake::PostQuantum).await;
}

async fn typed_operations(server: FakeServer, pattern: ClientHandshake) {
    let mut connection = server.client().connect().await.unwrap();
    assert_eq!(connection.enclave().handshake(), pattern);
    assert_eq!(
        connection.enclave().attestation().group_config().client_pq,
        pattern == ClientHandshake::PostQuantum
    );
    assert_ne!(connection.handshake_hash(), &[0; 32]);
    assert_eq!(connection.group_id(), crate::test_support::server::GROUP_ID);
    assert!(connection.enclave().attestation().simulated());

    assert_eq!(connection.tries().await.unwrap(), TriesOutcome::Missing);
    connection.backup(&[7; 48], &PIN, 3).await.unwrap();
    assert_eq!(
        connection.tries().await.unwrap(),
        TriesOutcome::Ok {
            tries: 3,
            exposed: false
        }
    );
    // Not exposed yet: Restore says MISSING and spends nothing.
    assert!(matches!(
        connection.restore(&PIN).await.unwrap(),
        RestoreOutcome::Missing
    ));
    assert_eq!(
        connection.expose(&[8; 48]).await.unwrap(),
        ExposeOutcome::Error
    );
    assert_eq!(
        connection.expose(&[7; 48]).await.unwrap(),
        ExposeOutcome::Ok
    );
    assert!(matches!(
        connection.restore(&WRONG_PIN).await.unwrap(),
        RestoreOutcome::PinMismatch { tries_left: 2 }
    ));
    let RestoreOutcome::Ok { data, tries } = connection.restore(&PIN).await.unwrap() else {
        panic!("expected the data back");
    };
    assert_eq!((data.as_slice(), tries), (&[7u8; 48][..], 2));
    connection.delete().await.unwrap();
    assert_eq!(connection.tries().await.unwrap(), TriesOutcome::Missing);
    connection.close().await;
}

// A function that returns Err leaves state as it was: invalid input is refused before
// anything is sent, and the connection stays usable.
#[tokio::test]
async fn invalid_input_is_refused_locally_and_keeps_the_connection() {
    let server = FakeServer::start().await;
    let mut connection = server.client().connect().await.unwrap();
    let error = connection.backup(&[7; 15], &PIN, 3).await.unwrap_err();
    assert!(matches!(error, Error::InvalidInput { field: "data", .. }));
    let error = connection.backup(&[7; 16], &PIN, 0).await.unwrap_err();
    assert!(matches!(
        error,
        Error::InvalidInput {
            field: "max_tries",
            ..
        }
    ));
    let error = connection.expose(&[7; 49]).await.unwrap_err();
    assert!(matches!(error, Error::InvalidInput { field: "data", .. }));
    assert!(server.state().applied.is_empty());
    assert_eq!(connection.tries().await.unwrap(), TriesOutcome::Missing);
}

// SVR2 client protocol: close codes 4003, 4013, 4014; a broken connection refuses more work.
#[tokio::test]
async fn close_codes_become_typed_errors_and_break_the_connection() {
    let server = FakeServer::start().await;
    for (code, check) in [
        (
            4014,
            (|error: &Error| matches!(error, Error::Unavailable { .. })) as fn(&Error) -> bool,
        ),
        (4003, |error| matches!(error, Error::InvalidArgument { .. })),
        (4013, |error| matches!(error, Error::Internal { .. })),
        (1000, |error| matches!(error, Error::ClosedNormally)),
    ] {
        server
            .state()
            .request_faults
            .push_back(RequestFault::CloseBefore(code));
        let mut connection = server.client().connect().await.unwrap();
        let error = connection.backup(&[7; 32], &PIN, 3).await.unwrap_err();
        assert!(check(&error), "{code}: {error}");
        assert!(matches!(
            connection.tries().await,
            Err(Error::ConnectionBroken)
        ));
    }
    assert!(server.state().applied.is_empty());
}

#[tokio::test]
async fn a_response_of_the_wrong_type_is_a_protocol_error() {
    let server = FakeServer::start().await;
    server
        .state()
        .request_faults
        .push_back(RequestFault::WrongType);
    let mut connection = server.client().connect().await.unwrap();
    let error = connection.tries().await.unwrap_err();
    assert!(matches!(error, Error::Protocol(_)), "{error}");
}

#[tokio::test]
async fn a_dropped_reply_is_a_transport_error() {
    let server = FakeServer::start().await;
    server
        .state()
        .request_faults
        .push_back(RequestFault::DropAfter);
    let mut connection = server.client().connect().await.unwrap();
    let error = connection.backup(&[7; 32], &PIN, 3).await.unwrap_err();
    assert!(
        error.is_retryable() && !error.guarantees_no_state_change(),
        "{error}"
    );
    assert_eq!(server.state().applied, ["backup"]);
}

// SVR2 client protocol: HTTP 401, 404 and 429 with Retry-After.
#[tokio::test]
async fn http_refusals_become_typed_errors() {
    let server = FakeServer::start().await;
    server
        .state()
        .connection_faults
        .push_back(ConnectionFault::Http(401, None));
    assert!(matches!(
        server.client().connect().await,
        Err(Error::Unauthorized)
    ));
    server
        .state()
        .connection_faults
        .push_back(ConnectionFault::Http(429, Some("3")));
    let error = server.client().connect().await.unwrap_err();
    assert!(matches!(
        error,
        Error::RateLimited { retry_after: Some(delay) } if delay == Duration::from_secs(3)
    ));
    let credentials = Credentials::new(crate::test_support::server::USERNAME, "t").unwrap();
    let other = Client::new(
        &server.base_url,
        EnclaveId::new([9; 32]),
        credentials,
        ConnectOptions::insecure_simulated(),
    )
    .unwrap();
    assert!(matches!(other.connect().await, Err(Error::UnknownEnclave)));
}

#[tokio::test]
async fn simulated_enclaves_are_refused_without_the_insecure_option() {
    let server = FakeServer::start().await;
    let credentials = Credentials::new(crate::test_support::server::USERNAME, "t").unwrap();
    let strict = Client::new(
        &server.base_url,
        EnclaveId::new(cloister_attest::sim::measurement()),
        credentials,
        ConnectOptions::default(),
    )
    .unwrap();
    let error = strict.connect().await.unwrap_err();
    assert!(matches!(error, Error::SimulatedRefused), "{error}");
}

#[tokio::test]
async fn bad_first_frames_and_silence_are_refused() {
    let server = FakeServer::start().await;
    server
        .state()
        .connection_faults
        .push_back(ConnectionFault::FirstFrame(vec![0xff; 10]));
    assert!(matches!(
        server.client().connect().await,
        Err(Error::Protocol(_))
    ));
    server
        .state()
        .connection_faults
        .push_back(ConnectionFault::Silent);
    let error = server.client().connect().await.unwrap_err();
    assert!(matches!(error, Error::Timeout(Phase::Handshake)), "{error}");
}

#[tokio::test]
async fn nothing_listening_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let credentials = Credentials::new(crate::test_support::server::USERNAME, "t").unwrap();
    let client = Client::new(
        &format!("ws://{address}"),
        EnclaveId::new([1; 32]),
        credentials,
        ConnectOptions::default(),
    )
    .unwrap();
    let error = client.connect().await.unwrap_err();
    assert!(matches!(error, Error::Transport(_)), "{error}");
}
