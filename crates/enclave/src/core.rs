//! The door: [`Enclave::init`], [`Enclave::handle`], [`Enclave::poll_message`].

use std::collections::{BTreeMap, VecDeque};

use cloister_proto::attest::GroupConfig;
use cloister_proto::enclave::{
    EnclaveConfig, EnclaveLogLevel, EnclaveMessage, HostToEnclaveRequest, HostToEnclaveResponse,
    InitConfig, LogRecord, TimerTick, UntrustedMessage, enclave_message, host_to_enclave_response,
    untrusted_message,
};
use prost::Message;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::client::{CLIENT_SESSION_IDLE_SECS_MAX, ClientKey, ClientSessions};
use crate::config::ValidConfig;
use crate::db::Database;
use crate::membership::{Members, PeerId};
use crate::metrics::Counters;
use crate::peers::{PeerChannels, PeerLimits};
use crate::replication::Replication;
use crate::transactions::Transactions;
use crate::{Env, Error};

/// Largest serialized `UntrustedMessage` the core accepts: a peer's Syn (evidence and
/// endorsements at their bounds) or a client frame, plus framing.
pub const UNTRUSTED_MESSAGE_BYTES_MAX: usize = 512 * 1024;
/// Largest serialized `InitConfig`.
pub const INIT_CONFIG_BYTES_MAX: usize = 4 * 1024;

const _: () = assert!(crate::client::NOISE_MESSAGE_BYTES_MAX + 64 <= UNTRUSTED_MESSAGE_BYTES_MAX);
const _: () = assert!(crate::peers::PEER_FRAME_BYTES_MAX + 128 <= UNTRUSTED_MESSAGE_BYTES_MAX);

/// Who waits for a log entry to commit.
pub(crate) enum Origin {
    /// A client's request, answered over its Noise session.
    Client { client_id: u64, request_id: u64 },
    /// A host request, answered with `Done`.
    Host { request_id: u64 },
    /// A peer's membership transaction, answered with `Done`.
    Peer { peer: PeerId, transaction_id: u64 },
}

/// A proposal waiting for its entry to commit at the expected term.
pub(crate) struct Pending {
    pub(crate) term: u64,
    pub(crate) origin: Origin,
}

/// A group this replica belongs to.
pub(crate) struct Group {
    pub(crate) config: GroupConfig,
    pub(crate) replication: Replication,
    pub(crate) client_key: ClientKey,
    pub(crate) members: Members,
    /// The group's minimums, as of the last applied entry.
    pub(crate) minimums: crate::minimums::Minimums,
}

/// The enclave core: a deterministic state machine behind one door.
///
/// It owns no clock (time arrives in `TimerTick`), no sockets and no threads; randomness
/// comes only from its [`Env`]. The same inputs give the same outputs.
pub struct Enclave {
    pub(crate) env: Box<dyn Env>,
    pub(crate) config: ValidConfig,
    pub(crate) peer_id: [u8; 32],
    pub(crate) raft_id: u64,
    _peer_private: Zeroizing<[u8; 32]>,
    pub(crate) now_unix_secs: u64,
    pub(crate) group: Option<Group>,
    pub(crate) db: Database,
    pub(crate) sessions: ClientSessions,
    pub(crate) pending: BTreeMap<u64, Pending>,
    outbox: VecDeque<Vec<u8>>,
    pub(crate) counters: Counters,
    pub(crate) peers: PeerChannels,
    /// Serialized evidence binding the peer key and the group (or "no group yet").
    pub(crate) peer_evidence: Vec<u8>,
    /// What travels beside `peer_evidence` (collateral, certificate chain).
    pub(crate) peer_endorsements: Vec<u8>,
    /// Bugs injected on purpose, for the simulator's proof that its checkers bite.
    #[cfg(feature = "bug-injection")]
    pub(crate) bugs: crate::bugs::Bugs,
    pub(crate) transactions: Transactions,
    /// True while a JoinRaft is under way.
    pub(crate) joining: bool,
    /// The latest clock each peer reported (NewTimestampUnixSecs), by raft id.
    pub(crate) peer_times: BTreeMap<u64, u64>,
    /// When each peer was last heard from (this replica's clock), for healing.
    pub(crate) last_heard: BTreeMap<PeerId, u64>,
    /// When this replica last became leader; silence is measured from then at the latest.
    pub(crate) leader_since_unix_secs: u64,
    was_leader: bool,
    /// Set when a committed change removed this replica; its group is dropped after apply.
    pub(crate) removed: bool,
}

