//! One host's session with the enclave server: `Attach`, then batches of `Handle` frames,
//! each answered at its `Drain`.
//!
//! The host is untrusted. Each frame is bounded before it is read and decoded before it is
//! acted on; anything else ends the session with one `Refused`. The core only ever sees the
//! same door calls the in-process host makes, so a bad frame leaves it as it was.

use std::io::{BufReader, BufWriter, Write};

use cloister_enclave::{Enclave, INIT_CONFIG_BYTES_MAX};
use cloister_proto::door::{
    Attach, Attached, Drained, EnclaveFrame, HostFrame, Refusal, Refused, enclave_frame, host_frame,
};
use cloister_proto::enclave::{EnclaveConfig, InitConfig};
use prost::Message;
use socket2::Socket;

use super::frame::{
    self, BATCH_MESSAGES_MAX, DRAIN_MESSAGES_MAX, ENCLAVE_FRAME_BYTES_MAX,
    ENCLAVE_MESSAGE_BYTES_MAX, FrameError, HOST_FRAME_BYTES_MAX, PROTOCOL_VERSION,
};
use super::serve::{EnclaveBackend, ServeSettings};

/// Each attach gets a range of this many request ids, so that a late answer to an earlier
/// host's request is an orphan for the next host, never taken for an answer to its own.
pub(crate) const REQUEST_IDS_PER_ATTACH: u64 = 1 << 40;
/// Attaches in one enclave's life at most (the ranges above stay below 2^64).
const ATTACHES_MAX: u64 = 1 << 23;

const _: () = assert!(ATTACHES_MAX.checked_mul(REQUEST_IDS_PER_ATTACH).is_some());

/// The core and what the enclave remembers about how it was created.
pub(crate) struct Core {
    enclave: Enclave,
    /// The config it was created with: a reattaching host must bring the same.
    config: EnclaveConfig,
    /// Hosts attached so far.
    attaches: u64,
}

/// How a session ended.
enum Ending {
    /// The host closed the connection between frames.
    HostLeft,
    /// The connection failed (reset, closed mid-frame, a write timed out).
    Lost(String),
    /// The host did something the protocol does not allow; it is told why.
    Refused(String),
}

type Step<T> = Result<T, Ending>;

struct Session {
    reader: BufReader<Socket>,
    writer: BufWriter<Socket>,
    settings: ServeSettings,
}

/// Serves one host over `socket` and gives the core back (created here if it was `None`
/// and the host attached).
pub(crate) fn run(
    socket: Socket,
    mut core: Option<Core>,
    backend: EnclaveBackend,
    settings: ServeSettings,
) -> Option<Core> {
    let mut session = match Session::new(socket, settings) {
        Ok(session) => session,
        Err(error) => {
            tracing::warn!(%error, "setting up a host connection failed");
            return core;
        }
    };
    let ending = match session.attach(&mut core, &backend) {
        Ok(()) => match core.as_mut() {
            Some(attached) => session.serve(attached),
            None => Ending::Lost("no core after attaching".into()),
        },
        Err(ending) => ending,
    };
    session.end(ending);
    core
}

/// Tells a connection why it is refused, and closes it.
pub(crate) fn refuse(socket: Socket, reason: &str, settings: ServeSettings) {
    match Session::new(socket, settings) {
        Ok(session) => session.end(Ending::Refused(reason.to_owned())),
        Err(error) => tracing::warn!(%error, reason, "refusing a host connection failed"),
    }
}

impl Session {
    fn new(socket: Socket, settings: ServeSettings) -> std::io::Result<Session> {
        socket.set_write_timeout(Some(settings.write_timeout))?;
        socket.set_read_timeout(Some(settings.attach_timeout))?;
        let reader = socket.try_clone()?;
        Ok(Session {
            reader: BufReader::new(reader),
            writer: BufWriter::new(socket),
            settings,
        })
    }

    /// Reads `Attach` and creates the core, or accepts a reattach to the running one.
    fn attach(&mut self, core: &mut Option<Core>, backend: &EnclaveBackend) -> Step<()> {
        let attach = match self.read()? {
            host_frame::Kind::Attach(attach) => attach,
            _ => return Err(Ending::Refused("the first frame must be Attach".into())),
        };
        let (requested, init_config) = validate_attach(attach)?;
        let (reattached, first_request_id) = match core {
            None => {
                let env = backend.env().map_err(|error| {
                    Ending::Refused(format!("the {} platform: {error}", backend.name()))
                })?;
                let enclave = Enclave::init(&init_config, env).map_err(|error| {
                    Ending::Refused(format!("the core refused the init config: {error}"))
                })?;
                *core = Some(Core {
                    enclave,
                    config: requested,
                    attaches: 1,
                });
                (false, 1)
            }
            Some(running) => (true, reattach(running, &requested)?),
        };
        tracing::info!(reattached, "host attached");
        let attached = Attached {
            protocol_version: PROTOCOL_VERSION,
            reattached,
            first_request_id,
            backend: backend.name().to_owned(),
        };
        self.write(enclave_frame::Kind::Attached(attached))?;
        self.flush()?;
        self.reader
            .get_ref()
            .set_read_timeout(Some(self.settings.idle_timeout))
            .map_err(|error| Ending::Lost(error.to_string()))
    }

