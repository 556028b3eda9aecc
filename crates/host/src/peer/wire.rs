//! The wire: length-prefixed `cloister.transport.TransportFrame`s, and the checks that turn
//! one into a [`Frame`]. Nothing past [`read_frame`] sees an unchecked field.
//!
//! ```text
//!  ┌──────────────┬──────────────────────────────────────────────┐
//!  │ length: u32  │ TransportFrame (protobuf), `length` bytes    │  length ∈ 1..=frame_bytes_max
//!  │ big-endian   │ Hello | Data{seq, bytes, ack} | Ack{seq}     │
//!  │              │ | Ping{probe} | Pong{probe}                  │
//!  └──────────────┴──────────────────────────────────────────────┘
//! ```

use std::net::SocketAddr;

use cloister_proto::transport::{self as proto, TransportFrame, transport_frame::Kind};
use prost::Message;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{PeerError, PeerId};

/// The one protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 2;
/// Room for the door's envelope around peer data: `UntrustedMessage{PeerMessage{peer_id,
/// data}}` needs 42 bytes (tested below); the core leaves 128 for it too.
const ENVELOPE_BYTES_MAX: usize = 128;
/// The largest enclave peer message the transport carries: anything larger would not fit
/// the receiving enclave's door once wrapped, so it could never be delivered.
pub const DATA_BYTES_MAX: usize =
    cloister_enclave::UNTRUSTED_MESSAGE_BYTES_MAX - ENVELOPE_BYTES_MAX;
/// Room for a `Data` frame's own fields around its bytes: the frame's tag and length (6),
/// `seq` and `ack` (11 each), the bytes' tag and length (6), with room to spare.
const DATA_OVERHEAD_BYTES_MAX: usize = 48;
/// The largest frame accepted once a connection's Hello exchange is done.
pub const FRAME_BYTES_MAX: usize = DATA_BYTES_MAX + DATA_OVERHEAD_BYTES_MAX;
/// Entries of `Hello.known_peers` at most.
pub const KNOWN_PEERS_MAX: usize = 64;
/// The longest socket address text ("[v6%scope]:port" fits).
const ADDR_TEXT_BYTES_MAX: usize = 64;
/// The largest Hello: fixed fields plus every known peer. The only frame accepted before a
/// connection has said who it is, so an unknown dialer cannot make the host allocate more.
pub const HELLO_BYTES_MAX: usize =
    128 + ADDR_TEXT_BYTES_MAX + KNOWN_PEERS_MAX * (8 + PeerId::BYTES + ADDR_TEXT_BYTES_MAX);

const _: () = assert!(HELLO_BYTES_MAX <= FRAME_BYTES_MAX);
const _: () = assert!(FRAME_BYTES_MAX <= u32::MAX as usize);

/// What a peer says about itself when a connection opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The sender's enclave peer id.
    pub peer_id: PeerId,
    /// Where the sender accepts peer connections, if it does.
    pub listen_addr: Option<SocketAddr>,
    /// Random per process start of the sender.
    pub incarnation: u64,
    /// Other peers the sender knows an address for.
    pub known_peers: Vec<(PeerId, SocketAddr)>,
    /// The sender only wants the answering Hello.
    pub discovery_only: bool,
    /// The highest sequence number the sender ever handed a connection to the receiver.
    pub sent_through: u64,
}

/// One checked frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Who the sender is (first frame each way, and only then).
    Hello(Hello),
    /// One enclave peer message; `seq >= 1`, at most [`DATA_BYTES_MAX`] bytes.
    Data {
        /// The sender's sequence number.
        seq: u64,
        /// The enclave's bytes.
        bytes: Vec<u8>,
        /// A cumulative acknowledgement carried along, as in [`Frame::Ack`] (0: none).
        ack: u64,
    },
    /// Every `Data` up to `seq` was handed to the receiver's enclave.
    Ack {
        /// The cumulative sequence number.
        seq: u64,
    },
    /// Liveness; a nonzero `probe` asks for a [`Frame::Pong`] with the same number.
    Ping {
        /// 0, or the number to answer.
        probe: u64,
    },
    /// The answer to a probe.
    Pong {
        /// The probe's number (never 0).
        probe: u64,
    },
}

