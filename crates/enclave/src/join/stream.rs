//! The joiner's side of `ReplicateState`: which pushes it asked for, and loading each push
//! strictly in order after checking it.
//!
//! ```text
//!  push ─▶ sequence: the next one, and asked for?   (else: duplicate / out of order / unasked)
//!       ─▶ agrees with its answer's first push?     (batch_cursor, batch_done; no rows in it)
//!       ─▶ bounds: rows and entries bytes
//!       ─▶ entries: decode, since_index+1, +2, ... up to applied_index (no gap)
//!       ─▶ cursor: exactly where its content ends; the answer's last push ends at batch_cursor
//!       ─▶ rows: valid, in key order after the cursor ─▶ stored, then entries applied to
//!          the rows held before ─▶ next request if this was an answer's first push
//! ```
//!
//! Each check happens before anything is stored, so a refused push leaves the stream as it
//! was (and the join then drops it anyway).

use std::collections::VecDeque;

use cloister_proto::attest::GroupConfig;
use cloister_proto::e2e::{ReplicateStatePush, ReplicateStateRequest};
use cloister_proto::log::{LogEntry, log_entry};
use prost::Message;
use protobuf::Message as _;
use raft::eraftpb::{Entry, EntryType};

use super::cursor::Cursor;
use super::{
    PushLimits, REPLICATE_PUSHES_IN_FLIGHT_MAX, REPLICATE_PUSHES_PER_REQUEST,
    REPLICATE_REQUESTS_IN_FLIGHT_MAX,
};
use crate::Error;
use crate::db::{BACKUP_ID_BYTES, BackupId, Database};
use crate::membership::PeerId;

/// A join loading state from `source`.
pub(crate) struct Streaming {
    /// The host's JoinRaft request, answered when the stream ends.
    pub(super) request_id: u64,
    config: GroupConfig,
    pub(super) source: PeerId,
    db: Database,
    /// Where the loaded state ends.
    cursor: Cursor,
    /// Answers asked for and not fully loaded, oldest first.
    asked: VecDeque<Asked>,
    /// The sequence number of the next push to load (so also the count of pushes loaded).
    sequence_next: u64,
}

/// One request in flight.
struct Asked {
    first: u64,
    pushes: u32,
    /// What the answer's first push said about the answer's end, once it arrived.
    announced: Option<Announced>,
}

#[derive(Clone, PartialEq, Eq)]
struct Announced {
    cursor: Vec<u8>,
    done: bool,
}

/// What loading a push led to.
pub(crate) enum Loaded {
    /// More pushes to come; send this request first, if any.
    More(Option<ReplicateStateRequest>),
    /// The stream is complete; the last push says as of which index and term, and who the
    /// members are.
    Done(ReplicateStatePush),
}

/// The window of a stream, for tests.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamView {
    pub(crate) transaction_id: u64,
    pub(crate) source: PeerId,
    pub(crate) pushes_loaded: u64,
    pub(crate) requests_in_flight: usize,
    pub(crate) pushes_in_flight: u64,
    pub(crate) rows: usize,
    pub(crate) cursor: Cursor,
}

fn refused(what: String) -> Error {
    Error::InvalidArgument(format!("ReplicateState push refused: {what}"))
}

impl Streaming {
    pub(crate) fn new(request_id: u64, config: GroupConfig, source: PeerId) -> Self {
        Self {
            request_id,
            config,
            source,
            db: Database::default(),
            cursor: Cursor::default(),
            asked: VecDeque::new(),
            sequence_next: 0,
        }
    }

    /// Record and return the request for the next answer, starting at `cursor`.
    pub(crate) fn ask(&mut self, cursor: Vec<u8>) -> ReplicateStateRequest {
        let first = self.asked.back().map_or(self.sequence_next, |asked| {
            asked.first + u64::from(asked.pushes)
        });
        self.asked.push_back(Asked {
            first,
            pushes: REPLICATE_PUSHES_PER_REQUEST,
            announced: None,
        });
        // A joiner asks for the next answer only once the current one announced its end.
        assert!(self.asked.len() <= REPLICATE_REQUESTS_IN_FLIGHT_MAX);
        assert!(
            first + u64::from(REPLICATE_PUSHES_PER_REQUEST) - self.sequence_next
                <= REPLICATE_PUSHES_IN_FLIGHT_MAX
        );
        ReplicateStateRequest {
            cursor,
            pushes: REPLICATE_PUSHES_PER_REQUEST,
            sequence: first,
        }
    }

