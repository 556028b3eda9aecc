//! When a link's writer acknowledges what its reader delivered, without I/O.
//!
//! ```text
//!  delivered d, last acknowledged a (d > a):
//!    first round of a link ─────────────────────────▶ Ack{d}           (where the window stands)
//!    Data goes out this round ──────────────────────▶ Data{.., ack: d} (free: no extra frame)
//!    d − a ≥ ACK_PENDING_FRAMES_MAX, bytes ≥ …_MAX,
//!    or ack_delay passed since d > a began ─────────▶ Ack{d}
//!    otherwise ─────────────────────────────────────▶ wait (until due, or until woken)
//! ```
//!
//! An acknowledgement only lets the sender release its resend buffer: holding it back costs
//! the sender memory, never latency. Most peer traffic is request and answer (Raft appends
//! and their responses), so the answer usually carries the acknowledgement, and a message
//! costs one frame, one write and one wake-up per side instead of two. The bounds keep what
//! a sender holds for want of an acknowledgement small against its send buffer, and the
//! delay acknowledges a sender that gets no answer (so a sender whose buffer is full always
//! gets room again: nothing waits for traffic the other way).

use std::time::Duration;

use tokio::time::Instant;

use super::settings::SEND_BUFFER_BYTES_MAX_DEFAULT;
use super::settings::SEND_BUFFER_FRAMES_MAX_DEFAULT;

/// Frames delivered but not yet acknowledged at most: one more is acknowledged at once.
pub const ACK_PENDING_FRAMES_MAX: u64 = 64;
/// Bytes delivered but not yet acknowledged at most: more are acknowledged at once.
pub const ACK_PENDING_BYTES_MAX: u64 = 1024 * 1024;

// A default send buffer holds many times what a receiver may leave unacknowledged.
const _: () = assert!(ACK_PENDING_FRAMES_MAX * 16 <= SEND_BUFFER_FRAMES_MAX_DEFAULT as u64);
const _: () = assert!(ACK_PENDING_BYTES_MAX * 16 <= SEND_BUFFER_BYTES_MAX_DEFAULT as u64);

/// What the writer does about acknowledgements this round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckPlan {
    /// Nothing is owed.
    Nothing,
    /// Write `Ack{seq}`.
    Standalone(u64),
    /// Put `seq` in the first Data frame of the round.
    Piggyback(u64),
    /// Owed, not due yet: due at this instant unless Data carries it first.
    Wait(Instant),
}

/// One link's acknowledgements: what the remote was told, and since when more is owed.
#[derive(Debug)]
pub struct AckSchedule {
    delay: Duration,
    told: Option<u64>,
    due: Option<Instant>,
}

impl AckSchedule {
    /// A new link's schedule: its first plan is always a standalone Ack.
    pub fn new(delay: Duration) -> Self {
        AckSchedule {
            delay,
            told: None,
            due: None,
        }
    }

    /// The plan for a round at `now`: `delivered` is the cumulative acknowledgement owed,
    /// `pending_bytes` the bytes delivered since the last one went out, `data` whether the
    /// round writes Data. A `Standalone` or `Piggyback` plan counts as told.
    pub fn plan(
        &mut self,
        delivered: u64,
        pending_bytes: u64,
        data: bool,
        now: Instant,
    ) -> AckPlan {
        let Some(told) = self.told else {
            return self.tell(AckPlan::Standalone(delivered), delivered);
        };
        if delivered <= told {
            self.due = None;
            return AckPlan::Nothing;
        }
        if data {
            return self.tell(AckPlan::Piggyback(delivered), delivered);
        }
        let due = *self.due.get_or_insert(now + self.delay);
        let bounded =
            delivered - told >= ACK_PENDING_FRAMES_MAX || pending_bytes >= ACK_PENDING_BYTES_MAX;
        if bounded || now >= due {
            return self.tell(AckPlan::Standalone(delivered), delivered);
        }
        AckPlan::Wait(due)
    }

    fn tell(&mut self, plan: AckPlan, delivered: u64) -> AckPlan {
        self.told = Some(delivered);
        self.due = None;
        plan
    }
}

