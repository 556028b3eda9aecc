//! Before a connection may replace a peer's link, that link is probed: a `Ping` with a
//! probe number, which the remote answers with a `Pong` at once. An answer means whoever
//! holds the link is alive, so the newcomer (which only claims the peer's id) is refused.
//!
//! ```text
//!  newcomer claims P ─▶ State::admit ─▶ Probe{L} ─▶ L.probe_owed = n, wake L's writer
//!    L's reader gets Pong{n} ─▶ probe_answered = n ─▶ refuse the newcomer (L stays)
//!    L ends, or probe_timeout passes ─▶ State::admit(.., probed: Some(L)) ─▶ newcomer replaces L
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::time::{Instant, timeout_at};

use super::inner::Inner;
use super::state::{Admission, Admitted, LinkControl};
use super::wire::Hello;

/// Asks the state to admit the connection; if the peer has a link, probes that link first
/// and refuses the connection if it answers (see `state/admission.rs`).
pub async fn admit(
    inner: &Arc<Inner>,
    hello: &Hello,
    dialed_by_local: bool,
    remote_addr: SocketAddr,
) -> Option<Admitted> {
    let peer_id = hello.peer_id;
    let mut probed = None;
    loop {
        let admission = inner
            .state()
            .admit(peer_id, dialed_by_local, hello.incarnation, probed);
        inner.start_new_peers();
        let (link_id, probe, control) = match admission {
            Admission::Admitted(admitted) => return Some(admitted),
            Admission::Refused(reason) => {
                tracing::debug!(%peer_id, %remote_addr, reason, "peer connection not kept");
                return None;
            }
            Admission::Probe {
                link_id,
                probe,
                control,
            } => (link_id, probe, control),
        };
        let alive = probe_link(inner, &control, probe).await;
        inner.state().probe_finished(peer_id, probe);
        if alive {
            let incarnation = hello.incarnation;
            tracing::info!(
                %peer_id, %remote_addr, incarnation,
                "refused a connection claiming a peer whose link answered a probe"
            );
            return None;
        }
        probed = Some(link_id);
    }
}

/// Sends `probe` on the link `control` belongs to; true if the answer comes within
/// `probe_timeout`, false if the link ends or stays silent.
async fn probe_link(inner: &Inner, control: &LinkControl, probe: u64) -> bool {
    control.probe_owed.store(probe, Ordering::SeqCst);
    control.wake.notify_one();
    let deadline = Instant::now() + inner.settings.probe_timeout;
    loop {
        if control.probe_answered.load(Ordering::SeqCst) == probe {
            return true;
        }
        if control.ended.load(Ordering::SeqCst) {
            return false;
        }
        // One prober per link at a time, so a stored permit is never someone else's.
        if timeout_at(deadline, control.probe_event.notified())
            .await
            .is_err()
        {
            return control.probe_answered.load(Ordering::SeqCst) == probe;
        }
    }
}
