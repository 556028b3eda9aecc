//! Joining a group, and serving the state a joiner loads (`ReplicateState`).
//!
//! ```text
//!  JoinRaft{peer} ─▶ GetRaft(peer) ─▶ RaftMembershipRequest(leader): added as a learner
//!   ─▶ ReplicateState stream from the leader: committed log since the last push, then rows
//!      in key order ─▶ load: Raft starts at the streamed index as a learner ─▶ answer the host
//! ```
//!
//! # The stream: a pipeline of answers
//!
//! A joiner asks for [`REPLICATE_PUSHES_PER_REQUEST`] pushes at a time: an *answer*. The
//! source builds the whole answer before sending any of it, so every push of an answer can
//! say where the answer ends (`batch_cursor`, `batch_done`). The answer's first push carries
//! the entries and no rows, so it is small: the joiner loads it while the answer's rows are
//! still on the way and asks for the next answer at once. The source builds answer `k+1`
//! while the joiner loads the rows of answer `k`.
//!
//! ```text
//!  joiner                                    source (stateless: each answer from its cursor)
//!    ── A: cursor c0, 3 pushes, seq 0 ──────▶ builds 0 (entries), 1, 2 (rows) at applied s0
//!    ◀── push 0 {batch_cursor c1} ─────────── (every push: its own TransactionResponse)
//!  load 0 ── B: cursor c1, seq 3 ──────────▶ builds 3, 4, 5 at s1 >= s0
//!    ◀── push 1, push 2 ─────────────────────   (in flight now: 1, 2, 3, 4, 5)
//!  load 1, load 2                           ◀─ push 3 {batch_cursor c2}, push 4, push 5
//!  load 3 ── C: cursor c2, seq 6 ──────────▶ ...  until a push says `done`
//! ```
//!
//! At most [`REPLICATE_REQUESTS_IN_FLIGHT_MAX`] requests and
//! [`REPLICATE_PUSHES_IN_FLIGHT_MAX`] pushes are outstanding, and each push is bounded, so
//! memory stays bounded on both sides ([`REPLICATE_IN_FLIGHT_BYTES_MAX`]): the source holds
//! one answer while it sends it, the joiner loads each push as it arrives and buffers none.
//! Every request and push of a stream carries the transaction id of the stream's first
//! request; the joiner's transaction table keeps that id (its deadline restarts with each
//! push), so a push from any other peer, or after the stream ended, finds no transaction and
//! is refused.
//!
//! # Why the state stays consistent
//!
//! A cursor is (applied index `s`, last key sent). A push carries the committed entries after
//! the cursor's index up to the source's applied index *now*, then the rows after the cursor's
//! key as they are *now*. The joiner applies those entries only to rows it already holds
//! (keys at or before its cursor): rows after the cursor arrive later, already reflecting
//! them. When entries must be split over several pushes, those pushes carry no rows, so no
//! entry is ever applied twice. Pushes are loaded strictly in sequence, so entries that
//! commit while the stream runs (answer `k+1` is built at a later index than answer `k`)
//! reach every row exactly once.
//!
//! # What the joiner refuses
//!
//! Every push is checked before anything is loaded (`stream.rs`): its sequence number (a
//! duplicate, a gap or a push nobody asked for), its byte bounds, that its entries follow the
//! cursor without a gap, that its rows follow the cursor in key order, that its cursor is
//! where its content ends, and that the pushes of one answer agree with what its first push
//! announced. A bad push, an error from the source, a timeout or a disconnection ends the
//! join: the host gets the error, and the replica is as before JoinRaft (no group, nothing
//! loaded), free to call JoinRaft again.

pub(crate) mod cursor;
mod serve;
mod stream;

use cloister_proto::attest::GroupConfig;
use cloister_proto::e2e::{
    EnclaveToEnclave, ReplicateStatePush, TransactionRequest, enclave_to_enclave,
    transaction_request::Inner as Ask, transaction_response::Inner as Reply,
};
use prost::Message;
use raft::eraftpb::ConfState;

#[cfg(test)]
pub(crate) use self::stream::StreamView;
use self::stream::{Loaded, Streaming};
use crate::Error;
use crate::client::ClientKey;
use crate::core::{Enclave, Group};
use crate::membership::{Members, PeerId};
use crate::minimums::Minimums;
use crate::replication::Replication;
use crate::transactions::Purpose;

/// Bytes of rows per push (a push always carries at least one row, if any remain).
pub const REPLICATE_ROWS_BYTES_MAX: usize = 1024 * 1024;
/// Bytes of log entries per push (a push always carries at least one entry, if any remain).
/// Entries pile up only while a stream runs, so a push rarely carries many.
pub const REPLICATE_ENTRIES_BYTES_MAX: u64 = 512 * 1024;
/// Pushes one request asks for: a first push with the entries and no rows, then two pushes
/// of rows. The source builds them all before sending the first, so it holds one answer at
/// once. Two pushes of rows per answer keep the joiner busy while building an answer takes
/// the source no longer than loading one takes the joiner, less a round trip (measured
/// in-process, `tests::join_timing`: about 5 ms to build and 7 ms to load a push of 1 MiB
/// of rows, so round trips up to a few ms are hidden); more would only add memory.
pub const REPLICATE_PUSHES_PER_REQUEST: u32 = 3;
/// Requests a joiner keeps in flight: the answer it loads and the next one. A third would
/// need the second's end, which only arrives with the second's first push.
pub const REPLICATE_REQUESTS_IN_FLIGHT_MAX: usize = 2;
/// The window: pushes asked for and not yet loaded (in practice one less: the next request
/// leaves once the first push of the current answer is loaded).
pub const REPLICATE_PUSHES_IN_FLIGHT_MAX: u64 =
    REPLICATE_PUSHES_PER_REQUEST as u64 * REPLICATE_REQUESTS_IN_FLIGHT_MAX as u64;
