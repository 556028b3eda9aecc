//! The node: both listeners, the ticker, the enclave thread and (with `peer_listen_addr`) the
//! peer transport, started and stopped together.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::admin::{self, AdminState};
use crate::auth::AuthSecret;
use crate::client_ws::{self, ClientSettings, ClientState};
use crate::config::HostConfig;
use crate::dispatcher::{self, Dispatcher, DispatcherSettings, DispatcherThread};
use crate::door::EnclaveDoor;
use crate::error::HostError;
use crate::metrics::HostMetrics;
use crate::peer::{PeerEvent, PeerId, PeerTransport};
use crate::rate_limit::RateLimiter;

/// The host's clock, in whole seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => tracing::info!("interrupted"),
        () = terminate => tracing::info!("terminated"),
    }
}

/// Starts a node, serves until `shutdown` resolves (or the enclave dies), then stops it.
pub async fn run<D: EnclaveDoor>(
    config: HostConfig,
    enclave: D,
    shutdown: impl Future<Output = ()>,
) -> Result<(), HostError> {
    Node::start(config, enclave).await?.wait(shutdown).await
}

/// A running host: listeners bound, enclave thread up, ticks flowing.
pub struct Node {
    client_addr: SocketAddr,
    admin_addr: SocketAddr,
    enclave_id: String,
    dispatcher: Dispatcher,
    thread: DispatcherThread,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
    ticker: JoinHandle<()>,
    connections: Arc<Semaphore>,
    config: HostConfig,
    peer: Option<PeerRelay>,
}

/// The running peer transport and the task feeding its events to the enclave.
struct PeerRelay {
    transport: PeerTransport,
    forwarder: JoinHandle<()>,
}

impl Node {
    /// Validates `config`, loads (or creates) the auth secret, starts the enclave thread,
    /// learns the enclave's measurement, and binds both listeners. Port 0 binds a free port;
    /// [`Node::client_addr`] and [`Node::admin_addr`] say which.
    pub async fn start<D: EnclaveDoor>(config: HostConfig, enclave: D) -> Result<Node, HostError> {
        config.validate()?;
        let (secret, created) = AuthSecret::load_or_create(&config.auth_secret_path)?;
        if created {
            tracing::info!(path = %config.auth_secret_path.display(), "created a new auth secret");
        }
        let metrics = Arc::new(HostMetrics::default());
        let settings = DispatcherSettings {
            queue_messages_max: config.enclave_queue_messages_max,
            batch_messages_max: config.enclave_batch_messages_max,
            pending_calls_max: config.pending_calls_max,
            call_timeout: config.enclave_call_timeout,
        };
        let (dispatcher, thread) = dispatcher::spawn(enclave, settings, metrics.clone())?;
        match Bound::bind(&config, &dispatcher, &metrics).await {
            Ok(bound) => Ok(Self::assemble(
                config, dispatcher, thread, secret, metrics, bound,
            )),
            Err(error) => {
                let _ = thread.stop().await;
                Err(error)
            }
        }
    }

    fn assemble(
        config: HostConfig,
        dispatcher: Dispatcher,
        thread: DispatcherThread,
        secret: AuthSecret,
        metrics: Arc<HostMetrics>,
        bound: Bound,
    ) -> Node {
        let (shutdown, shutdown_receiver) = watch::channel(false);
        let connections = Arc::new(Semaphore::new(config.connections_max));
        let client_settings = ClientSettings {
            token_age_max_secs: config.token_age_max_secs,
            frame_bytes_max: config.frame_bytes_max,
            idle_timeout: config.idle_timeout,
        };
        let limiter = RateLimiter::new(
            config.rate_limit_burst,
            config.rate_limit_per_minute,
            config.rate_limit_users_max,
        );
        let client_state = Arc::new(ClientState::new(
            dispatcher.clone(),
            metrics.clone(),
            client_settings,
            shutdown_receiver.clone(),
            connections.clone(),
            Arc::new(secret),
            limiter,
            &bound.measurement,
        ));
        let admin_state = AdminState {
            dispatcher: dispatcher.clone(),
            metrics,
        };
        let servers = vec![
            serve(
                bound.client,
                client_ws::router(client_state),
                shutdown_receiver.clone(),
            ),
            serve(
                bound.admin,
                admin::router(admin_state, config.admin_body_bytes_max),
                shutdown_receiver,
            ),
        ];
        let ticker = tokio::spawn(tick_forever(
            dispatcher.clone(),
            config.tick_interval,
            config.attestation_refresh_interval,
        ));
        let peer = bound.peer.map(|peer| PeerRelay::start(peer, &dispatcher));
        let enclave_id = hex::encode(&bound.measurement);
        let (client_addr, admin_addr) = (bound.client_addr, bound.admin_addr);
        tracing::info!(%client_addr, %admin_addr, %enclave_id, "host listening");
        Node {
            client_addr: bound.client_addr,
            admin_addr: bound.admin_addr,
            enclave_id,
            dispatcher,
            thread,
            shutdown,
            servers,
            ticker,
            connections,
            config,
            peer,
        }
    }

    /// Where clients connect.
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// Where the admin API listens.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The enclave id clients put in their URL (lowercase hex of the measurement).
    pub fn enclave_id(&self) -> &str {
        &self.enclave_id
    }