impl std::fmt::Debug for Enclave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enclave")
            .field("peer_id", &hex::encode(self.peer_id))
            .field("raft_id", &self.raft_id)
            .finish_non_exhaustive()
    }
}

impl Enclave {
    /// Create the core from a serialized [`InitConfig`]. Draws its peer key from `env`.
    pub fn init(init_config: &[u8], mut env: Box<dyn Env>) -> Result<Self, Error> {
        if init_config.len() > INIT_CONFIG_BYTES_MAX {
            return Err(Error::HostMisbehaved("init config too large".into()));
        }
        let init = InitConfig::decode(init_config)
            .map_err(|_| Error::HostMisbehaved("init config is not a valid InitConfig".into()))?;
        let config = ValidConfig::new(init.config.unwrap_or_default())?;
        let mut peer_private = Zeroizing::new([0u8; 32]);
        env.fill_random(peer_private.as_mut());
        let peer_id = PublicKey::from(&StaticSecret::from(*peer_private)).to_bytes();
        let raft_id = crate::membership::raft_id_of(&peer_id);
        let peers = PeerChannels::new(&peer_private, PeerLimits::default());
        let mut enclave = Self {
            env,
            sessions: ClientSessions::new(config.client_sessions_max),
            config,
            peer_id,
            raft_id,
            _peer_private: peer_private,
            now_unix_secs: init.initial_timestamp_unix_secs,
            group: None,
            db: Database::default(),
            pending: BTreeMap::new(),
            outbox: VecDeque::new(),
            counters: Counters::default(),
            peers,
            peer_evidence: Vec::new(),
            peer_endorsements: Vec::new(),
            #[cfg(feature = "bug-injection")]
            bugs: crate::bugs::Bugs::default(),
            transactions: Transactions::default(),
            joining: false,
            peer_times: BTreeMap::new(),
            last_heard: BTreeMap::new(),
            leader_since_unix_secs: 0,
            was_leader: false,
            removed: false,
        };
        // A platform that cannot attest at start is a platform this core cannot serve from.
        enclave.attest_peer_key()?;
        Ok(enclave)
    }

    /// Give this core a known bug (feature `bug-injection`; for the simulator's checkers).
    #[cfg(feature = "bug-injection")]
    pub fn inject_bug(&mut self, bug: crate::InjectedBug) {
        self.bugs.inject(bug);
    }

    /// This replica's peer id (its peer static public key).
    pub fn peer_id(&self) -> &[u8; 32] {
        &self.peer_id
    }

    /// Feed one serialized [`UntrustedMessage`].
    ///
    /// Returns `Err` only when the bytes are not a door message at all; then nothing changed
    /// and no response will follow. Every decodable host request gets exactly one response,
    /// now or when its log entry commits.
    pub fn handle(&mut self, untrusted_message: &[u8]) -> Result<(), Error> {
        let message = self.decode_untrusted(untrusted_message)?;
        match message.inner {
            Some(untrusted_message::Inner::H2eRequest(request)) => {
                self.on_host_request(request);
                Ok(())
            }
            Some(untrusted_message::Inner::TimerTick(tick)) => {
                self.on_timer_tick(tick);
                Ok(())
            }
            Some(untrusted_message::Inner::ResetPeer(reset)) => self.on_reset_peer(&reset.peer_id),
            Some(untrusted_message::Inner::PeerMessage(message)) => self.on_peer_message(message),
            None => {
                self.counters.host_messages_malformed += 1;
                Err(Error::HostMisbehaved(
                    "untrusted message has no content".into(),
                ))
            }
        }
    }

