//! The source's side of `ReplicateState`: answer a request with up to
//! [`REPLICATE_PUSHES_PER_REQUEST`] pushes, built back to back from the request's cursor.
//!
//! ```text
//!  request{cursor c, pushes n, sequence q}
//!    ─▶ push q:   entries after c.since_index up to applied (bounded), no rows: small, so
//!                 the joiner reads where the answer ends before the rows arrive
//!    ─▶ push q+1: any entries left, then rows after c.last_key (bounded)
//!    ─▶ ...       from the previous push's cursor, up to q+n-1 (or `done`)
//!    ─▶ every push stamped with the answer's end (batch_cursor, batch_done), then sent
//! ```
//!
//! The source keeps nothing between requests: a joiner that goes away leaves nothing behind.

use cloister_proto::e2e::{
    ReplicateStatePush, ReplicateStateRequest, transaction_response::Inner as Reply,
};
use protobuf::Message as _;

use super::cursor::Cursor;
use super::{PushLimits, REPLICATE_PUSHES_PER_REQUEST};
use crate::Error;
use crate::core::Enclave;
use crate::membership::PeerId;

impl Enclave {
    /// Serve `request`, transaction `id` from `peer`: each push is sent as its own answer to
    /// `id`. On `Err` nothing was sent; the caller answers with the error.
    pub(crate) fn serve_replicate_state(
        &mut self,
        peer: PeerId,
        id: u64,
        request: &ReplicateStateRequest,
    ) -> Result<(), Error> {
        // The first push carries no rows: an answer needs two pushes to move on.
        if !(2..=REPLICATE_PUSHES_PER_REQUEST).contains(&request.pushes) {
            return Err(Error::InvalidArgument(format!(
                "ReplicateState asks for {} pushes; 2..={REPLICATE_PUSHES_PER_REQUEST} allowed",
                request.pushes
            )));
        }
        let cursor = Cursor::decode(&request.cursor)?;
        let Some(group) = &self.group else {
            return Err(Error::FailedPrecondition("no group here".into()));
        };
        if !group.members.contains(&peer) {
            return Err(Error::FailedPrecondition(
                "ReplicateState from a non-member".into(),
            ));
        }
        let answer = self.build_answer(cursor, request.pushes, request.sequence)?;
        for push in answer {
            self.reply(peer, id, Ok(Reply::ReplicateState(push)));
        }
        Ok(())
    }

    /// The `pushes` pushes after `cursor`, numbered from `sequence`, each stamped with where
    /// the last one ends.
    pub(crate) fn build_answer(
        &self,
        mut cursor: Cursor,
        pushes: u32,
        sequence: u64,
    ) -> Result<Vec<ReplicateStatePush>, Error> {
        let members = self.status().members;
        let limits = PushLimits::current();
        let mut answer = Vec::with_capacity(pushes as usize);
        for offset in 0..pushes {
            let (mut push, next) = self.build_push(cursor, limits, offset > 0)?;
            push.sequence = sequence
                .checked_add(u64::from(offset))
                .ok_or_else(|| Error::InvalidArgument("push sequence overflows".into()))?;
            push.members.clone_from(&members);
            cursor = next;
            let done = push.done;
            answer.push(push);
            if done {
                break;
            }
        }
        let batch_done = answer.last().is_some_and(|push| push.done);
        let batch_cursor = cursor.encode();
        for push in &mut answer {
            push.batch_cursor.clone_from(&batch_cursor);
            push.batch_done = batch_done;
        }
        Ok(answer)
    }

    /// The push after `cursor`, as the state stands now (rows only if `with_rows`), and the
    /// cursor after it.
    fn build_push(
        &self,
        cursor: Cursor,
        limits: PushLimits,
        with_rows: bool,
    ) -> Result<(ReplicateStatePush, Cursor), Error> {
        let Some(group) = &self.group else {
            return Err(Error::FailedPrecondition("no group here".into()));
        };
        let applied = group.replication.applied_index();
        let since_index = cursor.since_index;
        let mut push = ReplicateStatePush {
            minimum_limits: Some(group.minimums.to_proto()),
            ..ReplicateStatePush::default()
        };
        let mut reached = applied;
        if since_index > 0 && since_index < applied {
            let entries = group.replication.committed_entries(
                since_index + 1,
                applied + 1,
                limits.entries_bytes_max,
            )?;
            reached = entries.last().map_or(since_index, |entry| entry.index);
            push.entries = entries
                .iter()
                .map(|entry| entry.write_to_bytes())
                .collect::<Result<_, _>>()
                .map_err(|_| Error::Internal("a committed entry does not encode".into()))?;
        }
        let mut next = Cursor {
            since_index: reached,
            last_key: cursor.last_key,
        };
        let mut rows_done = false;
        // Rows only once the entries are complete: rows are read as of `applied`.
        if with_rows && reached == applied {
            let chunk = self
                .db
                .stream_rows(cursor.last_key.as_ref(), limits.rows_bytes_max);
            push.rows = chunk.rows;
            next.last_key = chunk.last.or(cursor.last_key);
            rows_done = chunk.done;
        }
        push.applied_index = reached;
        push.applied_term = group.replication.term_of(reached)?;
        push.cursor = next.encode();
        push.done = rows_done && reached == applied;
        Ok((push, next))
    }
}
