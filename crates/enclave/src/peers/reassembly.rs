//! Splitting a message into segments, and putting it back together strictly in order.
//!
//! ```text
//!  message bytes: [ SEGMENT_DATA_BYTES_MAX | SEGMENT_DATA_BYTES_MAX | rest ]
//!  segments:      {seq, 0, 3, ..}          {seq, 1, 3, ..}          {seq, 2, 3, ..}
//!  receiver:      expects seq = next, index = 0, 1, 2 with one count ─▶ bytes, next += 1
//! ```
//!
//! Noise nonces already stop a host from dropping, replaying or reordering frames, so a bad
//! segment here means a peer enclave misbehaved. It is still refused precisely: the caller
//! resets the connection.

use cloister_proto::e2e::Segment;
use zeroize::Zeroizing;

use super::SEGMENT_DATA_BYTES_MAX;
use crate::Error;

/// The segments of message `message_seq`, whose serialized bytes are `bytes`, made one at
/// a time so the caller can wipe each after encrypting it. An empty message is one empty
/// segment.
pub(super) fn segments(message_seq: u64, bytes: &[u8]) -> impl Iterator<Item = Segment> + '_ {
    let count = segment_count(bytes.len());
    (0..count).map(move |index| {
        let start = (index as usize) * SEGMENT_DATA_BYTES_MAX;
        let end = bytes.len().min(start + SEGMENT_DATA_BYTES_MAX);
        Segment {
            message_seq,
            index,
            count,
            data: bytes[start..end].to_vec(),
        }
    })
}

/// How many segments a message of `bytes` takes.
pub(super) fn segment_count(bytes: usize) -> u32 {
    // Callers bound messages by PEER_MESSAGE_BYTES_MAX first; mod.rs checks the count fits.
    u32::try_from(bytes.div_ceil(SEGMENT_DATA_BYTES_MAX).max(1)).unwrap_or(u32::MAX)
}

/// The receiving side of one connection.
#[derive(Default)]
pub(super) struct Reassembly {
    message_seq_next: u64,
    partial: Option<Partial>,
}

/// A message with some of its segments received.
struct Partial {
    index_next: u32,
    count: u32,
    bytes: Zeroizing<Vec<u8>>,
}

impl Reassembly {
    /// Take the next segment. Returns the whole message when this was its last segment.
    /// On `Err` nothing changed (the caller resets the connection anyway).
    pub(super) fn push(
        &mut self,
        mut segment: Segment,
        message_bytes_max: usize,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        // Taken out first so the plaintext is wiped on every path.
        let data = Zeroizing::new(std::mem::take(&mut segment.data));
        self.check(&segment, data.len(), message_bytes_max)
            .map_err(|reason| {
                Error::InvalidArgument(format!("peer sent a bad segment: {reason}"))
            })?;
        let partial = self.partial.get_or_insert_with(|| Partial {
            index_next: 0,
            count: segment.count,
            // Reserved up front: growing a Vec would leave unwiped copies behind. Only an
            // attested peer can make us reserve, and never more than message_bytes_max.
            bytes: Zeroizing::new(Vec::with_capacity(
                (segment.count as usize * SEGMENT_DATA_BYTES_MAX).min(message_bytes_max),
            )),
        });
        partial.bytes.extend_from_slice(&data);
        partial.index_next += 1;
        if partial.index_next < partial.count {
            return Ok(None);
        }
        let complete = self.partial.take().map(|partial| partial.bytes);
        self.message_seq_next += 1;
        Ok(complete)
    }

    fn check(
        &self,
        segment: &Segment,
        size: usize,
        message_bytes_max: usize,
    ) -> Result<(), String> {
        let seq = segment.message_seq;
        if seq != self.message_seq_next {
            return Err(match &self.partial {
                Some(partial) => format!(
                    "message {seq} began while message {} has {} of its {} segments",
                    self.message_seq_next, partial.index_next, partial.count
                ),
                None => format!("message {seq} arrived, expected {}", self.message_seq_next),
            });
        }
        let (index_expected, count, received) = match &self.partial {
            Some(partial) => (partial.index_next, partial.count, partial.bytes.len()),
            None => (0, segment.count, 0),
        };
        if segment.index != index_expected {
            return Err(format!(
                "segment {} of message {seq}, expected segment {index_expected}",
                segment.index
            ));
        }
        if segment.count != count {
            return Err(format!(
                "message {seq} said {count} segments, now {}",
                segment.count
            ));
        }
        if count == 0 || count > segment_count(message_bytes_max) {
            return Err(format!(
                "message {seq} of {count} segments; 1 to {} allowed",
                segment_count(message_bytes_max)
            ));
        }
        let last = segment.index + 1 == count;
        // Every segment but the last is full and the last is not empty (unless it is the
        // only one), so each message has exactly one encoding.
        let canonical = if last {
            size <= SEGMENT_DATA_BYTES_MAX && (size > 0 || count == 1)
        } else {
            size == SEGMENT_DATA_BYTES_MAX
        };
        if !canonical {
            return Err(format!(
                "segment {} of {count} carries {size} bytes",
                segment.index
            ));
        }
        if received + size > message_bytes_max {
            return Err(format!("message {seq} exceeds {message_bytes_max} bytes"));
        }
        Ok(())
    }
}