    /// Drain one serialized [`EnclaveMessage`]. Raft work happens here, so call this until
    /// it returns `None` after every [`Self::handle`].
    pub fn poll_message(&mut self) -> Option<Vec<u8>> {
        if self.outbox.is_empty() {
            self.drive_replication();
        }
        self.outbox.pop_front()
    }

    /// Messages queued and not yet polled (for tests of the door's timing).
    #[cfg(test)]
    pub(crate) fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    fn decode_untrusted(&mut self, bytes: &[u8]) -> Result<UntrustedMessage, Error> {
        if bytes.len() > UNTRUSTED_MESSAGE_BYTES_MAX {
            self.counters.host_messages_malformed += 1;
            return Err(Error::HostMisbehaved(format!(
                "untrusted message of {} bytes exceeds {UNTRUSTED_MESSAGE_BYTES_MAX}",
                bytes.len()
            )));
        }
        UntrustedMessage::decode(bytes).map_err(|_| {
            self.counters.host_messages_malformed += 1;
            Error::HostMisbehaved("bytes are not a valid UntrustedMessage".into())
        })
    }

    fn on_timer_tick(&mut self, tick: TimerTick) {
        self.counters.timer_ticks += 1;
        if tick.new_timestamp_unix_secs < self.now_unix_secs {
            // A host clock that runs backwards cannot move the core's time back.
            self.log(
                EnclaveLogLevel::Warning,
                "timer tick went backwards; time kept".into(),
            );
        } else {
            self.now_unix_secs = tick.new_timestamp_unix_secs;
        }
        if let Some(group) = &mut self.group {
            group.replication.tick();
            let leader = group.replication.is_leader();
            if leader && !self.was_leader {
                self.leader_since_unix_secs = self.now_unix_secs;
            }
            self.was_leader = leader;
        }
        let idle = self.sessions.close_idle(self.now_unix_secs);
        if idle > 0 {
            self.counters.client_sessions_closed += idle as u64;
            self.counters.client_sessions_expired += idle as u64;
            self.log(
                EnclaveLogLevel::Info,
                format!(
                    "closed {idle} client sessions idle for over {CLIENT_SESSION_IDLE_SECS_MAX} s"
                ),
            );
        }
        self.heal();
        self.expire_transactions();
        self.expire_peers();
        self.broadcast_timestamp();
    }

    fn on_host_request(&mut self, request: HostToEnclaveRequest) {
        let request_id = request.request_id;
        match self.dispatch_host_request(request) {
            Ok(Some(inner)) => self.respond(request_id, inner),
            Ok(None) => {} // answered when its entry commits
            Err(error) => self.respond_error(request_id, &error),
        }
    }

    /// Queue a response to host request `request_id`.
    pub(crate) fn respond(&mut self, request_id: u64, inner: host_to_enclave_response::Inner) {
        let response = HostToEnclaveResponse {
            request_id,
            inner: Some(inner),
        };
        self.emit(enclave_message::Inner::H2eResponse(response));
    }

    /// Queue an error response to host request `request_id`.
    pub(crate) fn respond_error(&mut self, request_id: u64, error: &Error) {
        if matches!(error, Error::Unavailable(_)) {
            self.counters.requests_unavailable += 1;
        }
        self.respond(
            request_id,
            host_to_enclave_response::Inner::Error(error.to_proto()),
        );
    }

    /// Queue a log record for the host, if the level lets it through. Never pass a secret.
    pub(crate) fn log(&mut self, level: EnclaveLogLevel, message: String) {
        if (level as i32) <= (self.config.log_level as i32) {
            self.emit(enclave_message::Inner::Log(LogRecord {
                level: level as i32,
                message,
            }));
        }
    }

    pub(crate) fn emit(&mut self, inner: enclave_message::Inner) {
        self.outbox
            .push_back(EnclaveMessage { inner: Some(inner) }.encode_to_vec());
    }

    /// Apply a new host-supplied configuration.
    pub(crate) fn reconfigure(&mut self, config: EnclaveConfig) -> Result<(), Error> {
        let config = ValidConfig::new(config)?;
        self.sessions.set_sessions_max(config.client_sessions_max);
        self.config = config;
        Ok(())
    }
}
