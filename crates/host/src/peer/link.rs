//! One admitted link: a reader and a writer over one TCP connection, until it fails or
//! another connection replaces it.
//!
//! ```text
//!  admit (probe.rs): no link ─▶ up · a link ─▶ Ping{probe} on it: Pong ─▶ refuse,
//!                   silence or its end ─▶ replace it
//!  open:  clamp the window to the remote's Hello.sent_through; ack_owed = delivered
//!  reader: Data{seq} ─▶ receive window (per peer, async lock) ─▶ PeerEvent::Message
//!                        └─ ack_owed = delivered ─▶ wake the writer if it must act
//!          Ack{seq}, Data{ack} ─▶ queue releases frames ≤ seq (the link's first: frames
//!                       released beyond it were lost ─▶ ResetPeer)
//!          Ping{probe ≠ 0} ─▶ pong_owed · Pong{probe} ─▶ wake the prober
//!  writer: Ack{ack_owed} first, then as `ack.rs` plans: carried by the round's first Data,
//!          or alone once due; Pong, Ping{probe} when owed; Data after `cursor` (all unacked
//!          frames on a new link, so a reconnect resends them in order); Ping when idle for
//!          ping_interval
//! ```
//!
//! Either half ending ends the link; the peer's dialer is woken to redial if frames wait.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cloister_proto::transport::{Ack, Data, Ping, Pong, transport_frame::Kind};
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Mutex as AsyncMutex;
use tokio::time::{Instant, MissedTickBehavior, sleep_until, timeout};