impl Frame {
    /// Decodes and checks one frame body (without its length prefix). The error says why,
    /// for the log line that accompanies the disconnect.
    pub fn decode(body: &[u8]) -> Result<Frame, String> {
        let frame = TransportFrame::decode(body)
            .map_err(|error| format!("not a TransportFrame: {error}"))?;
        match frame.kind {
            Some(Kind::Hello(hello)) => Ok(Frame::Hello(check_hello(hello)?)),
            Some(Kind::Data(data)) => {
                if data.seq == 0 {
                    return Err("Data with sequence number 0".to_owned());
                }
                if data.bytes.len() > DATA_BYTES_MAX {
                    return Err(format!("Data of {} bytes", data.bytes.len()));
                }
                Ok(Frame::Data {
                    seq: data.seq,
                    bytes: data.bytes,
                    ack: data.ack,
                })
            }
            Some(Kind::Ack(ack)) => Ok(Frame::Ack { seq: ack.seq }),
            Some(Kind::Ping(ping)) => Ok(Frame::Ping { probe: ping.probe }),
            Some(Kind::Pong(pong)) if pong.probe == 0 => Err("a Pong to probe 0".to_owned()),
            Some(Kind::Pong(pong)) => Ok(Frame::Pong { probe: pong.probe }),
            None => Err("a frame of unknown kind".to_owned()),
        }
    }
}

fn check_hello(hello: proto::Hello) -> Result<Hello, String> {
    if hello.protocol_version != PROTOCOL_VERSION {
        return Err(format!(
            "protocol version {} (this host speaks {PROTOCOL_VERSION})",
            hello.protocol_version
        ));
    }
    let peer_id = PeerId::from_slice(&hello.peer_id)
        .ok_or_else(|| format!("a peer id of {} bytes", hello.peer_id.len()))?;
    let listen_addr = if hello.listen_addr.is_empty() {
        None
    } else {
        Some(parse_addr(&hello.listen_addr)?)
    };
    if hello.known_peers.len() > KNOWN_PEERS_MAX {
        return Err(format!("{} known peers", hello.known_peers.len()));
    }
    let mut known_peers = Vec::with_capacity(hello.known_peers.len());
    for known in &hello.known_peers {
        let id = PeerId::from_slice(&known.peer_id)
            .ok_or_else(|| format!("a known peer id of {} bytes", known.peer_id.len()))?;
        known_peers.push((id, parse_addr(&known.addr)?));
    }
    Ok(Hello {
        peer_id,
        listen_addr,
        incarnation: hello.incarnation,
        known_peers,
        discovery_only: hello.discovery_only,
        sent_through: hello.sent_through,
    })
}

fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    if text.len() > ADDR_TEXT_BYTES_MAX {
        return Err(format!("an address of {} bytes", text.len()));
    }
    text.parse()
        .map_err(|_| format!("an address that does not parse: {text:?}"))
}

/// Encodes one frame with its length prefix.
pub fn encode(kind: Kind) -> Vec<u8> {
    let frame = TransportFrame { kind: Some(kind) };
    let length = frame.encoded_len();
    let mut out = Vec::with_capacity(4 + length);
    // Every frame this host builds is bounded far below u32::MAX (asserted above).
    out.extend_from_slice(&u32::try_from(length).unwrap_or(u32::MAX).to_be_bytes());
    frame.encode_raw(&mut out);
    out
}

