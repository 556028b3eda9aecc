//! [`RemoteDoor`]: the door to an enclave core in another process, over a socket.
//!
//! Blocking I/O, because it runs on the dispatcher's own thread; every wait has a deadline,
//! so a hung enclave process surfaces as [`DoorError::Timeout`] instead of hanging the host.
//! After any failure the door is broken for good: the host cannot tell which of the batch's
//! messages the enclave handled, so it stops, and a restarted host reattaches.

use std::collections::VecDeque;
use std::io::{BufReader, BufWriter, Read, Write};
use std::time::{Duration, Instant};

use cloister_proto::door::{
    Attach, Drain, Drained, EnclaveFrame, HostFrame, enclave_frame, host_frame,
};
use prost::Message;
use socket2::Socket;

use super::frame::{
    self, BATCH_MESSAGES_MAX, DRAIN_MESSAGES_MAX, ENCLAVE_FRAME_BYTES_MAX, FrameError,
    HOST_FRAME_BYTES_MAX, PROTOCOL_VERSION,
};
use super::{DoorError, EnclaveAddress, EnclaveDoor, Exchanged};

/// Outputs fetched per round trip when [`EnclaveDoor::poll_message`] is called directly
/// (the dispatcher uses [`EnclaveDoor::exchange`] instead): bounds what is buffered here.
const POLL_MESSAGES_PER_TRIP: u32 = 64;
/// The largest request id an enclave may hand out as a first id: leaves room to count up.
const FIRST_REQUEST_ID_MAX: u64 = 1 << 62;

/// How long the host waits for the enclave process.
#[derive(Debug, Clone, Copy)]
pub struct RemoteSettings {
    /// To connect and to be answered `Attached`.
    pub connect_timeout: Duration,
    /// For the whole answer to one batch.
    pub exchange_timeout: Duration,
}

impl Default for RemoteSettings {
    fn default() -> Self {
        RemoteSettings {
            connect_timeout: Duration::from_secs(10),
            exchange_timeout: Duration::from_secs(30),
        }
    }
}

/// What the enclave said when this host attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The core was already running (and kept its state) rather than created now.
    pub reattached: bool,
    /// Where this host's request ids start.
    pub first_request_id: u64,
    /// The backend the enclave process says it runs on (clients check the evidence).
    pub backend: String,
}

/// The door to an enclave process: one connection, attached.
pub struct RemoteDoor {
    address: String,
    reader: BufReader<DeadlineReader>,
    writer: BufWriter<Socket>,
    settings: RemoteSettings,
    attachment: Attachment,
    /// Why the door broke, once it has.
    broken: Option<String>,
    /// Outputs fetched by `poll_message` and not yet returned.
    polled: VecDeque<Vec<u8>>,
}

/// A socket whose reads give up at a deadline rather than after a fixed time each.
struct DeadlineReader {
    socket: Socket,
    deadline: Instant,
}

impl Read for DeadlineReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.socket.set_read_timeout(Some(left))?;
        (&self.socket).read(buffer)
    }
}

impl RemoteDoor {
    /// Connects to the enclave at `address` and attaches with `init_config` (a serialized
    /// `InitConfig`): a fresh enclave is created with it, a running one accepts it as a
    /// reattach if its config is the same. Blocks for at most `connect_timeout` twice.
    pub fn connect(
        address: &EnclaveAddress,
        init_config: &[u8],
        settings: RemoteSettings,
    ) -> Result<RemoteDoor, DoorError> {
        let socket = address.connect(settings.connect_timeout)?;
        let io = |what: &str, source| DoorError::Io {
            context: format!("{what} the enclave at {address}"),
            source,
        };
        socket
            .set_write_timeout(Some(settings.exchange_timeout))
            .map_err(|source| io("setting a write timeout for", source))?;
        let reader_socket = socket
            .try_clone()
            .map_err(|source| io("cloning the connection to", source))?;
        let mut door = RemoteDoor {
            address: address.to_string(),
            reader: BufReader::new(DeadlineReader {
                socket: reader_socket,
                deadline: Instant::now() + settings.connect_timeout,
            }),
            writer: BufWriter::new(socket),
            settings,
            attachment: Attachment {
                reattached: false,
                first_request_id: 1,
                backend: String::new(),
            },
            broken: None,
            polled: VecDeque::new(),
        };
        door.attachment = door.attach(init_config)?;
        Ok(door)
    }

    /// What the enclave said when this host attached.
    pub fn attachment(&self) -> &Attachment {
        &self.attachment
    }