/// Bytes of pushes one stream may have in flight: half the host's default per-peer send
/// buffer (16 MiB, cloister-host `SEND_BUFFER_BYTES_MAX_DEFAULT`), which also carries Raft.
/// A host refuses a message that overflows that buffer and resets the channel, which would
/// end the join.
pub const REPLICATE_IN_FLIGHT_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Room in a push for everything but rows and entries: cursors, members, protobuf framing.
const PUSH_OVERHEAD_BYTES_MAX: usize = 64 * 1024;
/// Largest serialized push.
const PUSH_BYTES_MAX: usize =
    REPLICATE_ROWS_BYTES_MAX + REPLICATE_ENTRIES_BYTES_MAX as usize + PUSH_OVERHEAD_BYTES_MAX;
/// Largest answer: a first push without rows, then full pushes.
const ANSWER_BYTES_MAX: usize = REPLICATE_ENTRIES_BYTES_MAX as usize
    + PUSH_OVERHEAD_BYTES_MAX
    + (REPLICATE_PUSHES_PER_REQUEST as usize - 1) * PUSH_BYTES_MAX;

// A push fits one peer message, and the window fits its byte budget.
const _: () = assert!(PUSH_BYTES_MAX <= crate::peers::PEER_MESSAGE_BYTES_MAX);
const _: () =
    assert!(REPLICATE_REQUESTS_IN_FLIGHT_MAX * ANSWER_BYTES_MAX <= REPLICATE_IN_FLIGHT_BYTES_MAX);
// An answer moves the stream on: a first push without rows, and at least one with rows.
const _: () = assert!(REPLICATE_PUSHES_PER_REQUEST >= 2 && REPLICATE_REQUESTS_IN_FLIGHT_MAX >= 2);

/// The byte bounds of a push. Production uses the constants above; tests shrink them so a
/// few hundred rows make many pushes (both sides of a test run on one thread).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PushLimits {
    pub(crate) rows_bytes_max: usize,
    pub(crate) entries_bytes_max: u64,
}

impl PushLimits {
    const PRODUCTION: Self = Self {
        rows_bytes_max: REPLICATE_ROWS_BYTES_MAX,
        entries_bytes_max: REPLICATE_ENTRIES_BYTES_MAX,
    };

    pub(crate) fn current() -> Self {
        #[cfg(test)]
        if let Some(limits) = TEST_PUSH_LIMITS.with(std::cell::Cell::get) {
            return limits;
        }
        Self::PRODUCTION
    }
}

#[cfg(test)]
thread_local! {
    static TEST_PUSH_LIMITS: std::cell::Cell<Option<PushLimits>> = const { std::cell::Cell::new(None) };
}

/// Use `limits` for pushes built and checked on this thread (tests only), until reset with
/// `None`.
#[cfg(test)]
pub(crate) fn set_test_push_limits(limits: Option<PushLimits>) {
    TEST_PUSH_LIMITS.with(|cell| cell.set(limits));
}

/// Where a join stands; each step waits for one transaction.
pub(crate) enum JoinStep {
    AwaitGroup {
        request_id: u64,
    },
    AwaitMembership {
        request_id: u64,
        config: GroupConfig,
        leader: PeerId,
    },
    Streaming(Box<Streaming>),
}

impl Enclave {
    /// Host call JoinRaft: join the group `peer` belongs to.
    pub(crate) fn on_join_raft(&mut self, request_id: u64, peer_id: &[u8]) -> Result<(), Error> {
        if self.group.is_some() {
            return Err(Error::FailedPrecondition(
                "this replica already belongs to a group".into(),
            ));
        }
        if self.joining {
            return Err(Error::FailedPrecondition(
                "a join is already under way".into(),
            ));
        }
        let peer: PeerId = peer_id
            .try_into()
            .map_err(|_| Error::InvalidArgument("peer id must be 32 bytes".into()))?;
        if peer == self.peer_id {
            return Err(Error::InvalidArgument(
                "a replica cannot join through itself".into(),
            ));
        }
        self.start_transaction(
            peer,
            Ask::GetRaft(Default::default()),
            Purpose::Join(JoinStep::AwaitGroup { request_id }),
        )?;
        self.joining = true;
        Ok(())
    }

