//! Sans-I/O sequencing: the sender's bounded buffer of unacknowledged frames, and the
//! receiver's window that delivers each sequence number once, in order.
//!
//! ```text
//!  sender:   [ acked … ] [ seq a+1 … c : sent, unacked ] [ c+1 … n-1 : not yet sent ]   next n
//!                        └─ resent from here on every new link ─┘
//!  receiver: delivered d  →  Data{seq > d}: deliver, d = seq    Data{seq <= d}: duplicate
//! ```
//!
//! A link's Hello and first Ack let each side check the other's record against its own:
//! the receiver never counts more as delivered than the sender says it sent (see
//! [`ReceiveWindow::clamp`]), and the sender learns of frames it released that the receiver
//! never got (see [`SendQueue::resume`]). Either mismatch means a connection that only
//! claimed the peer's id was admitted earlier; honest peers never cause one.

use std::collections::VecDeque;
use std::sync::Arc;

/// One queued message, shared (not copied) between the queue and the link writing it.
pub type Payload = Arc<Vec<u8>>;

/// Frames for one peer, kept until the peer acknowledges them.
#[derive(Debug)]
pub struct SendQueue {
    frames: VecDeque<(u64, Payload)>,
    bytes: usize,
    next_seq: u64,
    sent_through: u64,
    acked_through: u64,
    bytes_max: usize,
    frames_max: usize,
}

/// The queue is at its byte or frame bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// Frames to write, taken from the queue.
#[derive(Debug, Default)]
pub struct Batch {
    /// Frames in sequence order.
    pub frames: Vec<(u64, Payload)>,
    /// How many of them had been handed to a link before.
    pub resends: u64,
}

impl SendQueue {
    /// An empty queue; the first frame gets sequence number 1.
    pub fn new(bytes_max: usize, frames_max: usize) -> Self {
        SendQueue {
            frames: VecDeque::new(),
            bytes: 0,
            next_seq: 1,
            sent_through: 0,
            acked_through: 0,
            bytes_max,
            frames_max,
        }
    }

    /// Queues `data` under the next sequence number, or refuses it (changing nothing) if
    /// either bound would be exceeded.
    pub fn push(&mut self, data: Vec<u8>) -> Result<u64, Full> {
        let bytes = self.bytes.saturating_add(data.len());
        if self.frames.len() >= self.frames_max || bytes > self.bytes_max {
            return Err(Full);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes = bytes;
        self.frames.push_back((seq, Arc::new(data)));
        Ok(seq)
    }

    /// Releases every frame up to `seq`. Acknowledging a frame never sent is the remote's
    /// error, refused with nothing changed; an old acknowledgement changes nothing.
    pub fn ack(&mut self, seq: u64) -> Result<usize, String> {
        if seq > self.sent_through {
            return Err(format!(
                "an Ack for {seq}, beyond the last frame sent ({})",
                self.sent_through
            ));
        }
        self.acked_through = self.acked_through.max(seq);
        let mut released = 0;
        while let Some((front, payload)) = self.frames.front() {
            if *front > seq {
                break;
            }
            self.bytes -= payload.len();
            self.frames.pop_front();
            released += 1;
        }
        Ok(released)
    }

    /// The remote's first acknowledgement on a new link, which says where its window
    /// stands. Frames released for acknowledgements beyond it never reached the remote
    /// (whoever acknowledged them only claimed its id): returns how many sequence numbers
    /// were lost that way, after which acknowledgements count from `seq` again. Refused like
    /// [`Self::ack`].
    pub fn resume(&mut self, seq: u64) -> Result<u64, String> {
        self.ack(seq)?;
        let lost = self.acked_through - seq;
        self.acked_through = seq;
        Ok(lost)
    }

    /// The highest sequence number ever handed to a link (0: none).
    pub fn sent_through(&self) -> u64 {
        self.sent_through
    }

    /// Up to about `bytes_budget` bytes of frames after sequence number `cursor` (at least one
    /// frame if there is one), marked as sent.
    pub fn take_batch(&mut self, cursor: u64, bytes_budget: usize) -> Batch {
        let start = self.frames.partition_point(|(seq, _)| *seq <= cursor);
        let mut batch = Batch::default();
        let mut bytes = 0usize;
        for (seq, payload) in self.frames.iter().skip(start) {
            if !batch.frames.is_empty() && bytes + payload.len() > bytes_budget {
                break;
            }
            bytes += payload.len();
            if *seq <= self.sent_through {
                batch.resends += 1;
            }
            batch.frames.push((*seq, payload.clone()));
        }
        if let Some((last, _)) = batch.frames.last() {
            self.sent_through = self.sent_through.max(*last);
        }
        batch
    }

    /// Drops every queued frame (the peer's stream is broken anyway); returns how many.
    /// Sequence numbers keep growing, so the receiver sees a gap, never a reuse.
    pub fn drop_all(&mut self) -> usize {
        let dropped = self.frames.len();
        self.frames.clear();
        self.bytes = 0;
        dropped
    }

    /// The remote restarted: drops every queued frame (see [`Self::drop_all`]) and forgets
    /// its acknowledgements, since its new window starts from nothing. Returns how many.
    pub fn remote_restarted(&mut self) -> usize {
        self.acked_through = 0;
        self.drop_all()
    }

    /// True when nothing waits for an acknowledgement.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Frames queued now.
    pub fn len(&self) -> usize {
        self.frames.len()
    }
}

/// The receiver's record for one sender: its incarnation and the last sequence number
/// handed to the enclave.
#[derive(Debug, Default)]
pub struct ReceiveWindow {
    incarnation: Option<u64>,
    delivered: u64,
}

/// What to do with a received `Data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it to the enclave, then [`ReceiveWindow::record`] it. `skipped` frames before it
    /// were dropped by the sender.
    Deliver {
        /// Sequence numbers between the last delivered and this one.
        skipped: u64,
    },
    /// Already delivered: drop it (and acknowledge again).
    Duplicate,
}