    /// Batches until the host leaves or misbehaves.
    fn serve(&mut self, core: &mut Core) -> Ending {
        let mut batch_len = 0usize;
        let mut refusals = Vec::new();
        loop {
            let kind = match self.read() {
                Ok(kind) => kind,
                Err(ending) => return ending,
            };
            let step = match kind {
                host_frame::Kind::UntrustedMessage(message) => {
                    if batch_len == BATCH_MESSAGES_MAX {
                        return Ending::Refused(format!(
                            "more than {BATCH_MESSAGES_MAX} messages before a Drain"
                        ));
                    }
                    if let Err(error) = core.enclave.handle(&message) {
                        refusals.push(Refusal {
                            index: batch_len as u32,
                            reason: frame::bounded_reason(&error.to_string()),
                        });
                    }
                    batch_len += 1;
                    Ok(())
                }
                host_frame::Kind::Drain(drain) => {
                    batch_len = 0;
                    self.drain(core, drain.messages_max, std::mem::take(&mut refusals))
                }
                host_frame::Kind::Attach(_) => Err(Ending::Refused("already attached".into())),
            };
            if let Err(ending) = step {
                return ending;
            }
        }
    }

    /// Polls the core until it has nothing more (or `messages_max` outputs), then reports.
    fn drain(&mut self, core: &mut Core, messages_max: u32, refusals: Vec<Refusal>) -> Step<()> {
        let messages_max = messages_max.min(DRAIN_MESSAGES_MAX);
        let mut polled = 0u32;
        let mut messages_dropped = 0u32;
        while polled < messages_max {
            let Some(message) = core.enclave.poll_message() else {
                break;
            };
            polled += 1;
            if message.len() > ENCLAVE_MESSAGE_BYTES_MAX {
                messages_dropped += 1;
                tracing::error!(
                    bytes = message.len(),
                    "the core emitted a message larger than the door carries; dropped"
                );
                continue;
            }
            self.write(enclave_frame::Kind::EnclaveMessage(message))?;
        }
        let drained = Drained {
            refusals,
            more: messages_max > 0 && polled == messages_max,
            messages_dropped,
        };
        self.write(enclave_frame::Kind::Drained(drained))?;
        self.flush()
    }

    /// The next frame's kind. A clean end between frames is [`Ending::HostLeft`].
    fn read(&mut self) -> Step<host_frame::Kind> {
        let bytes = match frame::read_frame(&mut self.reader, HOST_FRAME_BYTES_MAX) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(Ending::HostLeft),
            Err(error @ FrameError::TooLarge { .. }) => {
                return Err(Ending::Refused(error.to_string()));
            }
            Err(FrameError::TimedOut) => {
                return Err(Ending::Refused("no frame in time; detaching".into()));
            }
            Err(error) => return Err(Ending::Lost(error.to_string())),
        };
        let frame = HostFrame::decode(bytes.as_slice())
            .map_err(|_| Ending::Refused("a frame that is not a HostFrame".into()))?;
        frame
            .kind
            .ok_or_else(|| Ending::Refused("an empty frame".into()))
    }

    fn write(&mut self, kind: enclave_frame::Kind) -> Step<()> {
        let frame = EnclaveFrame { kind: Some(kind) };
        frame::write_frame(&mut self.writer, &frame, ENCLAVE_FRAME_BYTES_MAX)
            .map_err(|error| Ending::Lost(error.to_string()))
    }

    fn flush(&mut self) -> Step<()> {
        self.writer
            .flush()
            .map_err(|error| Ending::Lost(error.to_string()))
    }

    /// Logs how the session ended; a refused host is told why before the connection closes.
    fn end(mut self, ending: Ending) {
        match ending {
            Ending::HostLeft => tracing::info!("host detached"),
            Ending::Lost(reason) => tracing::warn!(%reason, "host connection lost"),
            Ending::Refused(reason) => {
                tracing::warn!(%reason, "host refused");
                let refused = Refused {
                    reason: frame::bounded_reason(&reason),
                };
                // Best effort: the host may be gone already.
                let _ = self.write(enclave_frame::Kind::Refused(refused));
                let _ = self.flush();
            }
        }
        let _ = self.writer.get_ref().shutdown(std::net::Shutdown::Both);
    }
}

/// The requested config and the raw `InitConfig`, once the `Attach` is known to be sound.
fn validate_attach(attach: Attach) -> Step<(EnclaveConfig, Vec<u8>)> {
    if attach.protocol_version != PROTOCOL_VERSION {
        return Err(Ending::Refused(format!(
            "protocol version {} is not supported; this enclave speaks {PROTOCOL_VERSION}",
            attach.protocol_version
        )));
    }
    if attach.init_config.len() > INIT_CONFIG_BYTES_MAX {
        return Err(Ending::Refused(format!(
            "init config of {} bytes exceeds {INIT_CONFIG_BYTES_MAX}",
            attach.init_config.len()
        )));
    }
    let init = InitConfig::decode(attach.init_config.as_slice())
        .map_err(|_| Ending::Refused("the init config is not a valid InitConfig".into()))?;
    Ok((init.config.unwrap_or_default(), attach.init_config))
}

/// Accepts a reattach if the host brings the config the core was created with; returns the
/// new host's first request id.
fn reattach(core: &mut Core, requested: &EnclaveConfig) -> Step<u64> {
    if *requested != core.config {
        return Err(Ending::Refused(format!(
            "this enclave is already running with a different config ({}; this host asks for \
             {}): start the host with the same settings, or restart the enclave process, which \
             loses its state",
            describe(&core.config),
            describe(requested)
        )));
    }
    if core.attaches >= ATTACHES_MAX {
        return Err(Ending::Refused(
            "this enclave has had too many hosts; restart it".into(),
        ));
    }
    let first_request_id = core.attaches * REQUEST_IDS_PER_ATTACH + 1;
    core.attaches += 1;
    Ok(first_request_id)
}

fn describe(config: &EnclaveConfig) -> String {
    format!(
        "log level {:?}, client sessions max {}, pending requests max {}",
        config.log_level(),
        config.client_sessions_max,
        config.pending_requests_max
    )
}
