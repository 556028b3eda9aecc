//! SVR2 client protocol, "Semantics": every status and boundary of the database rules.

use cloister_proto::svr2::client::{
    BackupRequest, DeleteRequest, ExposeRequest, RestoreRequest, TriesRequest,
};

use super::*;

const ID: BackupId = [1; 16];
const OTHER: BackupId = [2; 16];

fn req(inner: request::Inner) -> Request {
    Request { inner: Some(inner) }
}
fn backup(data: &[u8], pin: &[u8], max_tries: u32) -> Request {
    req(request::Inner::Backup(BackupRequest {
        data: data.to_vec(),
        pin: pin.to_vec(),
        max_tries,
    }))
}
fn expose(data: &[u8]) -> Request {
    req(request::Inner::Expose(ExposeRequest {
        data: data.to_vec(),
    }))
}
fn restore(pin: &[u8]) -> Request {
    req(request::Inner::Restore(RestoreRequest {
        pin: pin.to_vec(),
    }))
}
fn tries() -> Request {
    req(request::Inner::Tries(TriesRequest {}))
}
fn delete() -> Request {
    req(request::Inner::Delete(DeleteRequest {}))
}

fn apply(db: &mut Database, id: &BackupId, request: Request) -> response::Inner {
    db.apply(id, &request).unwrap().inner.unwrap()
}

fn restore_answer(db: &mut Database, pin: &[u8]) -> (restore_response::Status, Vec<u8>, u32) {
    match apply(db, &ID, restore(pin)) {
        response::Inner::Restore(r) => (r.status(), r.data, r.tries),
        other => panic!("unexpected {other:?}"),
    }
}

fn tries_answer(db: &mut Database) -> (tries_response::Status, u32, bool) {
    match apply(db, &ID, tries()) {
        response::Inner::Tries(t) => (t.status(), t.tries, t.exposed),
        other => panic!("unexpected {other:?}"),
    }
}

fn stored(max_tries: u32) -> Database {
    let mut db = Database::default();
    apply(&mut db, &ID, backup(&[7; 48], &[3; 32], max_tries));
    assert!(
        matches!(apply(&mut db, &ID, expose(&[7; 48])), response::Inner::Expose(e) if e.status() == expose_response::Status::Ok)
    );
    db
}

#[test]
fn backup_then_expose_then_restore_returns_the_data_and_keeps_tries() {
    let mut db = stored(5);
    assert_eq!(
        restore_answer(&mut db, &[3; 32]),
        (restore_response::Status::Ok, vec![7; 48], 5)
    );
    assert_eq!(tries_answer(&mut db), (tries_response::Status::Ok, 5, true));
}

#[test]
fn restore_before_expose_is_missing_and_costs_nothing() {
    let mut db = Database::default();
    apply(&mut db, &ID, backup(&[7; 16], &[3; 32], 3));
    assert_eq!(
        restore_answer(&mut db, &[9; 32]).0,
        restore_response::Status::Missing
    );
    assert_eq!(
        tries_answer(&mut db),
        (tries_response::Status::Ok, 3, false)
    );
}

#[test]
fn wrong_pin_decrements_and_deletes_at_zero() {
    let mut db = stored(3);
    assert_eq!(
        restore_answer(&mut db, &[0; 32]),
        (restore_response::Status::PinMismatch, vec![], 2)
    );
    assert_eq!(
        restore_answer(&mut db, &[0; 32]),
        (restore_response::Status::PinMismatch, vec![], 1)
    );
    assert_eq!(
        restore_answer(&mut db, &[0; 32]).0,
        restore_response::Status::Missing
    );
    assert!(db.is_empty());
    // Gone for good: even the right PIN finds nothing.
    assert_eq!(
        restore_answer(&mut db, &[3; 32]).0,
        restore_response::Status::Missing
    );
    assert_eq!(tries_answer(&mut db).0, tries_response::Status::Missing);
}

