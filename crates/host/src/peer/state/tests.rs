use std::time::Duration;

use super::*;

const LOW: PeerId = PeerId([1; 32]);
const HIGH: PeerId = PeerId([9; 32]);

fn settings() -> PeerSettings {
    PeerSettings {
        send_buffer_bytes_max: DATA_BYTES_MAX,
        send_buffer_frames_max: 3,
        peers_max: 2,
        ..PeerSettings::default()
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Admission {
    fn admitted(self) -> Admitted {
        match self {
            Admission::Admitted(admitted) => admitted,
            other => panic!("not admitted: {other:?}"),
        }
    }

    /// The probe asked for: (link id, probe number).
    fn probe(self) -> (u64, u64) {
        match self {
            Admission::Probe { link_id, probe, .. } => (link_id, probe),
            other => panic!("no probe asked: {other:?}"),
        }
    }
}

/// Admits a connection to `remote` the way a link task does when the probe of the current
/// link (if any) finds it dead.
fn admit_over_dead_link(
    state: &mut State,
    remote: PeerId,
    dialed_by_local: bool,
    incarnation: u64,
) -> Admission {
    match state.admit(remote, dialed_by_local, incarnation, None) {
        Admission::Probe { link_id, probe, .. } => {
            state.probe_finished(remote, probe);
            state.admit(remote, dialed_by_local, incarnation, Some(link_id))
        }
        other => other,
    }
}

#[test]
fn a_full_buffer_refuses_drops_the_queue_and_owes_one_reset() {
    let mut state = State::new(LOW, &settings());
    for _ in 0..3 {
        assert!(matches!(state.enqueue(HIGH, vec![1]), Ok(Wake::Dialer(_))));
    }
    assert_eq!(
        state.enqueue(HIGH, vec![1]).err(),
        Some(SendRefusal::BufferFull { dropped: 3 })
    );
    assert_eq!(state.queued(HIGH), 0);
    assert!(state.resets_owed.contains(&HIGH));
    // The next send starts a fresh queue: the re-handshake has room.
    assert!(state.enqueue(HIGH, vec![2]).is_ok());
    assert_eq!(state.queued(HIGH), 1);
}

#[test]
fn refusals_owe_a_reset_only_when_a_message_to_a_peer_was_lost() {
    let mut state = State::new(LOW, &settings());
    assert_eq!(state.enqueue(LOW, vec![1]).err(), Some(SendRefusal::ToSelf));
    state.enqueue(HIGH, vec![1]).unwrap();
    let too_large = vec![0; DATA_BYTES_MAX + 1];
    assert_eq!(
        state.enqueue(HIGH, too_large).err(),
        Some(SendRefusal::TooLarge(DATA_BYTES_MAX + 1))
    );
    assert_eq!(state.resets_owed.len(), 1, "a too-large message is a loss");
    assert_eq!(state.queued(HIGH), 1, "the queue has room; it stays");
    state.resets_owed.clear();
    state.stopping = true;
    assert_eq!(
        state.enqueue(HIGH, vec![1]).err(),
        Some(SendRefusal::ShuttingDown)
    );
    assert!(state.resets_owed.is_empty());
}

#[test]
fn a_full_peer_table_forgets_an_idle_peer_or_refuses() {
    let mut state = State::new(LOW, &settings());
    let (idle, busy, new) = (PeerId([2; 32]), PeerId([3; 32]), PeerId([4; 32]));
    let link = state.admit(idle, false, 1, None).admitted().id;
    state.release(idle, link);
    state.enqueue(busy, vec![1]).unwrap();
    // `idle` has no link and nothing queued: it makes room.
    state.enqueue(new, vec![1]).unwrap();
    assert_eq!(state.queued(new), 1);
    assert_eq!(
        state.enqueue(PeerId([5; 32]), vec![1]).err(),
        Some(SendRefusal::PeersFull)
    );
    assert!(state.resets_owed.contains(&PeerId([5; 32])));
    assert!(matches!(
        state.admit(PeerId([6; 32]), false, 1, None),
        Admission::Refused(_)
    ));
    assert_eq!(state.unstarted.len(), 3, "one dialer task per peer created");
}

#[test]
fn simultaneous_links_keep_the_one_dialed_by_the_lower_peer_id() {
    // (local, existing dialed by local, new dialed by local, same incarnation) → new kept
    // once a probe finds the existing link dead?
    let cases = [
        (LOW, true, false, true, false), // remote (high) dialed the new one: keep ours
        (LOW, false, true, true, true),  // we (low) dialed the new one: it wins
        (HIGH, true, false, true, true), // remote (low) dialed the new one: it wins
        (HIGH, false, true, true, false), // we (high) dialed the new one: keep theirs
        (LOW, true, true, true, true),   // the same side dialed again: it gave up the old
        (LOW, false, false, true, true),
        (LOW, true, false, false, true), // the remote restarted: the old link is dead
    ];
    for (local, existing, new, same_incarnation, kept) in cases {
        let remote = if local == LOW { HIGH } else { LOW };
        let mut state = State::new(local, &settings());
        let first = state.admit(remote, existing, 7, None).admitted();
        let incarnation = if same_incarnation { 7 } else { 8 };
        let second = admit_over_dead_link(&mut state, remote, new, incarnation);
        let case = format!("{local:?} {existing} {new} {same_incarnation}");
        assert_eq!(state.is_current(remote, first.id), !kept, "{case}");
        match second {
            Admission::Admitted(second) => {
                assert!(kept, "{case}");
                assert!(second.replaced.is_some());
                assert!(second.reconnect);
            }
            Admission::Refused(_) => assert!(!kept, "{case}"),
            Admission::Probe { .. } => panic!("{case}: a second probe"),
        }
    }
}

// Host peer transport: a Hello's peer id is a claim. A connection that claims a peer with a
// working link is refused, and the link, its queue and the enclave's channel stay as they
// were.
#[test]
fn a_claim_never_replaces_a_link_that_answers_its_probe() {
    let mut state = State::new(LOW, &settings());
    let real = state.admit(HIGH, true, 7, None).admitted();
    state.enqueue(HIGH, vec![1]).unwrap();
    // An impostor claims HIGH with a new incarnation: first the real link is probed ...
    let (link_id, probe) = state.admit(HIGH, false, 666, None).probe();
    assert_eq!(link_id, real.id);
    // ... one probe at a time: more claims meanwhile are refused outright ...
    assert!(matches!(
        state.admit(HIGH, false, 667, None),
        Admission::Refused(_)
    ));
    // ... and the real link answered, so the impostor's connection is closed: nothing
    // changed.
    state.probe_finished(HIGH, probe);
    assert!(state.is_current(HIGH, real.id));
    assert_eq!(state.queued(HIGH), 1);
    assert!(state.resets_owed.is_empty());
    // The next claim is probed again (a new number); had another link come up while it
    // ran, the probed claim would be refused rather than replace it.
    let (_, again) = state.admit(HIGH, false, 668, None).probe();
    assert_ne!(again, probe);
    assert!(matches!(
        state.admit(HIGH, false, 668, Some(real.id + 100)),
        Admission::Refused(_)
    ));
    state.probe_finished(HIGH, again);
    assert!(state.is_current(HIGH, real.id));
    assert!(state.resets_owed.is_empty());
}

#[test]
fn a_restarted_peer_drops_the_queue_and_owes_a_reset() {
    let mut state = State::new(LOW, &settings());
    let first = state.admit(HIGH, true, 7, None).admitted();
    assert_eq!(first.restarted, None);
    state.enqueue(HIGH, vec![1]).unwrap();
    state.release(HIGH, first.id);
    let again = state.admit(HIGH, true, 7, None).admitted();
    assert_eq!(again.restarted, None, "same incarnation: a plain reconnect");
    assert_eq!(state.queued(HIGH), 1);
    // The old process's link is dead (the probe finds it so): the new process replaces it.
    let restarted = admit_over_dead_link(&mut state, HIGH, false, 8).admitted();
    assert_eq!(restarted.restarted, Some(1));
    assert_eq!(state.queued(HIGH), 0);
    assert!(state.resets_owed.contains(&HIGH));
}

#[test]
fn the_dialer_waits_dials_and_abandons_after_the_bound() {
    let mut state = State::new(LOW, &settings());
    state.enqueue(HIGH, vec![1]).unwrap();
    let (_, wake) = state.unstarted[0].clone();
    let start = Instant::now();
    let abandon_after = settings().abandon_after;
    assert_eq!(
        state.next_step(HIGH, &wake, start),
        Step::NoAddress(settings().backoff_max)
    );
    state
        .book
        .learn(HIGH, addr(7000), super::super::book::Source::Dialed);
    assert_eq!(state.next_step(HIGH, &wake, start), Step::Dial(addr(7000)));
    assert_eq!(state.dial_failed(HIGH), 1);
    let later = start + abandon_after - Duration::from_millis(1);
    assert_eq!(state.next_step(HIGH, &wake, later), Step::Dial(addr(7000)));
    let end = start + abandon_after;
    assert_eq!(state.next_step(HIGH, &wake, end), Step::Abandon);
    assert_eq!(state.abandon(HIGH), 1);
    assert!(state.resets_owed.contains(&HIGH));
    assert_eq!(
        state.book.lookup(HIGH),
        Some(addr(7000)),
        "the address stays"
    );
    assert_eq!(state.next_step(HIGH, &wake, end), Step::Idle);
    // A later send starts the clock over.
    state.enqueue(HIGH, vec![2]).unwrap();
    let much_later = end + abandon_after * 2;
    assert_eq!(
        state.next_step(HIGH, &wake, much_later),
        Step::Dial(addr(7000))
    );
    // Reaching the peer stops the clock.
    state.mark_reachable(HIGH);
    let beyond = much_later + abandon_after * 2;
    assert_eq!(state.next_step(HIGH, &wake, beyond), Step::Dial(addr(7000)));
    // A task that is not the peer's own exits.
    assert_eq!(
        state.next_step(HIGH, &Arc::new(Notify::new()), end),
        Step::Exit
    );
    assert_eq!(state.next_step(LOW, &wake, end), Step::Exit);
}

#[test]
fn only_the_current_link_is_released() {
    let mut state = State::new(LOW, &settings());
    let first = state.admit(HIGH, true, 7, None).admitted();
    let second = admit_over_dead_link(&mut state, HIGH, true, 7).admitted();
    assert!(!state.release(HIGH, first.id));
    assert_eq!(state.connected(), vec![HIGH]);
    assert!(state.release(HIGH, second.id));
    assert!(state.connected().is_empty());
}