    /// The enclave's address, as given.
    pub fn address(&self) -> &str {
        &self.address
    }

    fn attach(&mut self, init_config: &[u8]) -> Result<Attachment, DoorError> {
        let attach = Attach {
            protocol_version: PROTOCOL_VERSION,
            init_config: init_config.to_vec(),
        };
        self.send(host_frame::Kind::Attach(attach))?;
        self.flush()?;
        let timeout = self.settings.connect_timeout;
        match self.receive(Instant::now() + timeout, timeout)? {
            enclave_frame::Kind::Attached(attached) => {
                if attached.protocol_version != PROTOCOL_VERSION {
                    return Err(self.protocol(format!(
                        "it speaks protocol version {}, this host {PROTOCOL_VERSION}",
                        attached.protocol_version
                    )));
                }
                if !(1..=FIRST_REQUEST_ID_MAX).contains(&attached.first_request_id) {
                    return Err(self.protocol("first request id out of range".into()));
                }
                Ok(Attachment {
                    reattached: attached.reattached,
                    first_request_id: attached.first_request_id,
                    backend: frame::bounded_reason(&attached.backend),
                })
            }
            other => Err(self.unexpected(&other, "Attached")),
        }
    }

    /// One round trip: `chunk` as `Handle` frames, then `Drain{messages_max}`; outputs go to
    /// `output`. Returns the chunk's refusals (by index) and whether polling hit its bound.
    fn round_trip(
        &mut self,
        chunk: &[Vec<u8>],
        messages_max: u32,
        output: &mut dyn FnMut(Vec<u8>),
    ) -> Result<(Drained, u32), DoorError> {
        for message in chunk {
            frame::write_untrusted_message(&mut self.writer, message).map_err(|error| {
                self.frame_error(error, "sending to", self.settings.exchange_timeout)
            })?;
        }
        self.send(host_frame::Kind::Drain(Drain { messages_max }))?;
        self.flush()?;
        let timeout = self.settings.exchange_timeout;
        let deadline = Instant::now() + timeout;
        let mut outputs = 0u32;
        loop {
            match self.receive(deadline, timeout)? {
                enclave_frame::Kind::EnclaveMessage(message) => {
                    outputs += 1;
                    if outputs > messages_max {
                        return Err(self
                            .protocol(format!("more than the {messages_max} outputs asked for")));
                    }
                    output(message);
                }
                enclave_frame::Kind::Drained(drained) => {
                    self.check_refusals(&drained, chunk.len())?;
                    return Ok((drained, outputs));
                }
                other => return Err(self.unexpected(&other, "an output or Drained")),
            }
        }
    }

    fn check_refusals(&self, drained: &Drained, batch_len: usize) -> Result<(), DoorError> {
        let mut next = 0usize;
        for refusal in &drained.refusals {
            let index = refusal.index as usize;
            if index < next || index >= batch_len {
                return Err(self.protocol(format!(
                    "refusal index {index} out of order or outside a batch of {batch_len}"
                )));
            }
            next = index + 1;
        }
        Ok(())
    }

    /// Handles a whole batch, in round trips of at most [`BATCH_MESSAGES_MAX`] messages;
    /// only the last one drains (the others ask for no output), as in-process.
    fn exchange_unbroken(
        &mut self,
        batch: &[Vec<u8>],
        drain_messages_max: usize,
        output: &mut dyn FnMut(Vec<u8>),
    ) -> Result<Exchanged, DoorError> {
        let drain_max = u32::try_from(drain_messages_max)
            .unwrap_or(u32::MAX)
            .min(DRAIN_MESSAGES_MAX);
        let mut refusals = vec![None; batch.len()];
        let mut chunks: Vec<&[Vec<u8>]> = batch.chunks(BATCH_MESSAGES_MAX).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let last = chunks.len() - 1;
        let mut drained = true;
        for (number, chunk) in chunks.into_iter().enumerate() {
            let messages_max = if number == last { drain_max } else { 0 };
            let (answer, _) = self.round_trip(chunk, messages_max, output)?;
            let offset = number * BATCH_MESSAGES_MAX;
            for refusal in answer.refusals {
                refusals[offset + refusal.index as usize] = Some(refusal.reason);
            }
            if answer.messages_dropped > 0 {
                tracing::error!(
                    dropped = answer.messages_dropped,
                    "the enclave dropped outputs larger than the door carries"
                );
            }
            drained = !answer.more;
        }
        Ok(Exchanged { refusals, drained })
    }