/// A Hello frame, ready to write.
pub fn encode_hello(hello: &Hello) -> Vec<u8> {
    let known_peers = hello
        .known_peers
        .iter()
        .map(|(peer_id, addr)| proto::KnownPeer {
            peer_id: peer_id.as_bytes().to_vec(),
            addr: addr.to_string(),
        })
        .collect();
    encode(Kind::Hello(proto::Hello {
        protocol_version: PROTOCOL_VERSION,
        peer_id: hello.peer_id.as_bytes().to_vec(),
        listen_addr: hello
            .listen_addr
            .map(|addr| addr.to_string())
            .unwrap_or_default(),
        incarnation: hello.incarnation,
        known_peers,
        discovery_only: hello.discovery_only,
        sent_through: hello.sent_through,
    }))
}

/// Reads one frame of at most `frame_bytes_max` bytes; returns it with its size on the wire.
/// A clean end of stream before a frame starts is [`PeerError::Closed`]; anything else
/// that is not a whole, valid frame is a [`PeerError::Violation`].
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    frame_bytes_max: usize,
) -> Result<(Frame, usize), PeerError> {
    let io = |context: &str| {
        let context = context.to_owned();
        move |source| PeerError::Io { context, source }
    };
    let mut prefix = [0u8; 4];
    if reader.read(&mut prefix[..1]).await.map_err(io("reading"))? == 0 {
        return Err(PeerError::Closed);
    }
    read_all(reader, &mut prefix[1..], "a truncated length prefix").await?;
    let length = u32::from_be_bytes(prefix) as usize;
    if length == 0 || length > frame_bytes_max {
        return Err(PeerError::Violation(format!(
            "a frame of {length} bytes (limit {frame_bytes_max})"
        )));
    }
    let mut body = vec![0u8; length];
    read_all(reader, &mut body, "a truncated frame").await?;
    let frame = Frame::decode(&body).map_err(PeerError::Violation)?;
    Ok((frame, 4 + length))
}

