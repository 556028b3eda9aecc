//! The dispatcher: owns the enclave on one dedicated thread and turns its byte door into
//! async calls.
//!
//! ```text
//!  tasks ──call(inner)──▶ pending[request_id] = oneshot ─┐
//!        ──Job::Call────▶ bounded queue ──▶ enclave thread: door.exchange(batch): handle()
//!                                             each, then poll_message() until None ──▶ route
//!                                             by request_id
//!  tasks ◀──────────────── oneshot ◀───────────────────────────────────────┘
//! ```
//!
//! Peer traffic goes both ways through here too: the enclave's `PeerMessage`s go to the
//! attached [`PeerTransport`] (dropped and counted while none is attached), and the
//! transport's events come back as `PeerMessage` / `ResetPeer` ([`Dispatcher::peer_message`],
//! [`Dispatcher::reset_peer`]).
//!
//! Every bound is explicit: the queue (`enclave_queue_messages_max`), the batch
//! (`enclave_batch_messages_max`) and the pending table (`pending_calls_max`, "busy" when
//! full). A caller that gives up (timeout, or its task is dropped) removes its own entry, so
//! a late answer is counted as an orphan and dropped.

mod calls;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use cloister_proto::enclave::{
    HostToEnclaveRequest, PeerMessage, ResetPeer, TimerTick, UntrustedMessage,
    host_to_enclave_request, host_to_enclave_response, untrusted_message,
};
use prost::Message;
use tokio::sync::{mpsc, oneshot, watch};

use crate::door::EnclaveDoor;
use crate::error::HostError;
use crate::metrics::{Counter, HostMetrics};
use crate::peer::{PeerId, PeerTransport};

type Reply = Result<host_to_enclave_response::Inner, HostError>;

/// The dispatcher's bounds.
#[derive(Debug, Clone, Copy)]
pub struct DispatcherSettings {
    /// Messages queued for the enclave thread at most.
    pub queue_messages_max: usize,
    /// Messages handled before the thread drains the enclave's output.
    pub batch_messages_max: usize,
    /// Calls waiting for an answer at most.
    pub pending_calls_max: usize,
    /// How long a call waits for its answer.
    pub call_timeout: Duration,
}

enum Job {
    Call {
        request_id: u64,
        bytes: Vec<u8>,
    },
    /// A message with no answer (a tick, a peer's message, a reset); `kind` names it in logs.
    Notice {
        bytes: Vec<u8>,
        kind: &'static str,
    },
    Stop,
}

struct Shared {
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    metrics: Arc<HostMetrics>,
    peer_transport: OnceLock<PeerTransport>,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, HashMap<u64, oneshot::Sender<Reply>>> {
        // A panic while holding the lock leaves the map itself consistent.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands `reply` to whoever waits for `request_id`; false if nobody does.
    fn complete(&self, request_id: u64, reply: Reply) -> bool {
        let waiter = {
            let mut pending = self.pending();
            let waiter = pending.remove(&request_id);
            self.metrics.set_pending_calls(pending.len());
            waiter
        };
        match waiter {
            Some(waiter) => waiter.send(reply).is_ok(),
            None => false,
        }
    }
}

/// A cheap, cloneable handle for calling the enclave.
#[derive(Clone)]
pub struct Dispatcher {
    jobs: mpsc::Sender<Job>,
    shared: Arc<Shared>,
    next_request_id: Arc<AtomicU64>,
    settings: DispatcherSettings,
    stopped: watch::Receiver<()>,
}

/// The enclave thread itself; stop it with [`DispatcherThread::stop`].
pub struct DispatcherThread {
    jobs: mpsc::Sender<Job>,
    thread: std::thread::JoinHandle<()>,
}

/// Removes a call's pending entry when the call ends for any reason, including its task
/// being dropped mid-await.
struct PendingGuard<'a> {
    shared: &'a Shared,
    request_id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let mut pending = self.shared.pending();
        pending.remove(&self.request_id);
        self.shared.metrics.set_pending_calls(pending.len());
    }
}

/// Starts the enclave thread and returns the handle to call it and the thread to stop.
pub fn spawn<D: EnclaveDoor>(
    door: D,
    settings: DispatcherSettings,
    metrics: Arc<HostMetrics>,
) -> Result<(Dispatcher, DispatcherThread), HostError> {
    assert!(settings.queue_messages_max >= 1 && settings.batch_messages_max >= 1);
    let (jobs, receiver) = mpsc::channel(settings.queue_messages_max);
    let (stopped_sender, stopped) = watch::channel(());
    let first_request_id = door.first_request_id();
    let shared = Arc::new(Shared {
        pending: Mutex::new(HashMap::new()),
        metrics,
        peer_transport: OnceLock::new(),
    });
    let worker = worker::Worker::new(door, receiver, shared.clone(), settings, stopped_sender);
    let thread = std::thread::Builder::new()
        .name("cloister-enclave".to_owned())
        .spawn(move || worker.run())
        .map_err(|source| HostError::Io {
            context: "spawning the enclave thread".into(),
            source,
        })?;
    let dispatcher = Dispatcher {
        jobs: jobs.clone(),
        shared,
        next_request_id: Arc::new(AtomicU64::new(first_request_id)),
        settings,
        stopped,
    };
    Ok((dispatcher, DispatcherThread { jobs, thread }))
}

