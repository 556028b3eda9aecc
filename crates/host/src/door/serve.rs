//! [`EnclaveServer`]: the enclave side of the door over a socket (`cloister enclave`).
//!
//! The core lives here, in this process's memory, for as long as the process runs. Hosts
//! come and go: one is attached at a time, and when it goes (it stopped, crashed, or broke
//! the protocol) the core waits, unchanged, for the next one to reattach.
//!
//! ```text
//!  accept loop (this thread) ──one host──▶ session thread: Attach, then Handle × n / Drain
//!        │  a second host meanwhile: Refused("another host is attached")
//!        └─ the core moves into the session thread and back out when the session ends
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use cloister_enclave::{Env, InsecureSimulatedEnv, PlatformError};
use rand::RngCore;
use socket2::Socket;

use super::address::Listener;
use super::session::{self, Core};
use super::{DoorError, EnclaveAddress};

/// How often the accept loop looks for a connection or a stop request.
const ACCEPT_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How long a new connection waits for a host that just left to finish detaching before it
/// is refused as a second host.
const DETACH_GRACE: Duration = Duration::from_millis(500);

/// Opens a real TEE's `Env` (`cloister-platform` does, for the CLI).
pub type OpenPlatform = dyn Fn() -> Result<Box<dyn Env>, PlatformError> + Send + Sync;

/// The TEE the enclave process runs on: where the core's randomness and its attestation
/// evidence come from.
#[derive(Clone)]
pub enum EnclaveBackend {
    /// No TEE: randomness from this machine's OS, evidence signed by the simulated platform
    /// key. Insecure, and says so in its evidence.
    InsecureSimulated,
    /// A real TEE called `name` (`sgx`, `tdx`, `sev-snp`, `nitro`); `open` makes the `Env`
    /// of the core created when the first host attaches.
    Platform {
        /// What the host is told.
        name: String,
        /// The platform's `Env`, or why the platform cannot give one.
        open: Arc<OpenPlatform>,
    },
}

impl std::fmt::Debug for EnclaveBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl EnclaveBackend {
    /// The name the host is told (`Attached.backend`).
    pub fn name(&self) -> &str {
        match self {
            EnclaveBackend::InsecureSimulated => "simulated",
            EnclaveBackend::Platform { name, .. } => name,
        }
    }

    /// A fresh `Env` for a core.
    pub(crate) fn env(&self) -> Result<Box<dyn Env>, PlatformError> {
        match self {
            EnclaveBackend::InsecureSimulated => {
                let mut seed = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut seed);
                Ok(Box::new(InsecureSimulatedEnv::from_seed(seed)))
            }
            EnclaveBackend::Platform { open, .. } => open(),
        }
    }
}

/// How long the enclave waits for a host.
#[derive(Debug, Clone, Copy)]
pub struct ServeSettings {
    /// From connecting to `Attach`.
    pub attach_timeout: Duration,
    /// Between frames of an attached host. A host ticks at least every 60 s (the bound on
    /// `HostConfig::tick_interval`), so silence this long means it is gone (a half-open
    /// connection): detach, and let another attach.
    pub idle_timeout: Duration,
    /// For one write to the host.
    pub write_timeout: Duration,
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            attach_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// Stops a running [`EnclaveServer`] (from another thread, or a signal handler task).
#[derive(Debug, Clone)]
pub struct ServerStop(Arc<AtomicBool>);

impl ServerStop {
    /// Asks the server to stop: it closes the attached host's connection and returns.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A bound enclave server; [`EnclaveServer::run`] serves until stopped.
pub struct EnclaveServer {
    listener: Listener,
    backend: EnclaveBackend,
    settings: ServeSettings,
    stop: ServerStop,
}

/// The attached host's session.
struct Attached {
    thread: JoinHandle<Option<Core>>,
    /// A handle on the session's connection, to close it when the server stops.
    socket: Socket,
}

impl EnclaveServer {
    /// Binds `address`. The core is created when the first host attaches.
    pub fn bind(
        address: &EnclaveAddress,
        backend: EnclaveBackend,
        settings: ServeSettings,
    ) -> Result<EnclaveServer, DoorError> {
        Ok(EnclaveServer {
            listener: Listener::bind(address)?,
            backend,
            settings,
            stop: ServerStop(Arc::new(AtomicBool::new(false))),
        })
    }

