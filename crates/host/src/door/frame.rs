//! Length-prefixed frames for the door over a socket: a 4-byte big-endian length, then that
//! many bytes of one protobuf message (`proto/door.proto`). Each direction has its own bound,
//! checked before a byte of the body is read or a buffer allocated.

use std::io::{ErrorKind, Read, Write};

use cloister_enclave::{INIT_CONFIG_BYTES_MAX, UNTRUSTED_MESSAGE_BYTES_MAX};
use prost::Message;

/// The one protocol version this build speaks (`Attach.protocol_version`).
pub const PROTOCOL_VERSION: u32 = 1;
/// Bytes of the length prefix.
pub const LENGTH_BYTES: usize = 4;
/// Room for a frame's own fields around the bytes it carries (oneof tag and length varint).
pub const ENVELOPE_BYTES_MAX: usize = 16;
/// The largest `HostFrame`: one `UntrustedMessage` the core would accept, in its envelope.
pub const HOST_FRAME_BYTES_MAX: usize = UNTRUSTED_MESSAGE_BYTES_MAX + ENVELOPE_BYTES_MAX;
/// The largest `EnclaveMessage` the door carries. The core's largest outputs are peer
/// messages (below the peer transport's 512 KiB); anything larger is a core bug, dropped
/// and counted (`Drained.messages_dropped`).
pub const ENCLAVE_MESSAGE_BYTES_MAX: usize = 1024 * 1024;
/// The largest `EnclaveFrame`.
pub const ENCLAVE_FRAME_BYTES_MAX: usize = ENCLAVE_MESSAGE_BYTES_MAX + ENVELOPE_BYTES_MAX;
/// `Handle` frames in one batch (before its `Drain`) at most. A host with a larger batch
/// sends it in several round trips.
pub const BATCH_MESSAGES_MAX: usize = 1024;
/// Outputs one `Drain` may ask for at most (the dispatcher's own bound per batch).
pub const DRAIN_MESSAGES_MAX: u32 = 1 << 16;
/// Bytes of a refusal reason (`Refusal.reason`, `Refused.reason`) at most.
pub const REASON_BYTES_MAX: usize = 256;
/// Room for one `Refusal` besides its reason (tags, index, lengths).
const REFUSAL_OVERHEAD_BYTES_MAX: usize = 32;

// An Attach carries a whole InitConfig.
const _: () = assert!(INIT_CONFIG_BYTES_MAX + 2 * ENVELOPE_BYTES_MAX <= HOST_FRAME_BYTES_MAX);
// A Drained that refuses a whole batch fits one frame.
const _: () = assert!(
    BATCH_MESSAGES_MAX * (REASON_BYTES_MAX + REFUSAL_OVERHEAD_BYTES_MAX) + ENVELOPE_BYTES_MAX
        <= ENCLAVE_FRAME_BYTES_MAX
);
const _: () = assert!(ENCLAVE_FRAME_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(HOST_FRAME_BYTES_MAX <= ENCLAVE_FRAME_BYTES_MAX);

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix (or a message to send) exceeds the bound.
    #[error("frame of {bytes} bytes exceeds {bytes_max}")]
    TooLarge {
        /// The announced (or encoded) length.
        bytes: usize,
        /// The bound.
        bytes_max: usize,
    },
    /// The stream ended inside a frame.
    #[error("the connection closed in the middle of a frame")]
    Truncated,
    /// The socket's timeout passed while waiting for bytes.
    #[error("timed out")]
    TimedOut,
    /// Any other socket error.
    #[error(transparent)]
    Io(std::io::Error),
}

impl From<std::io::Error> for FrameError {
    fn from(error: std::io::Error) -> Self {
        match error.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => FrameError::TimedOut,
            ErrorKind::UnexpectedEof => FrameError::Truncated,
            _ => FrameError::Io(error),
        }
    }
}

/// Writes `message` as one frame (not flushed). Refuses a message over `bytes_max`, which
/// the other side would refuse anyway.
pub fn write_frame(
    writer: &mut impl Write,
    message: &impl Message,
    bytes_max: usize,
) -> Result<(), FrameError> {
    let bytes = message.encoded_len();
    if bytes > bytes_max {
        return Err(FrameError::TooLarge { bytes, bytes_max });
    }
    let length = u32::try_from(bytes).map_err(|_| FrameError::TooLarge { bytes, bytes_max })?;
    let mut buffer = Vec::with_capacity(LENGTH_BYTES + bytes);
    buffer.extend_from_slice(&length.to_be_bytes());
    // A `Vec` grows as needed, so encoding into it cannot run out of room.
    message
        .encode(&mut buffer)
        .map_err(|_| FrameError::TooLarge { bytes, bytes_max })?;
    writer.write_all(&buffer)?;
    Ok(())
}