    /// Check `push` and load it. On `Err` nothing changed.
    pub(crate) fn load(
        &mut self,
        push: ReplicateStatePush,
        limits: PushLimits,
    ) -> Result<Loaded, Error> {
        let (announced, is_first, is_last) = self.place(&push)?;
        // It keeps the answer's first push small, and with it the bytes in flight.
        if is_first && !push.rows.is_empty() {
            return Err(refused(format!(
                "push {} opens its answer with rows",
                push.sequence
            )));
        }
        check_bounds(&push, limits)?;
        let entries = self.entries_of(&push)?;
        let after = self.cursor_after(&push)?;
        if Cursor::decode(&push.cursor)? != after {
            return Err(refused(format!(
                "push {} says its cursor is elsewhere than where its content ends",
                push.sequence
            )));
        }
        if is_last && push.cursor != announced.cursor {
            return Err(refused(format!(
                "push {} ends its answer away from the announced end",
                push.sequence
            )));
        }
        // Rows first (all validated before any is stored), then the entries, which touch only
        // rows held before this push: every new row lies after the old cursor's key.
        self.db
            .load_rows(self.cursor.last_key.as_ref(), &push.rows)?;
        for entry in &entries {
            apply_streamed(&mut self.db, self.cursor.last_key.as_ref(), entry);
        }
        self.cursor = after;
        self.sequence_next += 1;
        if let Some(front) = self.asked.front_mut() {
            front.announced.get_or_insert(announced.clone());
        }
        if is_last {
            self.asked.pop_front();
        }
        if push.done {
            return Ok(Loaded::Done(push));
        }
        let next = (is_first && !announced.done).then(|| self.ask(announced.cursor));
        Ok(Loaded::More(next))
    }

    /// Where `push` sits: the answer's announcement, and whether it is the answer's first
    /// and last push. Refuses duplicates, gaps, unasked pushes and disagreeing pushes.
    fn place(&self, push: &ReplicateStatePush) -> Result<(Announced, bool, bool), Error> {
        let sequence = push.sequence;
        let expected = self.sequence_next;
        if sequence < expected {
            return Err(refused(format!("push {sequence} arrived again")));
        }
        if sequence > expected {
            return Err(refused(format!(
                "push {sequence} arrived out of order; push {expected} is next"
            )));
        }
        let Some(front) = self.asked.front() else {
            return Err(refused(format!("push {sequence} was never asked for")));
        };
        let is_first = sequence == front.first;
        let is_last = sequence + 1 == front.first + u64::from(front.pushes) || push.done;
        let said = Announced {
            cursor: push.batch_cursor.clone(),
            done: push.batch_done,
        };
        let announced = match &front.announced {
            None => {
                Cursor::decode(&said.cursor)?;
                said
            }
            Some(announced) if *announced == said => said,
            Some(_) => {
                return Err(refused(format!(
                    "push {sequence} disagrees with its answer's first push about its end"
                )));
            }
        };
        if push.done && !announced.done {
            return Err(refused(format!(
                "push {sequence} ends a stream its answer said continues"
            )));
        }
        if is_last && announced.done && !push.done {
            return Err(refused(format!(
                "push {sequence} ends an answer that said the stream ends in it"
            )));
        }
        Ok((announced, is_first, is_last))
    }