use super::ack::{self, AckPlan, AckSchedule};
use super::handshake::Established;
use super::inner::Inner;
use super::queue::{ReceiveWindow, Verdict};
use super::state::{Admitted, LinkControl};
use super::wire::{self, FRAME_BYTES_MAX, Frame};
use super::{PeerError, PeerEvent, PeerId, probe};
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
    let Some(admitted) = probe::admit(&inner, &hello, dialed_by_local, remote_addr).await else {
        return false;
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
    {
        // Numbers beyond what the remote says it sent were delivered from a connection that
        // only claimed its id: take them back, or its real frames would be duplicates.
        let mut window = link.receive.lock().await;
        let undone = window.clamp(link.incarnation, hello.sent_through);
        if undone > 0 {
            tracing::warn!(%peer_id, undone, "took back numbers the peer never sent");
        }
        // Tell the remote at once what it need not resend.
        let delivered = window.delivered(link.incarnation);
        link.control.ack_owed.store(delivered, Ordering::Relaxed);
    }
    let ended = tokio::select! {
        result = link.read_loop(reader) => reason(result),
        result = link.write_loop(writer) => reason(result),
        () = admitted.control.close.notified() => PeerError::Superseded,
    };
    link.control.ended.store(true, Ordering::SeqCst);
    link.control.probe_event.notify_one();
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
        let mut resumed = false;
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
                Frame::Data { seq, bytes, ack } => {
                    if ack != 0 {
                        self.on_ack(ack, !std::mem::replace(&mut resumed, true))?;
                    }
                    self.deliver(seq, bytes).await?;
                }
                Frame::Ack { seq } => self.on_ack(seq, !std::mem::replace(&mut resumed, true))?,
                Frame::Ping { probe: 0 } => {}
                Frame::Ping { probe } => {
                    self.control.pong_owed.store(probe, Ordering::SeqCst);
                    self.control.wake.notify_one();
                }
                Frame::Pong { probe } => {
                    self.control.probe_answered.store(probe, Ordering::SeqCst);
                    self.control.probe_event.notify_one();
                }
                Frame::Hello(_) => return Err(PeerError::Violation("a second Hello".to_owned())),
            }
        }
    }

    /// Hands `seq` to the enclave unless it was already delivered, then owes an ack (the
    /// writer is woken only when it must act: see `ack::wake_writer`). The receive window
    /// stays locked until the event is queued, so no other link to the same peer can deliver
    /// in between; a cancelled send leaves the window as it was.
    async fn deliver(&self, seq: u64, bytes: Vec<u8>) -> Result<(), PeerError> {
        let length = bytes.len() as u64;
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
        let control = &self.control;
        let delivered = window.delivered(self.incarnation);
        control.ack_owed.store(delivered, Ordering::SeqCst);
        let pending_bytes = control
            .ack_pending_bytes
            .fetch_add(length, Ordering::SeqCst);
        let pending_frames = delivered.saturating_sub(control.ack_told.load(Ordering::SeqCst));
        let waiting = control.ack_waiting.load(Ordering::SeqCst);
        if ack::wake_writer(waiting, pending_frames, pending_bytes + length) {
            control.wake.notify_one();
        }
        Ok(())
    }

    /// Releases acknowledged frames. The link's `first` Ack says where the remote's window
    /// stood when the link opened: frames released beyond it never got there (a connection
    /// that only claimed the peer's id acknowledged them), so the enclave is owed a reset.
    fn on_ack(&self, seq: u64, first: bool) -> Result<(), PeerError> {
        let mut state = self.inner.state();
        let peer = state
            .linked_peer(self.peer_id, self.id)
            .ok_or(PeerError::Superseded)?;
        if !first {
            peer.queue.ack(seq).map_err(PeerError::Violation)?;
            return Ok(());
        }
        let lost = peer.queue.resume(seq).map_err(PeerError::Violation)?;
        if lost > 0 {
            state.owe_reset(self.peer_id);
            drop(state);
            self.inner.metrics.add(Counter::PeerFramesDropped, lost);
            self.inner.resets_owed();
            let peer_id = self.peer_id;
            tracing::warn!(%peer_id, lost, "frames acknowledged earlier never reached the peer");
        }
        Ok(())
    }

    async fn write_loop(&self, writer: OwnedWriteHalf) -> Result<Infallible, PeerError> {
        let mut writer = BufWriter::new(writer);
        let mut cursor = 0;
        let mut acks = AckSchedule::new(self.inner.settings.ack_delay);
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
            let plan = self.plan_acks(&mut acks, !batch.frames.is_empty());
            let mut frames = Vec::with_capacity(batch.frames.len() + 3);
            let mut carried = 0;
            match plan {
                AckPlan::Standalone(seq) => frames.push(wire::encode(Kind::Ack(Ack { seq }))),
                AckPlan::Piggyback(seq) => carried = seq,
                AckPlan::Nothing | AckPlan::Wait(_) => {}
            }
            let pong = self.control.pong_owed.swap(0, Ordering::SeqCst);
            if pong != 0 {
                frames.push(wire::encode(Kind::Pong(Pong { probe: pong })));
            }
            let probe = self.control.probe_owed.swap(0, Ordering::SeqCst);
            if probe != 0 {
                frames.push(wire::encode(Kind::Ping(Ping { probe })));
            }
            for (seq, payload) in &batch.frames {
                let data = Data {
                    seq: *seq,
                    bytes: payload.to_vec(),
                    // The first Data frame carries the acknowledgement; one is enough.
                    ack: std::mem::take(&mut carried),
                };
                frames.push(wire::encode(Kind::Data(data)));
                cursor = *seq;
            }
            if frames.is_empty() {
                let ack_due = match plan {
                    AckPlan::Wait(due) => Some(due),
                    _ => None,
                };
                // The first tick is immediate, but a new link's first round always writes
                // its Ack: either tells the remote this side kept the link.
                tokio::select! {
                    () = self.control.wake.notified() => continue,
                    () = sleep_until(ack_due.unwrap_or_else(Instant::now)), if ack_due.is_some() => {
                        continue
                    }
                    _ = ping.tick() => frames.push(wire::encode(Kind::Ping(Ping { probe: 0 }))),
                }
            }
            write_frames(self.inner, &mut writer, &frames).await?;
            ping.reset();
        }
    }

    /// This round's acknowledgement plan, published to the reader: what was told, and
    /// whether the writer will sleep on a deadline (then the reader need not wake it).
    fn plan_acks(&self, acks: &mut AckSchedule, data: bool) -> AckPlan {
        let control = &self.control;
        let delivered = control.ack_owed.load(Ordering::SeqCst);
        let pending_bytes = control.ack_pending_bytes.load(Ordering::SeqCst);
        let plan = acks.plan(delivered, pending_bytes, data, Instant::now());
        if let AckPlan::Standalone(seq) | AckPlan::Piggyback(seq) = plan {
            control.ack_pending_bytes.store(0, Ordering::SeqCst);
            control.ack_told.store(seq, Ordering::SeqCst);
        }
        let waiting = matches!(plan, AckPlan::Wait(_));
        control.ack_waiting.store(waiting, Ordering::SeqCst);
        plan
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
