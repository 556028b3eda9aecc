//! What every task of the transport shares: the state, the event channel to the enclave, the
//! metrics, and the task tracker that lets shutdown wait for all of them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::runtime::Handle;
use tokio::sync::{Notify, Semaphore, mpsc, watch};

use super::book::{Learned, Source};
use super::state::State;
use super::wire::{Hello, KNOWN_PEERS_MAX};
use super::{PeerEvent, PeerId, PeerSettings, dialer};
use crate::metrics::{Counter, HostMetrics};

/// Who this host is on the peer network.
#[derive(Debug, Clone, Copy)]
pub struct Local {
    /// The local enclave's peer id.
    pub peer_id: PeerId,
    /// The bound peer listener.
    pub listen_addr: SocketAddr,
    /// Random per process start.
    pub incarnation: u64,
}

pub struct Inner {
    pub local: Local,
    pub settings: PeerSettings,
    pub events: mpsc::Sender<PeerEvent>,
    pub metrics: Arc<HostMetrics>,
    /// Inbound connections still in their Hello exchange.
    pub handshakes: Arc<Semaphore>,
    /// Wakes the reset courier.
    pub resets: Notify,
    state: Mutex<State>,
    runtime: Handle,
    stop: watch::Sender<bool>,
    // Every task holds a clone of the sender; shutdown drops this one and waits for the
    // receiver to see all of them gone.
    tasks: Mutex<Option<mpsc::Sender<()>>>,
    tasks_done: tokio::sync::Mutex<mpsc::Receiver<()>>,
}

impl Inner {
    pub fn new(
        local: Local,
        settings: PeerSettings,
        events: mpsc::Sender<PeerEvent>,
        metrics: Arc<HostMetrics>,
    ) -> Self {
        let (tasks, tasks_done) = mpsc::channel(1);
        Inner {
            handshakes: Arc::new(Semaphore::new(settings.handshakes_max)),
            state: Mutex::new(State::new(local.peer_id, &settings)),
            local,
            settings,
            events,
            metrics,
            resets: Notify::new(),
            runtime: Handle::current(),
            stop: watch::channel(false).0,
            tasks: Mutex::new(Some(tasks)),
            tasks_done: tokio::sync::Mutex::new(tasks_done),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state itself consistent enough to stop.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `task` until it ends or the transport stops. Callable from any thread (the
    /// enclave thread sends too). False once stopping: the task is not started.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) -> bool {
        let token = {
            let tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
            tasks.clone()
        };
        let Some(token) = token else {
            return false;
        };
        let mut stop = self.stop.subscribe();
        self.runtime.spawn(async move {
            let _token = token;
            tokio::select! {
                () = task => {}
                _ = stop.wait_for(|stopping| *stopping) => {}
            }
        });
        true
    }

    /// Starts a dialer task for every peer the state created since the last call.
    pub fn start_new_peers(self: &Arc<Self>) {
        let unstarted = std::mem::take(&mut self.state().unstarted);
        for (peer_id, wake) in unstarted {
            self.spawn(dialer::run_peer(self.clone(), peer_id, wake));
        }
    }

    /// This host's Hello, for a connection to `to` (left out of the known peers).
    pub fn hello(&self, to: Option<PeerId>, discovery_only: bool) -> Hello {
        let state = self.state();
        Hello {
            peer_id: self.local.peer_id,
            listen_addr: Some(self.local.listen_addr),
            incarnation: self.local.incarnation,
            known_peers: state.book.share(to, KNOWN_PEERS_MAX),
            discovery_only,
            sent_through: to.map_or(0, |to| state.sent_through(to)),
        }
    }

    /// Learns from a remote's Hello: its own address `addr` (worth `source`), then its known
    /// peers. Wakes the dialer of every peer whose address changed.
    pub fn learn(&self, hello: &Hello, addr: Option<SocketAddr>, source: Source) {
        let mut state = self.state();
        let mut learned: Vec<_> = addr
            .map(|addr| (hello.peer_id, addr, source))
            .into_iter()
            .collect();
        let heard = hello
            .known_peers
            .iter()
            .filter(|(id, _)| *id != self.local.peer_id);
        learned.extend(heard.map(|(id, addr)| (*id, *addr, Source::Heard)));
        for (peer_id, addr, source) in learned {
            match state.book.learn(peer_id, addr, source) {
                Learned::Changed => {
                    tracing::debug!(%peer_id, %addr, ?source, "learned a peer address");
                    state.wake_dialer(peer_id);
                }
                Learned::Unchanged => {}
                Learned::Full => {
                    tracing::warn!(%peer_id, "the address book is full; address not kept");
                }
            }
        }
    }

    /// Wakes the reset courier after the state came to owe resets.
    pub fn resets_owed(&self) {
        self.resets.notify_one();
    }

    /// Tells the enclave `ResetPeer` for every peer owed one, for as long as the transport
    /// runs. Waits for room in the event channel rather than dropping a reset.
    pub async fn run_reset_courier(self: Arc<Self>) {
        loop {
            self.resets.notified().await;
            let owed = std::mem::take(&mut self.state().resets_owed);
            for peer_id in owed {
                if self
                    .events
                    .send(PeerEvent::Reset { peer_id })
                    .await
                    .is_err()
                {
                    return;
                }
                self.metrics.increment(Counter::PeerResets);
                tracing::info!(%peer_id, "told the enclave to reset its channel with a peer");
            }
        }
    }

    /// Abandons an unreachable peer (see [`State::abandon`]).
    pub fn abandon(&self, peer_id: PeerId) {
        let dropped = self.state().abandon(peer_id);
        self.metrics.increment(Counter::PeerAbandons);
        self.metrics.add(Counter::PeerFramesDropped, dropped as u64);
        self.resets_owed();
        let after = self.settings.abandon_after;
        tracing::warn!(%peer_id, dropped, ?after, "peer unreachable; abandoned");
    }

    /// Refreshes the connected-peers gauge.
    pub fn count_connected(&self) {
        let connected = self.state().connected().len();
        self.metrics.set_peers_connected(connected);
    }

    /// Stops every task and waits for them to end.
    pub async fn stop(&self) {
        self.state().stopping = true;
        self.stop.send_replace(true);
        drop(
            self.tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let mut done = self.tasks_done.lock().await;
        // Ends (None) once every task has dropped its token.
        while done.recv().await.is_some() {}
        self.metrics.set_peers_connected(0);
    }
}