async fn read_all<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut [u8],
    truncated: &str,
) -> Result<(), PeerError> {
    match reader.read_exact(buffer).await {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(PeerError::Violation(truncated.to_owned()))
        }
        Err(source) => Err(PeerError::Io {
            context: "reading".to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            peer_id: PeerId::from([3; 32]),
            listen_addr: Some("127.0.0.1:7000".parse().unwrap()),
            incarnation: 99,
            known_peers: vec![(PeerId::from([4; 32]), "[::1]:7001".parse().unwrap())],
            discovery_only: false,
            sent_through: 12,
        }
    }

    async fn read(bytes: &[u8], max: usize) -> Result<(Frame, usize), PeerError> {
        read_frame(&mut &bytes[..], max).await
    }

    #[tokio::test]
    async fn frames_round_trip_with_their_wire_size() {
        let bytes = encode_hello(&hello());
        let (frame, size) = read(&bytes, HELLO_BYTES_MAX).await.unwrap();
        assert_eq!(frame, Frame::Hello(hello()));
        assert_eq!(size, bytes.len());
        let data = encode(Kind::Data(proto::Data {
            seq: u64::MAX,
            bytes: vec![1; DATA_BYTES_MAX],
            ack: u64::MAX,
        }));
        assert!(data.len() <= 4 + FRAME_BYTES_MAX, "the largest Data fits");
        let (frame, _) = read(&data, FRAME_BYTES_MAX).await.unwrap();
        assert!(matches!(
            frame,
            Frame::Data { seq: u64::MAX, bytes, ack: u64::MAX } if bytes.len() == DATA_BYTES_MAX
        ));
        let probes = [
            (
                Kind::Ping(proto::Ping { probe: 0 }),
                Frame::Ping { probe: 0 },
            ),
            (
                Kind::Ping(proto::Ping { probe: 9 }),
                Frame::Ping { probe: 9 },
            ),
            (
                Kind::Pong(proto::Pong { probe: 9 }),
                Frame::Pong { probe: 9 },
            ),
        ];
        for (kind, expected) in probes {
            assert_eq!(read(&encode(kind), 100).await.unwrap().0, expected);
        }
    }

    #[tokio::test]
    async fn bad_frames_are_violations_and_a_clean_end_is_closed() {
        assert!(matches!(read(&[], 100).await, Err(PeerError::Closed)));
        let cases: Vec<Vec<u8>> = vec![
            vec![0, 0],                         // truncated prefix
            vec![0, 0, 0, 0],                   // empty frame
            vec![0, 1, 0, 0],                   // over the limit
            vec![0, 0, 0, 5, 1, 2],             // truncated body
            vec![0, 0, 0, 3, 0xff, 0xff, 0xff], // not protobuf
            encode(Kind::Data(proto::Data {
                seq: 0,
                bytes: vec![],
                ack: 0,
            })),
            encode(Kind::Data(proto::Data {
                seq: 1,
                bytes: vec![0; DATA_BYTES_MAX + 1],
                ack: 0,
            })),
            encode(Kind::Pong(proto::Pong { probe: 0 })),
            {
                let mut frame = TransportFrame::default().encode_to_vec();
                frame.splice(0..0, (frame.len() as u32 + 1).to_be_bytes());
                frame.push(0); // a field with tag 0: invalid protobuf
                frame
            },
        ];
        for bytes in cases {
            let result = read(&bytes, 1_000).await;
            assert!(
                matches!(result, Err(PeerError::Violation(_))),
                "{bytes:?}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn hellos_are_checked_field_by_field() {
        let good = encode_hello(&hello());
        let body = TransportFrame::decode(&good[4..]).unwrap();
        let Some(Kind::Hello(good)) = body.kind else {
            unreachable!()
        };
        type Edit = fn(&mut proto::Hello);
        let edits: &[Edit] = &[
            |h| h.protocol_version = PROTOCOL_VERSION + 1,
            |h| h.peer_id.truncate(31),
            |h| h.listen_addr = "localhost:7000".to_owned(),
            |h| h.listen_addr = format!("{}:1", "1".repeat(70)),
            |h| h.known_peers[0].peer_id = vec![1; 33],
            |h| h.known_peers[0].addr = "nowhere".to_owned(),
            |h| h.known_peers = vec![h.known_peers[0].clone(); KNOWN_PEERS_MAX + 1],
        ];
        for edit in edits {
            let mut hello = good.clone();
            edit(&mut hello);
            let bytes = encode(Kind::Hello(hello.clone()));
            let result = read(&bytes, FRAME_BYTES_MAX).await;
            assert!(matches!(result, Err(PeerError::Violation(_))), "{hello:?}");
        }
        let mut empty_addr = good;
        empty_addr.listen_addr.clear();
        let (frame, _) = read(&encode(Kind::Hello(empty_addr)), 1_000).await.unwrap();
        assert!(matches!(
            frame,
            Frame::Hello(Hello {
                listen_addr: None,
                ..
            })
        ));
    }

    #[test]
    fn the_largest_data_fits_the_receiving_enclaves_door() {
        use cloister_proto::enclave::{PeerMessage, UntrustedMessage, untrusted_message};
        let message = UntrustedMessage {
            inner: Some(untrusted_message::Inner::PeerMessage(PeerMessage {
                peer_id: vec![0xff; PeerId::BYTES],
                data: vec![0xff; DATA_BYTES_MAX],
            })),
        };
        assert!(message.encoded_len() <= cloister_enclave::UNTRUSTED_MESSAGE_BYTES_MAX);
    }

    #[test]
    fn the_largest_hello_fits_its_bound() {
        let long_addr: SocketAddr = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
            .parse()
            .unwrap();
        let largest = Hello {
            listen_addr: Some(long_addr),
            incarnation: u64::MAX,
            known_peers: vec![(PeerId::from([0xff; 32]), long_addr); KNOWN_PEERS_MAX],
            discovery_only: true,
            sent_through: u64::MAX,
            ..hello()
        };
        assert!(encode_hello(&largest).len() - 4 <= HELLO_BYTES_MAX);
    }
}