    /// Where other hosts connect to relay peer messages (`None` without `peer_listen_addr`).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer.as_ref().map(|peer| peer.transport.local_addr())
    }

    /// The peer transport, when one runs (for discovery and addresses).
    pub fn peer_transport(&self) -> Option<&PeerTransport> {
        self.peer.as_ref().map(|peer| &peer.transport)
    }

    /// A handle for calling the enclave directly (for example, to create a group for `--dev`).
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// Serves until `shutdown` resolves, then shuts down gracefully. If the enclave thread
    /// ends first, shuts down and returns its error.
    pub async fn wait(self, shutdown: impl Future<Output = ()>) -> Result<(), HostError> {
        let enclave_ended = tokio::select! {
            () = shutdown => false,
            () = self.dispatcher.stopped() => true,
        };
        if enclave_ended {
            tracing::error!("the enclave thread ended; shutting down");
        } else {
            tracing::info!("shutting down");
        }
        let result = self.shutdown().await;
        match (enclave_ended, result) {
            (_, Err(error)) => Err(error),
            (true, Ok(())) => Err(HostError::EnclaveStopped),
            (false, Ok(())) => Ok(()),
        }
    }

    /// Stops accepting, closes client sessions (1001), waits up to `shutdown_grace` for them
    /// and for in-flight HTTP requests, stops the peer transport and the ticker, then stops
    /// the enclave thread.
    pub async fn shutdown(self) -> Result<(), HostError> {
        let _ = self.shutdown.send(true);
        let deadline = Instant::now() + self.config.shutdown_grace;
        for server in self.servers {
            let abort = server.abort_handle();
            if tokio::time::timeout_at(deadline, server).await.is_err() {
                abort.abort();
            }
        }
        let permits = u32::try_from(self.config.connections_max).unwrap_or(u32::MAX);
        let sessions = self.connections.acquire_many(permits);
        if tokio::time::timeout_at(deadline, sessions).await.is_err() {
            tracing::warn!("client sessions still open after the shutdown grace period");
        }
        if let Some(peer) = self.peer {
            peer.transport.shutdown().await;
            peer.forwarder.abort();
        }
        self.ticker.abort();
        self.thread.stop().await
    }
}

/// The fallible part of starting: the enclave answers, both listeners are bound, and the
/// peer transport (if configured) listens.
struct Bound {
    measurement: Vec<u8>,
    client: TcpListener,
    admin: TcpListener,
    client_addr: SocketAddr,
    admin_addr: SocketAddr,
    peer: Option<(PeerTransport, mpsc::Receiver<PeerEvent>)>,
}

impl Bound {
    async fn bind(
        config: &HostConfig,
        dispatcher: &Dispatcher,
        metrics: &Arc<HostMetrics>,
    ) -> Result<Bound, HostError> {
        dispatcher.tick(unix_now_secs()).await?;
        let status = dispatcher.status().await?;
        let client = listen(config.client_listen_addr, "client").await?;
        let admin = listen(config.admin_listen_addr, "admin").await?;
        let client_addr = local_addr(&client)?;
        let admin_addr = local_addr(&admin)?;
        let peer = match config.peer_listen_addr {
            Some(listen_addr) => {
                let peer_id = PeerId::from_slice(&status.peer_id).ok_or(
                    HostError::UnexpectedReply("the enclave's peer id is not 32 bytes"),
                )?;
                let seeds = config.peers.clone();
                let settings = config.peer_settings.clone();
                let metrics = metrics.clone();
                Some(PeerTransport::start(peer_id, listen_addr, seeds, settings, metrics).await?)
            }
            None => None,
        };
        Ok(Bound {
            measurement: status.measurement,
            client,
            admin,
            client_addr,
            admin_addr,
            peer,
        })
    }
}

impl PeerRelay {
    /// Routes the enclave's peer messages to the transport, and the transport's events to
    /// the enclave.
    fn start(peer: (PeerTransport, mpsc::Receiver<PeerEvent>), dispatcher: &Dispatcher) -> Self {
        let (transport, events) = peer;
        dispatcher.attach_peer_transport(transport.clone());
        let forwarder = tokio::spawn(forward_peer_events(events, dispatcher.clone()));
        PeerRelay {
            transport,
            forwarder,
        }
    }
}

/// Hands the transport's events to the enclave, in order, until either side stops.
async fn forward_peer_events(mut events: mpsc::Receiver<PeerEvent>, dispatcher: Dispatcher) {
    while let Some(event) = events.recv().await {
        let handed = match event {
            PeerEvent::Message { peer_id, data } => dispatcher.peer_message(peer_id, data).await,
            PeerEvent::Reset { peer_id } => dispatcher.reset_peer(peer_id).await,
        };
        if handed.is_err() {
            return;
        }
    }
}

async fn listen(addr: SocketAddr, name: &str) -> Result<TcpListener, HostError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| HostError::Io {
            context: format!("binding the {name} listener on {addr}"),
            source,
        })
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, HostError> {
    listener.local_addr().map_err(|source| HostError::Io {
        context: "reading a listener's address".into(),
        source,
    })
}

fn serve(
    listener: TcpListener,
    router: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>> {
    let signal = async move {
        // Resolves when the flag flips to true or the sender is gone.
        let _ = shutdown.wait_for(|stopping| *stopping).await;
    };
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(signal)
            .await
    })
}

/// Tells the enclave the time every `interval` until the enclave stops.
async fn tick_forever(
    dispatcher: Dispatcher,
    interval: std::time::Duration,
    refresh_interval: std::time::Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut refresher = tokio::time::interval(refresh_interval);
    refresher.set_missed_tick_behavior(MissedTickBehavior::Delay);
    refresher.reset(); // the core attested itself when it started
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if dispatcher.tick(unix_now_secs()).await.is_err() {
                    return;
                }
            }
            _ = refresher.tick() => match dispatcher.refresh_attestation().await {
                Ok(()) => tracing::debug!("attestation refreshed"),
                Err(error) => tracing::warn!(%error, "attestation refresh failed"),
            },
        }
    }
}

#[cfg(test)]
mod tests;
