//! The enclave thread: handle a batch, drain the output, route the answers.

use std::sync::Arc;

use cloister_proto::enclave::{
    EnclaveLogLevel, EnclaveMessage, LogRecord, PeerMessage, enclave_message,
    host_to_enclave_response,
};
use prost::Message;
use tokio::sync::{mpsc, watch};

use super::{DispatcherSettings, Job, Shared};
use crate::door::EnclaveDoor;
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
            let mut stop = self.handle_job(first);
            let mut handled = 1;
            while !stop && handled < self.settings.batch_messages_max {
                match self.jobs.try_recv() {
                    Ok(job) => stop = self.handle_job(job),
                    Err(_) => break,
                }
                handled += 1;
            }
            self.drain();
            if stop {
                break;
            }
        }
        tracing::debug!("enclave thread stopping");
    }

    /// Feeds one job to the enclave; true if the job asks the thread to stop.
    fn handle_job(&mut self, job: Job) -> bool {
        match job {
            Job::Call { request_id, bytes } => {
                if let Err(reason) = self.door.handle(&bytes) {
                    self.shared.metrics.increment(Counter::EnclaveHandleErrors);
                    tracing::warn!(request_id, %reason, "enclave refused a request");
                    self.shared
                        .complete(request_id, Err(HostError::EnclaveRejected(reason)));
                }
                false
            }
            Job::Notice { bytes, kind } => {
                if let Err(reason) = self.door.handle(&bytes) {
                    self.shared.metrics.increment(Counter::EnclaveHandleErrors);
                    tracing::warn!(%reason, kind, "enclave refused a message");
                }
                false
            }
            Job::Stop => true,
        }
    }

    fn drain(&mut self) {
        for _ in 0..DRAIN_MESSAGES_MAX {
            let Some(bytes) = self.door.poll_message() else {
                return;
            };
            self.shared.metrics.increment(Counter::EnclaveMessagesOut);
            match EnclaveMessage::decode(bytes.as_slice()) {
                Ok(message) => self.route(message),
                Err(error) => {
                    tracing::error!(%error, "enclave emitted a message that does not decode")
                }
            }
        }
        tracing::warn!(
            DRAIN_MESSAGES_MAX,
            "enclave output not drained in one batch"
        );
    }

    fn route(&mut self, message: EnclaveMessage) {
        match message.inner {
            Some(enclave_message::Inner::H2eResponse(response)) => {
                let reply = match response.inner {
                    Some(host_to_enclave_response::Inner::Error(error)) => {
                        Err(HostError::from_enclave(error))
                    }
                    Some(inner) => Ok(inner),
                    None => Err(HostError::UnexpectedReply("empty response")),
                };
                if !self.shared.complete(response.request_id, reply) {
                    self.shared
                        .metrics
                        .increment(Counter::EnclaveOrphanResponses);
                    tracing::debug!(
                        request_id = response.request_id,
                        "nobody waits for this answer"
                    );
                }
            }
            Some(enclave_message::Inner::PeerMessage(message)) => self.on_peer_message(message),
            Some(enclave_message::Inner::Log(record)) => {
                self.shared.metrics.increment(Counter::EnclaveLogRecords);
                emit_log(&record);
            }
            None => tracing::warn!("enclave emitted an empty message"),
        }
    }
}

impl<D> Worker<D> {
    /// Hands one outbound peer message to the transport, which never blocks this thread.
    fn on_peer_message(&self, message: PeerMessage) {
        let Some(transport) = self.shared.peer_transport.get() else {
            self.shared
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
