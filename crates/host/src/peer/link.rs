//! One admitted link: a reader and a writer over one TCP connection, until it fails or
//! another connection replaces it.
//!
//! ```text
//!  reader: Data{seq} ─▶ receive window (per peer, async lock) ─▶ PeerEvent::Message
//!                        └─ ack_owed = delivered ─▶ wake writer
//!          Ack{seq}  ─▶ queue releases frames ≤ seq
//!  writer: Ack{ack_owed} if it grew; Data after `cursor` (all unacked frames on a new link,
//!          so a reconnect resends them in order); Ping when idle for ping_interval
//! ```
//!
//! Either half ending ends the link; the peer's dialer is woken to redial if frames wait.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cloister_proto::transport::{Ack, Data, Ping, transport_frame::Kind};
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Mutex as AsyncMutex;
use tokio::time::{MissedTickBehavior, timeout};

use super::handshake::Established;
use super::inner::Inner;
use super::queue::{ReceiveWindow, Verdict};
use super::state::{Admitted, LinkControl};
use super::wire::{self, FRAME_BYTES_MAX, Frame};
use super::{PeerError, PeerEvent, PeerId};
use crate::metrics::Counter;

/// Bytes of Data the writer takes from the queue per round, so acknowledgements and pings
/// interleave with a long backlog.
const WRITE_BATCH_BYTES_MAX: usize = 256 * 1024;

struct Link<'a> {
    inner: &'a Inner,
    peer_id: PeerId,
    id: u64,
    incarnation: u64,
    control: Arc<LinkControl>,
    receive: Arc<AsyncMutex<ReceiveWindow>>,
    /// A frame came after the Hellos: the remote kept this link.
    heard: AtomicBool,
}

/// Admits `established` (or closes it, per the one-link rule) and runs it to its end.
/// Returns whether the remote kept the link (sent a frame after its Hello): a dialer that
/// gets `false` backs off, rather than redialing a peer that keeps refusing at full speed.
pub async fn run(inner: Arc<Inner>, established: Established) -> bool {
    let Established {
        hello,
        remote_addr,
        dialed_by_local,
        reader,
        writer,
    } = established;
    let peer_id = hello.peer_id;
    let admitted = inner
        .state()
        .admit(peer_id, dialed_by_local, hello.incarnation);
    inner.start_new_peers();
    let admitted = match admitted {
        Ok(admitted) => admitted,
        Err(reason) => {
            tracing::debug!(%peer_id, %remote_addr, reason, "peer connection not kept");
            return false;
        }
    };
    note_admission(&inner, peer_id, &admitted);
    tracing::info!(%peer_id, %remote_addr, dialed_by_local, "peer link up");
    let link = Link {
        inner: &inner,
        peer_id,
        id: admitted.id,
        incarnation: hello.incarnation,
        control: admitted.control.clone(),
        receive: admitted.receive.clone(),
        heard: AtomicBool::new(false),
    };
    // Tell the remote at once what it need not resend.
    let delivered = link.receive.lock().await.delivered(link.incarnation);
    link.control.ack_owed.store(delivered, Ordering::Relaxed);
    let ended = tokio::select! {
        result = link.read_loop(reader) => reason(result),
        result = link.write_loop(writer) => reason(result),
        () = admitted.control.close.notified() => PeerError::Superseded,
    };
    inner.state().release(peer_id, admitted.id);
    inner.count_connected();
    match ended {
        PeerError::Violation(_) => {
            inner.metrics.increment(Counter::PeerViolations);
            tracing::warn!(%peer_id, %remote_addr, error = %ended, "peer link dropped");
        }
        PeerError::Superseded | PeerError::ShuttingDown => {
            tracing::debug!(%peer_id, %remote_addr, reason = %ended, "peer link closed");
        }
        _ => tracing::info!(%peer_id, %remote_addr, reason = %ended, "peer link down"),
    }
    link.heard.load(Ordering::Relaxed)
}

fn note_admission(inner: &Inner, peer_id: PeerId, admitted: &Admitted) {
    if let Some(replaced) = &admitted.replaced {
        replaced.close.notify_one();
    }
    if admitted.reconnect {
        inner.metrics.increment(Counter::PeerReconnects);
    }
    if let Some(dropped) = admitted.restarted {
        inner
            .metrics
            .add(Counter::PeerFramesDropped, dropped as u64);
        inner.resets_owed();
        tracing::info!(%peer_id, dropped, "peer restarted (new incarnation)");
    }
    inner.count_connected();
}

fn reason(result: Result<Infallible, PeerError>) -> PeerError {
    match result {
        Ok(never) => match never {},
        Err(error) => error,
    }
}