    fn send(&mut self, kind: host_frame::Kind) -> Result<(), DoorError> {
        let frame = HostFrame { kind: Some(kind) };
        frame::write_frame(&mut self.writer, &frame, HOST_FRAME_BYTES_MAX)
            .map_err(|error| self.frame_error(error, "sending to", self.settings.exchange_timeout))
    }

    fn flush(&mut self) -> Result<(), DoorError> {
        self.writer.flush().map_err(|error| {
            self.frame_error(error.into(), "sending to", self.settings.exchange_timeout)
        })
    }

    /// The next frame's kind; a `Refused` becomes [`DoorError::Refused`].
    fn receive(
        &mut self,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<enclave_frame::Kind, DoorError> {
        self.reader.get_mut().deadline = deadline;
        let bytes = match frame::read_frame(&mut self.reader, ENCLAVE_FRAME_BYTES_MAX) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(DoorError::Closed(self.address.clone())),
            Err(error) => return Err(self.frame_error(error, "waiting for", timeout)),
        };
        let frame = EnclaveFrame::decode(bytes.as_slice())
            .map_err(|_| self.protocol("a frame that is not an EnclaveFrame".into()))?;
        match frame.kind {
            Some(enclave_frame::Kind::Refused(refused)) => Err(DoorError::Refused {
                address: self.address.clone(),
                reason: frame::bounded_reason(&refused.reason),
            }),
            Some(kind) => Ok(kind),
            None => Err(self.protocol("an empty frame".into())),
        }
    }

    fn frame_error(&self, error: FrameError, doing: &str, timeout: Duration) -> DoorError {
        let context = format!("{doing} the enclave at {}", self.address);
        match error {
            FrameError::TimedOut => DoorError::Timeout { context, timeout },
            FrameError::Truncated => DoorError::Closed(self.address.clone()),
            FrameError::TooLarge { .. } => self.protocol(error.to_string()),
            FrameError::Io(source) => DoorError::Io { context, source },
        }
    }

    fn protocol(&self, what: String) -> DoorError {
        DoorError::Protocol {
            address: self.address.clone(),
            what,
        }
    }

    fn unexpected(&self, kind: &enclave_frame::Kind, wanted: &str) -> DoorError {
        let got = match kind {
            enclave_frame::Kind::Attached(_) => "Attached",
            enclave_frame::Kind::EnclaveMessage(_) => "an output",
            enclave_frame::Kind::Drained(_) => "Drained",
            enclave_frame::Kind::Refused(_) => "Refused",
        };
        self.protocol(format!("expected {wanted}, got {got}"))
    }

    /// Marks the door broken and closes the connection.
    fn break_with(&mut self, error: &DoorError) {
        self.broken = Some(error.to_string());
        let _ = self.writer.get_ref().shutdown(std::net::Shutdown::Both);
    }
}

impl EnclaveDoor for RemoteDoor {
    /// One message, one round trip (no draining: [`Self::poll_message`] does that).
    fn handle(&mut self, untrusted_message: &[u8]) -> Result<(), String> {
        let batch = [untrusted_message.to_vec()];
        let mut outputs = Vec::new();
        let exchanged = self.exchange(&batch, 0, &mut |message| outputs.push(message));
        self.polled.extend(outputs);
        match exchanged {
            Ok(mut exchanged) => exchanged.refusals.pop().flatten().map_or(Ok(()), Err),
            Err(error) => Err(error.to_string()),
        }
    }

    fn poll_message(&mut self) -> Option<Vec<u8>> {
        if self.polled.is_empty() {
            let mut outputs = VecDeque::new();
            let drained = self.exchange(&[], POLL_MESSAGES_PER_TRIP as usize, &mut |message| {
                outputs.push_back(message);
            });
            if let Err(error) = drained {
                tracing::error!(%error, "polling the enclave failed");
            }
            self.polled = outputs;
        }
        self.polled.pop_front()
    }

    fn exchange(
        &mut self,
        batch: &[Vec<u8>],
        drain_messages_max: usize,
        output: &mut dyn FnMut(Vec<u8>),
    ) -> Result<Exchanged, DoorError> {
        if let Some(reason) = &self.broken {
            return Err(DoorError::Broken(reason.clone()));
        }
        let exchanged = self.exchange_unbroken(batch, drain_messages_max, output);
        if let Err(error) = &exchanged {
            self.break_with(error);
        }
        exchanged
    }

    fn first_request_id(&self) -> u64 {
        self.attachment.first_request_id
    }
}