#[test]
fn a_right_pin_does_not_reset_tries() {
    let mut db = stored(3);
    restore_answer(&mut db, &[0; 32]);
    assert_eq!(
        restore_answer(&mut db, &[3; 32]),
        (restore_response::Status::Ok, vec![7; 48], 2)
    );
}

#[test]
fn backup_overwrites_resets_tries_and_unexposes() {
    let mut db = stored(3);
    restore_answer(&mut db, &[0; 32]);
    apply(&mut db, &ID, backup(&[8; 20], &[4; 32], 10));
    assert_eq!(
        tries_answer(&mut db),
        (tries_response::Status::Ok, 10, false)
    );
    assert_eq!(
        restore_answer(&mut db, &[4; 32]).0,
        restore_response::Status::Missing
    );
}

#[test]
fn expose_needs_matching_data_and_an_existing_row() {
    let mut db = Database::default();
    let status = |inner| match inner {
        response::Inner::Expose(e) => e.status(),
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(
        status(apply(&mut db, &ID, expose(&[7; 16]))),
        expose_response::Status::Error
    );
    apply(&mut db, &ID, backup(&[7; 16], &[3; 32], 1));
    assert_eq!(
        status(apply(&mut db, &ID, expose(&[7; 17]))),
        expose_response::Status::Error
    );
    assert_eq!(
        status(apply(&mut db, &ID, expose(&[6; 16]))),
        expose_response::Status::Error
    );
    assert!(!tries_answer(&mut db).2);
    assert_eq!(
        status(apply(&mut db, &ID, expose(&[7; 16]))),
        expose_response::Status::Ok
    );
    // Expose again is fine (the client retries until it hears OK).
    assert_eq!(
        status(apply(&mut db, &ID, expose(&[7; 16]))),
        expose_response::Status::Ok
    );
}

#[test]
fn delete_is_idempotent_and_touches_only_its_row() {
    let mut db = stored(3);
    apply(&mut db, &OTHER, backup(&[1; 16], &[1; 32], 1));
    apply(&mut db, &ID, delete());
    apply(&mut db, &ID, delete());
    assert_eq!(tries_answer(&mut db).0, tries_response::Status::Missing);
    assert_eq!(db.len(), 1);
}

#[test]
fn every_size_boundary_is_enforced_and_changes_nothing() {
    let mut db = stored(3);
    let before = db.hash();
    for bad in [
        backup(&[0; 15], &[0; 32], 1),
        backup(&[0; 49], &[0; 32], 1),
        backup(&[0; 16], &[0; 31], 1),
        backup(&[0; 16], &[0; 33], 1),
        backup(&[0; 16], &[0; 32], 0),
        backup(&[0; 16], &[0; 32], 256),
        expose(&[0; 15]),
        expose(&[0; 49]),
        restore(&[0; 31]),
        restore(&[]),
        Request { inner: None },
    ] {
        assert!(
            matches!(db.apply(&ID, &bad), Err(Error::InvalidArgument(_))),
            "{bad:?}"
        );
    }
    assert_eq!(db.hash(), before);
    for good in [
        backup(&[0; 16], &[0; 32], 1),
        backup(&[0; 48], &[0; 32], 255),
    ] {
        assert!(db.apply(&OTHER, &good).is_ok());
    }
}

#[test]
fn hash_depends_on_every_field_and_not_on_insertion_order() {
    let mut first = Database::default();
    apply(&mut first, &ID, backup(&[1; 16], &[1; 32], 2));
    apply(&mut first, &OTHER, backup(&[2; 16], &[2; 32], 2));
    let mut second = Database::default();
    apply(&mut second, &OTHER, backup(&[2; 16], &[2; 32], 2));
    apply(&mut second, &ID, backup(&[1; 16], &[1; 32], 2));
    assert_eq!(first.hash(), second.hash());
    apply(&mut second, &ID, expose(&[1; 16]));
    assert_ne!(first.hash(), second.hash());
}