impl Link<'_> {
    async fn read_loop(&self, reader: OwnedReadHalf) -> Result<Infallible, PeerError> {
        let mut reader = BufReader::new(reader);
        let idle_timeout = self.inner.settings.idle_timeout;
        loop {
            let read = wire::read_frame(&mut reader, FRAME_BYTES_MAX);
            let (frame, size) = timeout(idle_timeout, read)
                .await
                .map_err(|_| PeerError::Timeout("waiting for a frame"))??;
            self.inner.metrics.increment(Counter::PeerFramesIn);
            self.inner.metrics.add(Counter::PeerBytesIn, size as u64);
            if !self.heard.swap(true, Ordering::Relaxed) {
                // The remote kept this link (a refused one is closed without a frame).
                self.inner.state().mark_reachable(self.peer_id);
            }
            match frame {
                Frame::Data { seq, bytes } => self.deliver(seq, bytes).await?,
                Frame::Ack { seq } => self.on_ack(seq)?,
                Frame::Ping => {}
                Frame::Hello(_) => return Err(PeerError::Violation("a second Hello".to_owned())),
            }
        }
    }

    /// Hands `seq` to the enclave unless it was already delivered, then owes an ack. The
    /// receive window stays locked until the event is queued, so no other link to the same
    /// peer can deliver in between; a cancelled send leaves the window as it was.
    async fn deliver(&self, seq: u64, bytes: Vec<u8>) -> Result<(), PeerError> {
        let mut window = self.receive.lock().await;
        if !self.inner.state().is_current(self.peer_id, self.id) {
            return Err(PeerError::Superseded);
        }
        match window.classify(self.incarnation, seq) {
            Verdict::Duplicate => self.inner.metrics.increment(Counter::PeerDuplicates),
            Verdict::Deliver { skipped } => {
                if skipped > 0 {
                    tracing::debug!(peer_id = %self.peer_id, skipped, "the sender dropped frames");
                }
                let event = PeerEvent::Message {
                    peer_id: self.peer_id,
                    data: bytes,
                };
                let sent = self.inner.events.send(event).await;
                sent.map_err(|_| PeerError::ShuttingDown)?;
                window.record(seq);
                self.inner.metrics.increment(Counter::PeerMessagesDelivered);
            }
        }
        let delivered = window.delivered(self.incarnation);
        self.control.ack_owed.store(delivered, Ordering::Relaxed);
        self.control.wake.notify_one();
        Ok(())
    }

    fn on_ack(&self, seq: u64) -> Result<(), PeerError> {
        let mut state = self.inner.state();
        let peer = state
            .linked_peer(self.peer_id, self.id)
            .ok_or(PeerError::Superseded)?;
        peer.queue.ack(seq).map_err(PeerError::Violation)?;
        Ok(())
    }

    async fn write_loop(&self, writer: OwnedWriteHalf) -> Result<Infallible, PeerError> {
        let mut writer = BufWriter::new(writer);
        let (mut cursor, mut acked) = (0, 0);
        let mut ping = tokio::time::interval(self.inner.settings.ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let batch = {
                let mut state = self.inner.state();
                let peer = state
                    .linked_peer(self.peer_id, self.id)
                    .ok_or(PeerError::Superseded)?;
                peer.queue.take_batch(cursor, WRITE_BATCH_BYTES_MAX)
            };
            self.inner.metrics.add(Counter::PeerResends, batch.resends);
            let mut frames = Vec::with_capacity(batch.frames.len() + 1);
            let owed = self.control.ack_owed.load(Ordering::Relaxed);
            if owed > acked {
                frames.push(wire::encode(Kind::Ack(Ack { seq: owed })));
                acked = owed;
            }
            for (seq, payload) in &batch.frames {
                let data = Data {
                    seq: *seq,
                    bytes: payload.to_vec(),
                };
                frames.push(wire::encode(Kind::Data(data)));
                cursor = *seq;
            }
            if frames.is_empty() {
                // The first tick is immediate: a new link opens with a Ping, which tells the
                // remote this side kept it.
                tokio::select! {
                    () = self.control.wake.notified() => continue,
                    _ = ping.tick() => frames.push(wire::encode(Kind::Ping(Ping {}))),
                }
            }
            write_frames(self.inner, &mut writer, &frames).await?;
            ping.reset();
        }
    }
}

/// Writes and flushes `frames` (each already length-prefixed) within `idle_timeout`.
pub async fn write_frames<W: AsyncWriteExt + Unpin>(
    inner: &Inner,
    writer: &mut W,
    frames: &[Vec<u8>],
) -> Result<(), PeerError> {
    let write = async {
        for frame in frames {
            writer.write_all(frame).await?;
        }
        writer.flush().await
    };
    timeout(inner.settings.idle_timeout, write)
        .await
        .map_err(|_| PeerError::Timeout("writing"))?
        .map_err(|source| PeerError::Io {
            context: "writing".to_owned(),
            source,
        })?;
    let bytes: usize = frames.iter().map(Vec::len).sum();
    inner
        .metrics
        .add(Counter::PeerFramesOut, frames.len() as u64);
    inner.metrics.add(Counter::PeerBytesOut, bytes as u64);
    Ok(())
}
