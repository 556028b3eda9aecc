//! The enclave thread: hand a batch to the door (handle each, then drain), route the
//! answers.

use std::sync::Arc;

use cloister_proto::enclave::{
    EnclaveLogLevel, EnclaveMessage, LogRecord, PeerMessage, enclave_message,
    host_to_enclave_response,
};
use prost::Message;
use tokio::sync::{mpsc, watch};

use super::{DispatcherSettings, Job, Shared};
use crate::door::{DoorError, EnclaveDoor};
use crate::error::HostError;
use crate::metrics::Counter;
use crate::peer::SendRefusal;

/// Messages drained from the enclave per batch at most. Whatever is left is drained after
/// the next batch (a tick arrives every second), so a runaway core cannot starve the queue.
const DRAIN_MESSAGES_MAX: usize = 1 << 16;

pub(super) struct Worker<D> {
    door: D,
    jobs: mpsc::Receiver<Job>,
    shared: Arc<Shared>,
    settings: DispatcherSettings,
    // Dropped when the worker ends, even by panic, which wakes `Dispatcher::stopped`.
    _stopped: watch::Sender<()>,
}

impl<D: EnclaveDoor> Worker<D> {
    pub(super) fn new(
        door: D,
        jobs: mpsc::Receiver<Job>,
        shared: Arc<Shared>,
        settings: DispatcherSettings,
        stopped: watch::Sender<()>,
    ) -> Self {
        Worker {
            door,
            jobs,
            shared,
            settings,
            _stopped: stopped,
        }
    }

    pub(super) fn run(mut self) {
        tracing::debug!("enclave thread started");
        while let Some(first) = self.jobs.blocking_recv() {
            let mut batch = Batch::default();
            let mut stop = batch.push(first);
            while !stop && batch.messages.len() < self.settings.batch_messages_max {
                match self.jobs.try_recv() {
                    Ok(job) => stop = batch.push(job),
                    Err(_) => break,
                }
            }
            if let Err(error) = self.exchange(batch) {
                // The enclave is out of reach (another process that died, hung or broke the
                // protocol): stopping fails every waiting call and ends the node.
                tracing::error!(%error, "the enclave door failed; stopping");
                break;
            }
            if stop {
                break;
            }
        }
        tracing::debug!("enclave thread stopping");
    }

    /// Feeds the batch to the enclave, routes what it emits, and fails the calls it refused.
    fn exchange(&mut self, batch: Batch) -> Result<(), DoorError> {
        let shared = &*self.shared;
        let exchanged = self
            .door
            .exchange(&batch.messages, DRAIN_MESSAGES_MAX, &mut |bytes| {
                route_bytes(shared, bytes);
            })?;
        for (origin, refusal) in batch.origins.into_iter().zip(exchanged.refusals) {
            let Some(reason) = refusal else { continue };
            self.shared.metrics.increment(Counter::EnclaveHandleErrors);
            match origin {
                Origin::Call { request_id } => {
                    tracing::warn!(request_id, %reason, "enclave refused a request");
                    self.shared
                        .complete(request_id, Err(HostError::EnclaveRejected(reason)));
                }
                Origin::Notice { kind } => {
                    tracing::warn!(%reason, kind, "enclave refused a message");
                }
            }
        }
        if !exchanged.drained {
            tracing::warn!(
                DRAIN_MESSAGES_MAX,
                "enclave output not drained in one batch"
            );
        }
        Ok(())
    }
}

