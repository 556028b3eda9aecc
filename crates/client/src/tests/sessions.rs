//! Whole flows against the fake server, with the real PIN hash (Argon2id): kept few.

use std::time::Duration;

use crate::pin::Secret;
use crate::session::{RestoreSecretOutcome, backup_secret, restore_secret, store_secret};
use crate::test_support::server::{ConnectionFault, FakeServer, RequestFault};
use crate::{Error, RetryPolicy};

fn fast() -> RetryPolicy {
    RetryPolicy {
        attempts_max: 4,
        backoff_initial: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
    }
}

// SVR2 client protocol: client-side PIN handling, and Restore semantics end to end.
#[tokio::test]
async fn backup_then_restore_with_the_right_and_a_wrong_pin() {
    let server = FakeServer::start().await;
    let client = server.client();
    let secret = Secret::new([0x5a; 32]);
    backup_secret(&client, &secret, "1234", 5, &fast())
        .await
        .unwrap();
    {
        let state = server.state();
        assert_eq!(state.applied, ["backup", "expose"]);
        let row = state.rows.values().next().unwrap();
        assert_eq!(row.data.len(), 48);
        assert!(!row.data.windows(32).any(|window| window == [0x5a; 32]));
    }
    let outcome = restore_secret(&client, "12345", &fast()).await.unwrap();
    assert!(matches!(
        outcome,
        RestoreSecretOutcome::PinMismatch { tries_left: 4 }
    ));
    // The same PIN typed in Arabic-Indic digits opens it.
    let outcome = restore_secret(&client, "١٢٣٤", &fast()).await.unwrap();
    let RestoreSecretOutcome::Ok {
        secret: restored,
        tries,
    } = outcome
    else {
        panic!("expected the secret, got {outcome:?}");
    };
    assert_eq!((restored, tries), (secret, 4));
}

// SVR2 client protocol: "clients call Backup until it succeeds".
#[tokio::test]
async fn backup_is_retried_on_new_connections_until_it_succeeds() {
    let server = FakeServer::start().await;
    {
        let mut state = server.state();
        state
            .request_faults
            .push_back(RequestFault::CloseBefore(4014));
        state.request_faults.push_back(RequestFault::DropAfter);
    }
    let secret = Secret::generate();
    backup_secret(&server.client(), &secret, "1234", 5, &fast())
        .await
        .unwrap();
    let state = server.state();
    assert_eq!(state.applied, ["backup", "backup", "expose"]);
    assert_eq!(state.connections, 4);
}

// SVR2 client protocol: "then Expose until it succeeds, and never Backup again".
#[tokio::test]
async fn after_a_successful_backup_only_expose_is_retried() {
    let server = FakeServer::start().await;
    {
        let mut state = server.state();
        state.request_faults.push_back(RequestFault::Pass);
        state.request_faults.push_back(RequestFault::DropAfter);
        state
            .request_faults
            .push_back(RequestFault::CloseBefore(4014));
    }
    backup_secret(&server.client(), &Secret::generate(), "1234", 5, &fast())
        .await
        .unwrap();
    assert_eq!(server.state().applied, ["backup", "expose", "expose"]);
}

#[tokio::test]
async fn retries_stop_at_the_bound_and_on_errors_that_will_not_pass() {
    let server = FakeServer::start().await;
    let client = server.client();
    for _ in 0..10 {
        server
            .state()
            .request_faults
            .push_back(RequestFault::CloseBefore(4014));
    }
    let error = store_secret(&client, &Secret::generate(), "1234", 5, &fast())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Unavailable { .. }), "{error}");
    assert_eq!(server.state().connections, 4);

    server.state().request_faults.clear();
    server
        .state()
        .request_faults
        .push_back(RequestFault::CloseBefore(4003));
    let error = store_secret(&client, &Secret::generate(), "1234", 5, &fast())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidArgument { .. }), "{error}");
    assert_eq!(server.state().connections, 5);
    assert!(server.state().applied.is_empty());

    // Checked before connecting at all.
    let error = store_secret(&client, &Secret::generate(), "1234", 0, &fast())
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        Error::InvalidInput {
            field: "max_tries",
            ..
        }
    ));
    assert!(
        store_secret(&client, &Secret::generate(), " ", 5, &fast())
            .await
            .is_err()
    );
    assert_eq!(server.state().connections, 5);
}

// The StoredSecret proof value: Expose can be retried later, never Backup.
#[tokio::test]
async fn expose_reports_a_replaced_backup_and_a_changed_group() {
    let server = FakeServer::start().await;
    let client = server.client();
    let stored = store_secret(&client, &Secret::generate(), "1234", 5, &fast())
        .await
        .unwrap();
    server
        .state()
        .connection_faults
        .push_back(ConnectionFault::Group(99));
    let error = stored.expose(&client, &fast()).await.unwrap_err();
    assert!(
        matches!(error, Error::GroupChanged { found: 99, .. }),
        "{error}"
    );
    server.state().rows.clear();
    let error = stored.expose(&client, &fast()).await.unwrap_err();
    assert!(matches!(error, Error::ExposeRejected), "{error}");
    assert_eq!(server.state().applied, ["backup", "expose"]);
}

// A retried wrong-PIN Restore would spend a second try: only 4014 and failures before
// sending are retried.
#[tokio::test]
async fn restore_is_retried_only_when_no_try_can_be_spent_twice() {
    let server = FakeServer::start().await;
    let client = server.client();
    server
        .state()
        .request_faults
        .push_back(RequestFault::DropAfter);
    let error = restore_secret(&client, "1234", &fast()).await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert_eq!(server.state().applied, ["restore"]);
    assert_eq!(server.state().connections, 1);

    server
        .state()
        .request_faults
        .push_back(RequestFault::CloseBefore(4014));
    server
        .state()
        .connection_faults
        .extend([ConnectionFault::Http(429, None), ConnectionFault::Silent]);
    let outcome = restore_secret(&client, "1234", &fast()).await.unwrap();
    assert!(matches!(outcome, RestoreSecretOutcome::Missing));
    assert_eq!(server.state().applied, ["restore", "restore"]);
}