    /// The answer to transaction `id`, sent for `step`.
    pub(crate) fn on_join_reply(&mut self, id: u64, step: JoinStep, reply: Result<Reply, Error>) {
        let request_id = match &step {
            JoinStep::AwaitGroup { request_id } | JoinStep::AwaitMembership { request_id, .. } => {
                *request_id
            }
            JoinStep::Streaming(streaming) => streaming.request_id,
        };
        // On error the step, and with it everything streamed so far, is dropped here: the
        // replica is as it was before JoinRaft.
        if let Err(error) = reply.and_then(|reply| self.advance_join(id, step, reply)) {
            self.joining = false;
            self.respond_error(request_id, &error);
        }
    }

    fn advance_join(&mut self, id: u64, step: JoinStep, reply: Reply) -> Result<(), Error> {
        match (step, reply) {
            (JoinStep::AwaitGroup { request_id }, Reply::GetRaft(raft)) => {
                let config = GroupConfig::decode(raft.group_config.as_slice()).map_err(|_| {
                    Error::InvalidArgument("peer sent a malformed group config".into())
                })?;
                if config.simulated != self.env.simulated() {
                    return Err(Error::InvalidArgument(
                        "the group's platform differs from ours".into(),
                    ));
                }
                let members = Members::from_proto(&raft.members)?;
                let leader = *members.peer_id(raft.leader_raft_id).ok_or_else(|| {
                    Error::Unavailable("the group has no leader right now".into())
                })?;
                let step = JoinStep::AwaitMembership {
                    request_id,
                    config,
                    leader,
                };
                self.start_transaction(leader, Ask::RaftMembership(true), Purpose::Join(step))
                    .map(|_| ())
            }
            (
                JoinStep::AwaitMembership {
                    request_id,
                    config,
                    leader,
                },
                Reply::Done(_),
            ) => {
                let mut streaming = Box::new(Streaming::new(request_id, config, leader));
                let first = streaming.ask(Vec::new());
                let ask = Ask::ReplicateState(first);
                let purpose = Purpose::Join(JoinStep::Streaming(streaming));
                self.start_transaction(leader, ask, purpose).map(|_| ())
            }
            (JoinStep::Streaming(streaming), Reply::ReplicateState(push)) => {
                self.on_push(id, streaming, push)
            }
            _ => Err(Error::InvalidArgument(
                "unexpected answer while joining".into(),
            )),
        }
    }

    /// Load one push of stream `id`; ask for the next answer when its cursor is known.
    fn on_push(
        &mut self,
        id: u64,
        mut streaming: Box<Streaming>,
        push: ReplicateStatePush,
    ) -> Result<(), Error> {
        let loaded = streaming.load(push, PushLimits::current())?;
        self.counters.replicate_state_pushes += 1;
        match loaded {
            Loaded::Done(last) => self.finish_join(*streaming, &last),
            Loaded::More(next) => {
                let source = streaming.source;
                if let Some(request) = next {
                    let message = EnclaveToEnclave {
                        inner: Some(enclave_to_enclave::Inner::TransactionRequest(
                            TransactionRequest {
                                transaction_id: id,
                                inner: Some(Ask::ReplicateState(request)),
                            },
                        )),
                    };
                    self.send_peer(source, message)?;
                }
                let purpose = Purpose::Join(JoinStep::Streaming(streaming));
                self.resume_transaction(id, source, purpose);
                Ok(())
            }
        }
    }

    fn finish_join(
        &mut self,
        streaming: Streaming,
        push: &ReplicateStatePush,
    ) -> Result<(), Error> {
        let members = Members::from_proto(&push.members)?;
        let minimums = Minimums::from_proto(&push.minimum_limits.clone().unwrap_or_default())?;
        if !members.contains(&self.peer_id) {
            return Err(Error::Internal(
                "the group does not list this replica after adding it".into(),
            ));
        }
        let voters: Vec<u64> = push
            .members
            .iter()
            .filter(|m| m.voting)
            .map(|m| m.raft_id)
            .collect();
        let learners: Vec<u64> = push
            .members
            .iter()
            .filter(|m| !m.voting)
            .map(|m| m.raft_id)
            .collect();
        let conf_state = ConfState::from((voters, learners));
        let (config, request_id, db) = streaming.into_parts();
        let replication = Replication::load(
            self.raft_id,
            &config,
            push.applied_index,
            push.applied_term,
            conf_state,
        )?;
        // A platform failure drops the join like any other (nothing was installed yet).
        let client_key =
            ClientKey::generate(self.env.as_mut(), &config, &minimums, self.now_unix_secs)
                .map_err(|error| self.platform_failed("client", error))?;
        self.db = db;
        self.group = Some(Group {
            config,
            replication,
            client_key,
            members,
            minimums,
        });
        self.joining = false;
        self.refresh_peer_attestation();
        self.respond(request_id, crate::host_calls::done());
        Ok(())
    }

    /// The stream a join is loading, if one is under way (tests watch its window).
    #[cfg(test)]
    pub(crate) fn join_stream(&self) -> Option<StreamView> {
        self.transactions
            .purposes()
            .find_map(|(id, purpose)| match purpose {
                Purpose::Join(JoinStep::Streaming(streaming)) => Some(streaming.view(id)),
                _ => None,
            })
    }
}