    /// Decode the entries of `push`: they must continue the cursor's index without a gap and
    /// end at the push's applied index.
    fn entries_of(&self, push: &ReplicateStatePush) -> Result<Vec<Entry>, Error> {
        let since = self.cursor.since_index;
        let mut entries = Vec::with_capacity(push.entries.len());
        for (offset, bytes) in push.entries.iter().enumerate() {
            let entry = Entry::parse_from_bytes(bytes)
                .map_err(|_| refused("a streamed entry does not decode".into()))?;
            let expected = since.checked_add(1 + offset as u64);
            if since == 0 || Some(entry.index) != expected {
                return Err(refused(format!(
                    "entry {} streamed where entry {offset} after index {since} belongs",
                    entry.index
                )));
            }
            entries.push(entry);
        }
        let reached = entries.last().map_or(since, |entry| entry.index);
        // Only the stream's first push may move the index without entries: nothing is held.
        let at_start = self.cursor == Cursor::default();
        if push.applied_index != reached && !(at_start && entries.is_empty()) {
            return Err(refused(format!(
                "push says applied index {} but its entries reach {reached}",
                push.applied_index
            )));
        }
        Ok(entries)
    }

    /// The cursor after loading `push`: its index, and its last row's key (its rows are
    /// checked in full when stored).
    fn cursor_after(&self, push: &ReplicateStatePush) -> Result<Cursor, Error> {
        let last_key = match push.rows.last() {
            None => self.cursor.last_key,
            Some(row) => Some(
                row.get(..BACKUP_ID_BYTES)
                    .and_then(|key| <BackupId>::try_from(key).ok())
                    .ok_or_else(|| refused("a streamed row has no key".into()))?,
            ),
        };
        Ok(Cursor {
            since_index: push.applied_index,
            last_key,
        })
    }

    /// The group config, the host's request id and the loaded database.
    pub(crate) fn into_parts(self) -> (GroupConfig, u64, Database) {
        (self.config, self.request_id, self.db)
    }

    #[cfg(test)]
    pub(crate) fn view(&self, transaction_id: u64) -> StreamView {
        let asked_end = self.asked.back().map_or(self.sequence_next, |asked| {
            asked.first + u64::from(asked.pushes)
        });
        StreamView {
            transaction_id,
            source: self.source,
            pushes_loaded: self.sequence_next,
            requests_in_flight: self.asked.len(),
            pushes_in_flight: asked_end - self.sequence_next,
            rows: self.db.len(),
            cursor: self.cursor,
        }
    }
}

/// Rows and entries within their byte bounds (a single row or entry may exceed them: the
/// source always sends at least one).
fn check_bounds(push: &ReplicateStatePush, limits: PushLimits) -> Result<(), Error> {
    let rows_bytes: usize = push.rows.iter().map(Vec::len).sum();
    if push.rows.len() > 1 && rows_bytes > limits.rows_bytes_max {
        return Err(refused(format!(
            "{rows_bytes} bytes of rows, more than {}",
            limits.rows_bytes_max
        )));
    }
    let entries_bytes: usize = push.entries.iter().map(Vec::len).sum();
    if push.entries.len() > 1 && entries_bytes as u64 > limits.entries_bytes_max {
        return Err(refused(format!(
            "{entries_bytes} bytes of entries, more than {}",
            limits.entries_bytes_max
        )));
    }
    Ok(())
}

/// Apply a streamed entry to the rows already held (keys at or before `last_key`).
fn apply_streamed(db: &mut Database, last_key: Option<&BackupId>, entry: &Entry) {
    if entry.get_entry_type() != EntryType::EntryNormal || entry.data.is_empty() {
        return;
    }
    let Some(last_key) = last_key else { return };
    let Ok(decoded) = LogEntry::decode(entry.data.as_ref()) else {
        return; // every replica skips it the same way when applying (apply_entry refuses it)
    };
    let (backup_id, request) = match decoded.inner {
        Some(log_entry::Inner::Client(operation)) => (operation.backup_id, operation.request),
        Some(log_entry::Inner::HostDelete(delete)) => (delete.backup_id, None),
        // Minimums arrive with the push (ReplicateStatePush.minimum_limits).
        Some(log_entry::Inner::UpdateMinimums(_)) | None => return,
    };
    let Ok(backup_id) = <BackupId>::try_from(backup_id.as_slice()) else {
        return;
    };
    if &backup_id > last_key {
        return; // arrives later with this entry already applied
    }
    match request {
        // Deterministic, as on every replica; its answer went to the client elsewhere.
        Some(request) => {
            let _ = db.apply(&backup_id, &request);
        }
        None => db.delete(&backup_id),
    }
}