/// Whether the reader must wake the writer after a delivery, given what the writer is
/// waiting on: it sleeps without a deadline only when nothing was owed, and the bounds make
/// an acknowledgement due before its deadline.
pub fn wake_writer(
    writer_waits_for_deadline: bool,
    pending_frames: u64,
    pending_bytes: u64,
) -> bool {
    !writer_waits_for_deadline
        || pending_frames >= ACK_PENDING_FRAMES_MAX
        || pending_bytes >= ACK_PENDING_BYTES_MAX
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELAY: Duration = Duration::from_millis(5);

    #[test]
    fn a_link_opens_with_an_ack_even_of_nothing() {
        let now = Instant::now();
        let mut schedule = AckSchedule::new(DELAY);
        assert_eq!(schedule.plan(0, 0, true, now), AckPlan::Standalone(0));
        assert_eq!(schedule.plan(0, 0, true, now), AckPlan::Nothing);
    }

    #[test]
    fn data_carries_the_ack_and_nothing_else_is_written() {
        let now = Instant::now();
        let mut schedule = AckSchedule::new(DELAY);
        schedule.plan(3, 0, false, now);
        // Delivered 4 and 5; nothing goes out yet, then an answer carries both.
        assert_eq!(
            schedule.plan(5, 200, false, now),
            AckPlan::Wait(now + DELAY)
        );
        let soon = now + DELAY / 2;
        assert_eq!(schedule.plan(5, 200, true, soon), AckPlan::Piggyback(5));
        // Told: the deadline is gone with it.
        assert_eq!(
            schedule.plan(5, 0, false, now + DELAY * 2),
            AckPlan::Nothing
        );
    }

    #[test]
    fn without_data_a_standalone_ack_goes_out_once_the_delay_passed() {
        let now = Instant::now();
        let mut schedule = AckSchedule::new(DELAY);
        schedule.plan(0, 0, false, now);
        assert_eq!(schedule.plan(1, 10, false, now), AckPlan::Wait(now + DELAY));
        // More deliveries do not push the deadline back.
        let later = now + DELAY / 2;
        assert_eq!(
            schedule.plan(2, 20, false, later),
            AckPlan::Wait(now + DELAY)
        );
        assert_eq!(
            schedule.plan(2, 20, false, now + DELAY),
            AckPlan::Standalone(2)
        );
        // The next deadline counts from the next delivery.
        let next = now + DELAY * 3;
        assert_eq!(
            schedule.plan(3, 1, false, next),
            AckPlan::Wait(next + DELAY)
        );
    }

    #[test]
    fn past_a_bound_the_ack_goes_out_at_once() {
        let now = Instant::now();
        let mut schedule = AckSchedule::new(DELAY);
        schedule.plan(10, 0, false, now);
        let frames = 10 + ACK_PENDING_FRAMES_MAX;
        assert_eq!(
            schedule.plan(frames - 1, 0, false, now),
            AckPlan::Wait(now + DELAY)
        );
        assert_eq!(
            schedule.plan(frames, 0, false, now),
            AckPlan::Standalone(frames)
        );
        let bytes = ACK_PENDING_BYTES_MAX;
        assert_eq!(
            schedule.plan(frames + 1, bytes, false, now),
            AckPlan::Standalone(frames + 1)
        );
        assert!(wake_writer(true, ACK_PENDING_FRAMES_MAX, 0));
        assert!(wake_writer(true, 1, ACK_PENDING_BYTES_MAX));
        assert!(!wake_writer(true, 1, 1), "the writer's deadline covers it");
        assert!(
            wake_writer(false, 1, 1),
            "the writer must start the deadline"
        );
    }

    #[test]
    fn a_zero_delay_acknowledges_every_round() {
        let now = Instant::now();
        let mut schedule = AckSchedule::new(Duration::ZERO);
        schedule.plan(0, 0, false, now);
        assert_eq!(schedule.plan(1, 1, false, now), AckPlan::Standalone(1));
    }
}