impl ReceiveWindow {
    /// Classifies `seq` from a sender of `incarnation`. A new incarnation (the sender's
    /// process restarted) starts the window over.
    pub fn classify(&mut self, incarnation: u64, seq: u64) -> Verdict {
        if self.incarnation != Some(incarnation) {
            self.incarnation = Some(incarnation);
            self.delivered = 0;
        }
        if seq <= self.delivered {
            Verdict::Duplicate
        } else {
            Verdict::Deliver {
                skipped: seq - self.delivered - 1,
            }
        }
    }

    /// The sender of `incarnation` says it never sent beyond `sent_through`; numbers
    /// recorded beyond that came from a connection that only claimed its id. Takes them back
    /// (so the sender's real frames are not dropped as duplicates) and returns how many.
    pub fn clamp(&mut self, incarnation: u64, sent_through: u64) -> u64 {
        if self.incarnation != Some(incarnation) || self.delivered <= sent_through {
            return 0;
        }
        let undone = self.delivered - sent_through;
        self.delivered = sent_through;
        undone
    }

    /// Records that `seq` was handed to the enclave.
    pub fn record(&mut self, seq: u64) {
        self.delivered = self.delivered.max(seq);
    }

    /// The cumulative acknowledgement for a sender of `incarnation` (0 if it is new).
    pub fn delivered(&self, incarnation: u64) -> u64 {
        if self.incarnation == Some(incarnation) {
            self.delivered
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(batch: &Batch) -> Vec<u64> {
        batch.frames.iter().map(|(seq, _)| *seq).collect()
    }

    #[test]
    fn frames_stay_until_acked_and_are_resent_from_the_start() {
        let mut queue = SendQueue::new(1_000, 10);
        for byte in 1..=4u8 {
            assert_eq!(queue.push(vec![byte; 10]).unwrap(), u64::from(byte));
        }
        let first = queue.take_batch(0, 25);
        assert_eq!((seqs(&first), first.resends), (vec![1, 2], 0));
        let rest = queue.take_batch(2, 1_000);
        assert_eq!(seqs(&rest), vec![3, 4]);
        assert_eq!(queue.ack(2).unwrap(), 2);
        // A new link starts from cursor 0: frames 3 and 4 again, counted as resends.
        let again = queue.take_batch(0, 1_000);
        assert_eq!((seqs(&again), again.resends), (vec![3, 4], 2));
        assert_eq!(queue.ack(1).unwrap(), 0, "an old ack changes nothing");
        assert_eq!(queue.ack(4).unwrap(), 2);
        assert!(queue.is_empty());
    }

    #[test]
    fn a_batch_holds_at_least_one_frame() {
        let mut queue = SendQueue::new(1_000, 10);
        queue.push(vec![0; 100]).unwrap();
        assert_eq!(seqs(&queue.take_batch(0, 1)), vec![1]);
    }

    #[test]
    fn bounds_refuse_and_change_nothing() {
        let mut queue = SendQueue::new(25, 2);
        queue.push(vec![0; 10]).unwrap();
        assert_eq!(queue.push(vec![0; 16]), Err(Full), "bytes");
        queue.push(vec![0; 15]).unwrap();
        assert_eq!(queue.push(vec![]), Err(Full), "frames");
        assert_eq!(queue.len(), 2);
        queue.take_batch(0, 1_000);
        queue.ack(1).unwrap();
        queue.push(vec![0; 10]).unwrap();
    }

    #[test]
    fn acking_what_was_never_sent_is_refused_and_changes_nothing() {
        let mut queue = SendQueue::new(1_000, 10);
        queue.push(vec![1]).unwrap();
        queue.push(vec![2]).unwrap();
        queue.take_batch(0, 1);
        assert!(queue.ack(2).is_err());
        assert_eq!(queue.len(), 2);
    }

    #[test]
    fn dropping_keeps_sequence_numbers_growing() {
        let mut queue = SendQueue::new(1_000, 10);
        queue.push(vec![1]).unwrap();
        queue.push(vec![2]).unwrap();
        assert_eq!(queue.drop_all(), 2);
        assert_eq!(queue.push(vec![3]).unwrap(), 3);
        assert_eq!(seqs(&queue.take_batch(0, 1_000)), vec![3]);
    }

    #[test]
    fn a_first_ack_below_what_was_released_reports_the_loss() {
        let mut queue = SendQueue::new(1_000, 10);
        for byte in 1..=5u8 {
            queue.push(vec![byte]).unwrap();
        }
        queue.take_batch(0, 1_000);
        // Someone acknowledged 1..=4 on a link; the real peer's first Ack says 2.
        assert_eq!(queue.ack(4).unwrap(), 4);
        assert_eq!(queue.resume(2), Ok(2));
        assert_eq!(queue.len(), 1, "released frames stay released");
        // From then on the peer's window is the reference: an honest first Ack is no loss.
        assert_eq!(queue.resume(2), Ok(0));
        assert_eq!(queue.resume(5), Ok(0));
        assert!(queue.is_empty());
        // Beyond what was sent is refused, as for any Ack, and changes nothing.
        assert!(queue.resume(6).is_err());
        assert_eq!(queue.resume(5), Ok(0));
    }

    #[test]
    fn the_window_never_counts_beyond_what_the_sender_says_it_sent() {
        let mut window = ReceiveWindow::default();
        assert_eq!(window.classify(7, 3), Verdict::Deliver { skipped: 2 });
        window.record(3);
        // A connection claiming incarnation 7 pushed the window far ahead.
        assert_eq!(
            window.classify(7, 1 << 40),
            Verdict::Deliver {
                skipped: (1 << 40) - 4
            }
        );
        window.record(1 << 40);
        assert_eq!(
            window.clamp(8, 3),
            0,
            "another incarnation's word changes nothing"
        );
        assert_eq!(window.clamp(7, 3), (1 << 40) - 3);
        assert_eq!(window.delivered(7), 3);
        assert_eq!(window.classify(7, 4), Verdict::Deliver { skipped: 0 });
        assert_eq!(
            window.clamp(7, 5),
            0,
            "an honest sender's word changes nothing"
        );
        assert_eq!(window.delivered(7), 3);
    }

    #[test]
    fn the_window_delivers_once_in_order_and_restarts_with_the_sender() {
        let mut window = ReceiveWindow::default();
        assert_eq!(window.classify(7, 1), Verdict::Deliver { skipped: 0 });
        window.record(1);
        assert_eq!(window.classify(7, 1), Verdict::Duplicate);
        assert_eq!(window.classify(7, 4), Verdict::Deliver { skipped: 2 });
        window.record(4);
        assert_eq!(window.delivered(7), 4);
        assert_eq!(window.classify(7, 3), Verdict::Duplicate);
        // The sender restarted: its numbering starts over.
        assert_eq!(window.delivered(8), 0);
        assert_eq!(window.classify(8, 1), Verdict::Deliver { skipped: 0 });
        window.record(1);
        assert_eq!(window.delivered(8), 1);
    }
}
