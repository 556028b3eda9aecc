use super::*;
use cloister_proto::svr2::client::{
    BackupResponse, DeleteResponse, ExposeResponse, RestoreResponse, TriesResponse,
};

fn decode(encoded: &[u8]) -> request::Inner {
    Request::decode(encoded).unwrap().inner.unwrap()
}

// SVR2 client protocol: BackupRequest data 16..=48, pin 32, max_tries 1..=255.
#[test]
fn backup_sizes_are_checked_before_sending() {
    let pin = [7u8; PIN_BYTES];
    for length in [0, 15, 49, 1000] {
        let error = backup_request(&vec![1; length], &pin, 10).unwrap_err();
        assert!(
            matches!(error, Error::InvalidInput { field: "data", .. }),
            "{length}"
        );
    }
    for tries in [0, 256, u32::MAX] {
        let error = backup_request(&[1; 32], &pin, tries).unwrap_err();
        assert!(matches!(
            error,
            Error::InvalidInput {
                field: "max_tries",
                ..
            }
        ));
    }
    for (length, tries) in [(16, 1), (48, 255), (32, 10)] {
        let Ok(encoded) = backup_request(&vec![1; length], &pin, tries) else {
            panic!("{length} bytes, {tries} tries should pass");
        };
        let request::Inner::Backup(backup) = decode(&encoded) else {
            panic!("not a backup");
        };
        assert_eq!(backup.data.len(), length);
        assert_eq!(backup.pin, pin);
        assert_eq!(backup.max_tries, tries);
    }
}

#[test]
fn expose_sizes_are_checked_before_sending() {
    assert!(expose_request(&[0; 15]).is_err());
    assert!(expose_request(&[0; 49]).is_err());
    let request::Inner::Expose(expose) = decode(&expose_request(&[9; 48]).unwrap()) else {
        panic!("not an expose");
    };
    assert_eq!(expose.data, [9; 48]);
}

// SVR2 client protocol: field numbers are interface facts.
#[test]
fn requests_use_the_spec_field_numbers() {
    // Request.tries = 6 (tag 0x32, empty message).
    assert_eq!(tries_request().as_slice(), &[0x32, 0x00]);
    // Request.delete = 4 (tag 0x22).
    assert_eq!(delete_request().as_slice(), &[0x22, 0x00]);
    // Request.restore = 3 (tag 0x1a) { pin = 1 (tag 0x0a) }.
    let encoded = restore_request(&[5; 32]);
    assert_eq!(&encoded[..4], &[0x1a, 34, 0x0a, 32]);
}

fn backup_response(status: i32) -> Response {
    Response {
        inner: Some(response::Inner::Backup(BackupResponse { status })),
    }
}

fn restore_response(status: i32, data: Vec<u8>, tries: u32) -> Response {
    Response {
        inner: Some(response::Inner::Restore(RestoreResponse {
            status,
            data,
            tries,
        })),
    }
}

#[test]
fn wrong_type_unset_and_unknown_statuses_are_protocol_errors() {
    assert!(on_backup(backup_response(1)).is_ok());
    assert!(matches!(
        on_backup(backup_response(0)),
        Err(Error::Protocol(_))
    ));
    assert!(matches!(
        on_backup(backup_response(9)),
        Err(Error::Protocol(_))
    ));
    assert!(matches!(
        on_backup(Response { inner: None }),
        Err(Error::Protocol(_))
    ));
    let tries = Response {
        inner: Some(response::Inner::Tries(TriesResponse::default())),
    };
    let error = on_backup(tries.clone()).unwrap_err();
    assert!(error.to_string().contains("Tries response"), "{error}");
    assert!(matches!(on_tries(tries), Err(Error::Protocol(_))));
    assert!(matches!(
        on_delete(backup_response(1)),
        Err(Error::Protocol(_))
    ));
    assert!(matches!(
        on_expose(backup_response(1)),
        Err(Error::Protocol(_))
    ));
    assert!(matches!(
        on_restore(backup_response(1)),
        Err(Error::Protocol(_))
    ));
}

#[test]
fn expose_tries_and_delete_outcomes() {
    let expose = |status| Response {
        inner: Some(response::Inner::Expose(ExposeResponse { status })),
    };
    assert_eq!(on_expose(expose(1)).unwrap(), ExposeOutcome::Ok);
    assert_eq!(on_expose(expose(2)).unwrap(), ExposeOutcome::Error);
    assert!(on_expose(expose(0)).is_err());
    let tries = |status, tries, exposed| Response {
        inner: Some(response::Inner::Tries(TriesResponse {
            status,
            tries,
            exposed,
        })),
    };
    assert_eq!(
        on_tries(tries(1, 4, true)).unwrap(),
        TriesOutcome::Ok {
            tries: 4,
            exposed: true
        }
    );
    assert_eq!(on_tries(tries(2, 0, false)).unwrap(), TriesOutcome::Missing);
    let delete = Response {
        inner: Some(response::Inner::Delete(DeleteResponse {})),
    };
    assert!(on_delete(delete).is_ok());
}

// SVR2 client protocol: Restore statuses.
#[test]
fn restore_outcomes() {
    let Ok(RestoreOutcome::Ok { data, tries: 3 }) = on_restore(restore_response(1, vec![4; 48], 3))
    else {
        panic!("expected Ok");
    };
    assert_eq!(data.as_slice(), &[4; 48]);
    assert!(matches!(
        on_restore(restore_response(2, vec![], 0)),
        Ok(RestoreOutcome::Missing)
    ));
    assert!(matches!(
        on_restore(restore_response(3, vec![], 2)),
        Ok(RestoreOutcome::PinMismatch { tries_left: 2 })
    ));
    assert!(matches!(
        on_restore(restore_response(4, vec![], 0)),
        Err(Error::OperationFailed {
            operation: "Restore"
        })
    ));
    assert!(matches!(
        on_restore(restore_response(0, vec![], 0)),
        Err(Error::Protocol(_))
    ));
    // OK must carry storable data.
    assert!(matches!(
        on_restore(restore_response(1, vec![], 3)),
        Err(Error::Protocol(_))
    ));
}

#[test]
fn restore_debug_redacts_data() {
    let outcome = RestoreOutcome::Ok {
        data: Zeroizing::new(vec![0x5a; 32]),
        tries: 3,
    };
    let text = format!("{outcome:?}");
    assert!(text.contains("redacted 32 bytes"), "{text}");
    assert!(!text.contains("90"), "{text}");
}
