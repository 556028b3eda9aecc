//! Dialing: one task per peer keeps a link up while frames wait for it, with exponential
//! backoff between attempts, and abandons the peer after `abandon_after`; one task resolves
//! the configured seed addresses into peer ids.
//!
//! ```text
//!            ┌──────── woken: a send, an address learned, a link lost ─────────┐
//!            ▼                                                                  │
//!  Idle ◀── link up, or nothing queued                                          │
//!  Dial(addr) ── Hello ok, remote kept it ──▶ run the link until it ends ──────┤
//!      └── failed or not kept ──▶ sleep backoff: initial·2ⁿ, capped, jittered ──┤
//!  NoAddress ──▶ wait until woken or backoff_max ───────────────────────────────┤
//!  Abandon (unreachable ≥ abandon_after) ──▶ drop queue, owe ResetPeer ─────────┘
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::inner::Inner;
use super::state::Step;
use super::{PeerError, PeerId, handshake, link};
use crate::metrics::Counter;

/// The delay before attempt `failures + 1`: `initial · 2^(failures-1)` capped at `max`, then
/// drawn uniformly from its upper half so that hosts restarted together spread out.
pub fn backoff(failures: u32, initial: Duration, max: Duration, rng: &mut impl Rng) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    let delay = initial.saturating_mul(1u32 << doublings).min(max);
    let half = delay / 2;
    half + half.mul_f64(rng.gen_range(0.0..=1.0))
}

/// Keeps `peer_id` linked while frames wait for it, until its state is gone.
pub async fn run_peer(inner: Arc<Inner>, peer_id: PeerId, wake: Arc<Notify>) {
    loop {
        let step = inner.state().next_step(peer_id, &wake, Instant::now());
        match step {
            Step::Exit => return,
            Step::Idle => wake.notified().await,
            Step::Abandon => inner.abandon(peer_id),
            Step::NoAddress(wait) => {
                tracing::debug!(%peer_id, "no address for a peer with frames waiting");
                let _ = tokio::time::timeout(wait, wake.notified()).await;
            }
            Step::Dial(addr) => {
                let failure = match handshake::dial(&inner, addr, Some(peer_id), false).await {
                    Ok(established) => {
                        if link::run(inner.clone(), established).await {
                            continue;
                        }
                        PeerError::Superseded
                    }
                    Err(error) => error,
                };
                inner.metrics.increment(Counter::PeerDialFailures);
                if matches!(failure, PeerError::Violation(_)) {
                    inner.metrics.increment(Counter::PeerViolations);
                }
                let failures = inner.state().dial_failed(peer_id);
                let settings = &inner.settings;
                let (initial, max) = (settings.backoff_initial, settings.backoff_max);
                let delay = backoff(failures, initial, max, &mut rand::thread_rng());
                tracing::debug!(%peer_id, %addr, %failure, failures, ?delay, "dial failed");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Resolves each seed address to a peer id by asking it (a discovery-only Hello), retrying
/// with backoff until every seed has answered once.
pub async fn resolve_seeds(inner: Arc<Inner>, seeds: Vec<SocketAddr>) {
    let mut pending = seeds;
    let mut failures = 0;
    while !pending.is_empty() {
        let mut still_pending = Vec::new();
        for addr in pending {
            match handshake::dial(&inner, addr, None, true).await {
                Ok(established) => {
                    let peer_id = established.hello.peer_id;
                    tracing::info!(%addr, %peer_id, "resolved a seed peer");
                }
                Err(PeerError::SelfConnection(_)) => {}
                Err(error) => {
                    tracing::debug!(%addr, %error, "seed peer not reachable yet");
                    still_pending.push(addr);
                }
            }
        }
        pending = still_pending;
        if !pending.is_empty() {
            failures += 1;
            let settings = &inner.settings;
            let (initial, max) = (settings.backoff_initial, settings.backoff_max);
            let delay = backoff(failures, initial, max, &mut rand::thread_rng());
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter_in_the_upper_half() {
        let (initial, max) = (Duration::from_millis(100), Duration::from_secs(10));
        let mut rng = rand::thread_rng();
        for (failures, full) in [(1, 100), (2, 200), (3, 400), (8, 10_000), (1_000, 10_000)] {
            for _ in 0..50 {
                let delay = backoff(failures, initial, max, &mut rng);
                let full = Duration::from_millis(full);
                assert!(delay >= full / 2 && delay <= full, "{failures}: {delay:?}");
            }
        }
        let first = backoff(0, initial, max, &mut rng);
        assert!(first >= initial / 2 && first <= initial, "{first:?}");
    }
}