/// Writes a `HostFrame{untrusted_message}` frame around `message` without copying it into a
/// `HostFrame` first (not flushed): the same bytes prost would encode.
pub fn write_untrusted_message(writer: &mut impl Write, message: &[u8]) -> Result<(), FrameError> {
    // Field 2, length-delimited.
    const KEY: u8 = (2 << 3) | 2;
    let bytes = 1 + prost::encoding::encoded_len_varint(message.len() as u64) + message.len();
    if bytes > HOST_FRAME_BYTES_MAX {
        return Err(FrameError::TooLarge {
            bytes,
            bytes_max: HOST_FRAME_BYTES_MAX,
        });
    }
    let mut header = Vec::with_capacity(LENGTH_BYTES + 1 + 10);
    header.extend_from_slice(&(bytes as u32).to_be_bytes());
    header.push(KEY);
    prost::encoding::encode_varint(message.len() as u64, &mut header);
    writer.write_all(&header)?;
    writer.write_all(message)?;
    Ok(())
}

/// Reads one frame's bytes: `Ok(None)` if the stream ended cleanly before a frame began. A
/// length over `bytes_max` is refused before the body is read.
pub fn read_frame(reader: &mut impl Read, bytes_max: usize) -> Result<Option<Vec<u8>>, FrameError> {
    let mut prefix = [0u8; LENGTH_BYTES];
    let mut filled = 0;
    while filled < LENGTH_BYTES {
        match reader.read(&mut prefix[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(read) => filled += read,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(error.into()),
        }
    }
    let bytes = u32::from_be_bytes(prefix) as usize;
    if bytes > bytes_max {
        return Err(FrameError::TooLarge { bytes, bytes_max });
    }
    let mut body = vec![0u8; bytes];
    reader.read_exact(&mut body)?;
    Ok(Some(body))
}

/// `reason`, cut to [`REASON_BYTES_MAX`] bytes at a character boundary.
pub fn bounded_reason(reason: &str) -> String {
    if reason.len() <= REASON_BYTES_MAX {
        return reason.to_owned();
    }
    let mut end = REASON_BYTES_MAX;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use cloister_proto::door::{
        Drained, EnclaveFrame, HostFrame, Refusal, enclave_frame, host_frame,
    };

    use super::*;

    fn host_frame_of(bytes: usize) -> HostFrame {
        HostFrame {
            kind: Some(host_frame::Kind::UntrustedMessage(vec![7; bytes])),
        }
    }

    #[test]
    fn a_frame_round_trips() {
        let frame = host_frame_of(300);
        let mut wire = Vec::new();
        write_frame(&mut wire, &frame, HOST_FRAME_BYTES_MAX).unwrap();
        assert_eq!(
            &wire[..LENGTH_BYTES],
            &(frame.encoded_len() as u32).to_be_bytes()
        );
        let mut reader = Cursor::new(wire);
        let body = read_frame(&mut reader, HOST_FRAME_BYTES_MAX)
            .unwrap()
            .unwrap();
        assert_eq!(HostFrame::decode(body.as_slice()).unwrap(), frame);
        // Then the stream ends cleanly, between frames.
        assert!(
            read_frame(&mut reader, HOST_FRAME_BYTES_MAX)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn an_untrusted_message_is_framed_as_prost_would_frame_it() {
        for bytes in [0, 1, 127, 128, 300, UNTRUSTED_MESSAGE_BYTES_MAX] {
            let mut by_hand = Vec::new();
            write_untrusted_message(&mut by_hand, &vec![7; bytes]).unwrap();
            let mut by_prost = Vec::new();
            write_frame(&mut by_prost, &host_frame_of(bytes), HOST_FRAME_BYTES_MAX).unwrap();
            assert_eq!(by_hand, by_prost, "{bytes} bytes");
        }
        let mut wire = Vec::new();
        let refused = write_untrusted_message(&mut wire, &vec![7; HOST_FRAME_BYTES_MAX]);
        assert!(
            matches!(refused, Err(FrameError::TooLarge { .. })),
            "{refused:?}"
        );
        assert!(wire.is_empty());
    }

    #[test]
    fn the_largest_untrusted_message_fits_a_host_frame_and_one_more_byte_does_not() {
        let largest = host_frame_of(UNTRUSTED_MESSAGE_BYTES_MAX);
        assert!(largest.encoded_len() <= HOST_FRAME_BYTES_MAX);
        let mut wire = Vec::new();
        write_frame(&mut wire, &largest, HOST_FRAME_BYTES_MAX).unwrap();
        let body = read_frame(&mut Cursor::new(wire), HOST_FRAME_BYTES_MAX).unwrap();
        assert_eq!(body.unwrap().len(), largest.encoded_len());

        let mut wire = Vec::new();
        let over = host_frame_of(HOST_FRAME_BYTES_MAX);
        let refused = write_frame(&mut wire, &over, HOST_FRAME_BYTES_MAX);
        assert!(
            matches!(refused, Err(FrameError::TooLarge { .. })),
            "{refused:?}"
        );
        assert!(wire.is_empty(), "nothing written for a refused frame");
    }

    #[test]
    fn an_oversized_length_is_refused_before_the_body_is_read() {
        // Only the prefix exists: reading the body would report a truncation instead.
        let prefix = ((HOST_FRAME_BYTES_MAX + 1) as u32).to_be_bytes();
        let refused = read_frame(&mut Cursor::new(prefix), HOST_FRAME_BYTES_MAX);
        match refused {
            Err(FrameError::TooLarge { bytes, bytes_max }) => {
                assert_eq!(bytes, HOST_FRAME_BYTES_MAX + 1);
                assert_eq!(bytes_max, HOST_FRAME_BYTES_MAX);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        let everything = u32::MAX.to_be_bytes();
        let refused = read_frame(&mut Cursor::new(everything), ENCLAVE_FRAME_BYTES_MAX);
        assert!(
            matches!(refused, Err(FrameError::TooLarge { .. })),
            "{refused:?}"
        );
    }

    #[test]
    fn a_frame_cut_short_is_a_truncation_not_a_clean_end() {
        let mut wire = Vec::new();
        write_frame(&mut wire, &host_frame_of(40), HOST_FRAME_BYTES_MAX).unwrap();
        for cut in [1, LENGTH_BYTES - 1, LENGTH_BYTES, wire.len() - 1] {
            let refused = read_frame(&mut Cursor::new(&wire[..cut]), HOST_FRAME_BYTES_MAX);
            assert!(
                matches!(refused, Err(FrameError::Truncated)),
                "cut at {cut}: {refused:?}"
            );
        }
    }

    #[test]
    fn an_empty_frame_reads_as_empty_bytes_and_decodes_to_no_kind() {
        let body = read_frame(&mut Cursor::new([0u8; 4]), HOST_FRAME_BYTES_MAX).unwrap();
        let frame = HostFrame::decode(body.unwrap().as_slice()).unwrap();
        assert!(
            frame.kind.is_none(),
            "the receiver must refuse a frame with no kind"
        );
    }

    #[test]
    fn a_drained_refusing_a_whole_batch_fits_an_enclave_frame() {
        let refusals = (0..BATCH_MESSAGES_MAX as u32)
            .map(|index| Refusal {
                index: u32::MAX - index,
                reason: bounded_reason(&"é".repeat(REASON_BYTES_MAX)),
            })
            .collect();
        let drained = EnclaveFrame {
            kind: Some(enclave_frame::Kind::Drained(Drained {
                refusals,
                more: true,
                messages_dropped: u32::MAX,
            })),
        };
        let mut wire = Vec::new();
        write_frame(&mut wire, &drained, ENCLAVE_FRAME_BYTES_MAX).unwrap();
    }

    #[test]
    fn reasons_are_cut_at_a_character_boundary() {
        let long = "ü".repeat(REASON_BYTES_MAX);
        let cut = bounded_reason(&long);
        assert!(cut.len() <= REASON_BYTES_MAX && cut.len() >= REASON_BYTES_MAX - 1);
        assert!(cut.chars().all(|character| character == 'ü'));
        assert_eq!(bounded_reason("short"), "short");
    }

    #[test]
    fn a_timeout_and_an_early_end_are_told_apart_from_other_errors() {
        assert!(matches!(
            FrameError::from(std::io::Error::from(ErrorKind::WouldBlock)),
            FrameError::TimedOut
        ));
        assert!(matches!(
            FrameError::from(std::io::Error::from(ErrorKind::UnexpectedEof)),
            FrameError::Truncated
        ));
        assert!(matches!(
            FrameError::from(std::io::Error::from(ErrorKind::ConnectionReset)),
            FrameError::Io(_)
        ));
    }
}