/// Who waits on one message of a batch.
enum Origin {
    Call { request_id: u64 },
    Notice { kind: &'static str },
}

/// The messages of one batch, and who sent each.
#[derive(Default)]
struct Batch {
    messages: Vec<Vec<u8>>,
    origins: Vec<Origin>,
}

impl Batch {
    /// Adds a job's message; true if the job asks the thread to stop.
    fn push(&mut self, job: Job) -> bool {
        let (bytes, origin) = match job {
            Job::Call { request_id, bytes } => (bytes, Origin::Call { request_id }),
            Job::Notice { bytes, kind } => (bytes, Origin::Notice { kind }),
            Job::Stop => return true,
        };
        self.messages.push(bytes);
        self.origins.push(origin);
        false
    }
}

/// Decodes one enclave output and routes it.
fn route_bytes(shared: &Shared, bytes: Vec<u8>) {
    shared.metrics.increment(Counter::EnclaveMessagesOut);
    match EnclaveMessage::decode(bytes.as_slice()) {
        Ok(message) => route(shared, message),
        Err(error) => tracing::error!(%error, "enclave emitted a message that does not decode"),
    }
}

fn route(shared: &Shared, message: EnclaveMessage) {
    match message.inner {
        Some(enclave_message::Inner::H2eResponse(response)) => {
            let reply = match response.inner {
                Some(host_to_enclave_response::Inner::Error(error)) => {
                    Err(HostError::from_enclave(error))
                }
                Some(inner) => Ok(inner),
                None => Err(HostError::UnexpectedReply("empty response")),
            };
            if !shared.complete(response.request_id, reply) {
                shared.metrics.increment(Counter::EnclaveOrphanResponses);
                tracing::debug!(
                    request_id = response.request_id,
                    "nobody waits for this answer"
                );
            }
        }
        Some(enclave_message::Inner::PeerMessage(message)) => on_peer_message(shared, message),
        Some(enclave_message::Inner::Log(record)) => {
            shared.metrics.increment(Counter::EnclaveLogRecords);
            emit_log(&record);
        }
        None => tracing::warn!("enclave emitted an empty message"),
    }
}

/// Hands one outbound peer message to the transport, which never blocks this thread.
fn on_peer_message(shared: &Shared, message: PeerMessage) {
    let Some(transport) = shared.peer_transport.get() else {
        shared
            .metrics
            .increment(Counter::EnclavePeerMessagesDropped);
        let peer_id = hex::encode(&message.peer_id);
        tracing::debug!(%peer_id, "no peer transport; peer message dropped");
        return;
    };
    let peer_id = hex::encode(&message.peer_id);
    match transport.send(&message.peer_id, message.data) {
        Ok(()) => {}
        // Counted by the transport, which also tells the enclave to reset the peer.
        Err(refusal @ (SendRefusal::BufferFull { .. } | SendRefusal::PeersFull)) => {
            tracing::debug!(%peer_id, %refusal, "peer message refused");
        }
        Err(SendRefusal::ShuttingDown) => {}
        Err(refusal) => tracing::warn!(%peer_id, %refusal, "enclave peer message refused"),
    }
}

impl<D> Drop for Worker<D> {
    fn drop(&mut self) {
        // Fail every waiting call now rather than at its timeout: dropping the senders wakes
        // the callers with `EnclaveStopped`.
        let mut pending = self.shared.pending();
        pending.clear();
        self.shared.metrics.set_pending_calls(0);
    }
}

/// An enclave log record as a tracing event at the matching level. The core promises its
/// records carry no secrets; the host adds none.
fn emit_log(record: &LogRecord) {
    let message = record.message.as_str();
    let level = EnclaveLogLevel::try_from(record.level).unwrap_or(EnclaveLogLevel::Info);
    match level {
        EnclaveLogLevel::Fatal | EnclaveLogLevel::Error => {
            tracing::error!(target: "cloister_enclave", "{message}");
        }
        EnclaveLogLevel::Warning => tracing::warn!(target: "cloister_enclave", "{message}"),
        EnclaveLogLevel::Info | EnclaveLogLevel::Unset => {
            tracing::info!(target: "cloister_enclave", "{message}");
        }
        EnclaveLogLevel::Verbose => tracing::debug!(target: "cloister_enclave", "{message}"),
        EnclaveLogLevel::Max => tracing::trace!(target: "cloister_enclave", "{message}"),
        EnclaveLogLevel::None => {}
    }
}