    /// Where it listens (a TCP port 0 resolved).
    pub fn address(&self) -> &EnclaveAddress {
        self.listener.address()
    }

    /// A handle that stops [`Self::run`].
    pub fn stopper(&self) -> ServerStop {
        self.stop.clone()
    }

    /// Serves hosts, one at a time, until stopped. Returns an error only if a session
    /// panicked (the core's state is then suspect, and this process should end).
    pub fn run(self) -> Result<(), DoorError> {
        let mut core: Option<Core> = None;
        let mut attached: Option<Attached> = None;
        tracing::info!(address = %self.address(), backend = self.backend.name(), "enclave listening");
        while !self.stop.0.load(Ordering::Relaxed) {
            if attached
                .as_ref()
                .is_some_and(|session| session.thread.is_finished())
            {
                core = reap(attached.take())?;
            }
            let socket = match self.listener.accept() {
                Ok(socket) => socket,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(ACCEPT_POLL_INTERVAL);
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, "accepting a host connection failed");
                    std::thread::sleep(ACCEPT_POLL_INTERVAL);
                    continue;
                }
            };
            if let Some(session) = attached.take() {
                if !finishes_within(&session.thread, DETACH_GRACE) {
                    attached = Some(session);
                    let settings = self.settings;
                    session::refuse(socket, "another host is attached to this enclave", settings);
                    continue;
                }
                core = reap(Some(session))?;
            }
            attached = self.start_session(socket, core.take(), &mut core);
        }
        if let Some(session) = &attached {
            let _ = session.socket.shutdown(std::net::Shutdown::Both);
        }
        reap(attached)?;
        tracing::info!("enclave server stopped");
        Ok(())
    }

    /// Hands the core to a new session thread. If the thread cannot start, the core goes
    /// back to `core_slot` and the connection is dropped.
    fn start_session(
        &self,
        socket: Socket,
        core: Option<Core>,
        core_slot: &mut Option<Core>,
    ) -> Option<Attached> {
        let handle = match socket.try_clone() {
            Ok(handle) => handle,
            Err(error) => {
                tracing::warn!(%error, "cloning a host connection failed; dropped");
                *core_slot = core;
                return None;
            }
        };
        let (backend, settings) = (self.backend.clone(), self.settings);
        // The core moves in and comes back out through the join; a failed spawn drops the
        // closure, and the core with it, so keep it outside until the spawn succeeded.
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Option<Core>>(1);
        let spawned = std::thread::Builder::new()
            .name("cloister-door-host".to_owned())
            .spawn(move || {
                let core = receiver.recv().ok().flatten();
                session::run(socket, core, backend, settings)
            });
        match spawned {
            Ok(thread) => {
                if let Err(returned) = sender.send(core) {
                    // Unreachable: the thread holds the receiver until it has received.
                    *core_slot = returned.0;
                }
                Some(Attached {
                    thread,
                    socket: handle,
                })
            }
            Err(error) => {
                tracing::warn!(%error, "starting a host session failed; connection dropped");
                *core_slot = core;
                None
            }
        }
    }
}

/// Waits up to `grace` for `thread` to finish; true if it did.
fn finishes_within(thread: &JoinHandle<Option<Core>>, grace: Duration) -> bool {
    let steps = (grace.as_millis() / 5).max(1);
    for _ in 0..steps {
        if thread.is_finished() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    thread.is_finished()
}

/// Joins a session and takes the core back.
fn reap(attached: Option<Attached>) -> Result<Option<Core>, DoorError> {
    let Some(session) = attached else {
        return Ok(None);
    };
    session
        .thread
        .join()
        .map_err(|_| DoorError::SessionPanicked)
}