impl Dispatcher {
    /// Sends one host-to-enclave request and waits for its answer. An enclave `Error` reply
    /// becomes [`HostError::Enclave`].
    pub async fn call(
        &self,
        inner: host_to_enclave_request::Inner,
    ) -> Result<host_to_enclave_response::Inner, HostError> {
        let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        {
            let mut pending = self.shared.pending();
            if pending.len() >= self.settings.pending_calls_max {
                self.shared.metrics.increment(Counter::EnclaveBusy);
                return Err(HostError::Busy("too many calls waiting for the enclave"));
            }
            pending.insert(request_id, sender);
            self.shared.metrics.set_pending_calls(pending.len());
        }
        let _guard = PendingGuard {
            shared: &self.shared,
            request_id,
        };
        let request = HostToEnclaveRequest {
            request_id,
            inner: Some(inner),
        };
        let message = UntrustedMessage {
            inner: Some(untrusted_message::Inner::H2eRequest(request)),
        };
        let job = Job::Call {
            request_id,
            bytes: message.encode_to_vec(),
        };
        let exchange = async {
            self.jobs
                .send(job)
                .await
                .map_err(|_| HostError::EnclaveStopped)?;
            self.shared.metrics.increment(Counter::EnclaveCalls);
            receiver.await.map_err(|_| HostError::EnclaveStopped)?
        };
        let reply = match tokio::time::timeout(self.settings.call_timeout, exchange).await {
            Ok(reply) => reply,
            Err(_) => {
                self.shared.metrics.increment(Counter::EnclaveTimeouts);
                Err(HostError::EnclaveTimeout(self.settings.call_timeout))
            }
        };
        if let Err(HostError::Enclave { .. }) = &reply {
            self.shared.metrics.increment(Counter::EnclaveErrors);
        }
        reply
    }

    /// Tells the enclave the host's time. Waits for room in the queue, not for the enclave.
    pub async fn tick(&self, now_unix_secs: u64) -> Result<(), HostError> {
        let tick = TimerTick {
            new_timestamp_unix_secs: now_unix_secs,
        };
        let tick = untrusted_message::Inner::TimerTick(tick);
        self.notice(tick, "timer tick").await?;
        self.shared.metrics.increment(Counter::Ticks);
        Ok(())
    }

    /// Hands the enclave a message from the enclave `peer_id`. Waits for room in the queue,
    /// which pushes back on the peer transport when the enclave falls behind.
    pub async fn peer_message(&self, peer_id: PeerId, data: Vec<u8>) -> Result<(), HostError> {
        let message = PeerMessage {
            peer_id: peer_id.as_bytes().to_vec(),
            data,
        };
        let message = untrusted_message::Inner::PeerMessage(message);
        self.notice(message, "peer message").await
    }

    /// Tells the enclave that messages to or from `peer_id` were lost, so its channel with
    /// that peer must start over.
    pub async fn reset_peer(&self, peer_id: PeerId) -> Result<(), HostError> {
        let reset = ResetPeer {
            peer_id: peer_id.as_bytes().to_vec(),
        };
        self.notice(untrusted_message::Inner::ResetPeer(reset), "peer reset")
            .await
    }

    async fn notice(
        &self,
        inner: untrusted_message::Inner,
        kind: &'static str,
    ) -> Result<(), HostError> {
        let message = UntrustedMessage { inner: Some(inner) };
        let job = Job::Notice {
            bytes: message.encode_to_vec(),
            kind,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| HostError::EnclaveStopped)
    }

    /// The attached peer transport, if this node talks to peers.
    pub fn peer_transport(&self) -> Option<&PeerTransport> {
        self.shared.peer_transport.get()
    }

    /// Routes the enclave's peer messages to `transport` from now on. Only the first
    /// transport attached is used; false if one already was.
    pub fn attach_peer_transport(&self, transport: PeerTransport) -> bool {
        self.shared.peer_transport.set(transport).is_ok()
    }

    /// Calls waiting for an answer now.
    pub fn pending_calls(&self) -> usize {
        self.shared.pending().len()
    }

    /// Resolves once the enclave thread has ended (stopped, or died).
    pub async fn stopped(&self) {
        let mut stopped = self.stopped.clone();
        while stopped.changed().await.is_ok() {}
    }

    /// The host metrics this dispatcher counts into.
    pub fn metrics(&self) -> &Arc<HostMetrics> {
        &self.shared.metrics
    }
}

impl DispatcherThread {
    /// Asks the thread to stop after the work already queued, and waits for it. Calls still
    /// waiting then fail with [`HostError::EnclaveStopped`].
    pub async fn stop(self) -> Result<(), HostError> {
        // If the thread already ended, the queue is closed and there is nobody to tell.
        let _ = self.jobs.send(Job::Stop).await;
        let joined = tokio::task::spawn_blocking(move || self.thread.join()).await;
        match joined {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(HostError::EnclavePanicked),
        }
    }

    /// True once the thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

#[cfg(test)]
mod tests;
