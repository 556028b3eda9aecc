//! Streaming rows between replicas (`ReplicateState`): rows in key order, in bounded chunks,
//! in a fixed binary form that the receiver validates before it stores anything.
//!
//! ```text
//!  row = id (16) · data_len (1) · data (data_len) · pin (32) · tries (1) · exposed (1)
//! ```

use super::{BACKUP_ID_BYTES, BackupId, DATA_BYTES_MAX, DATA_BYTES_MIN, Database, PIN_BYTES, Row};
use crate::Error;

/// Largest encoded row.
pub const ROW_BYTES_MAX: usize = BACKUP_ID_BYTES + 1 + DATA_BYTES_MAX + PIN_BYTES + 2;

/// One chunk of streamed rows.
pub struct RowChunk {
    /// Encoded rows, in key order.
    pub rows: Vec<Vec<u8>>,
    /// The last key in this chunk (the next chunk starts after it).
    pub last: Option<BackupId>,
    /// True when no rows follow.
    pub done: bool,
}

impl Database {
    /// Rows after `after` (from the start when `None`), in key order, at most `bytes_max`
    /// encoded bytes (at least one row, if any remain).
    pub fn stream_rows(&self, after: Option<&BackupId>, bytes_max: usize) -> RowChunk {
        let range = match after {
            Some(key) => self
                .rows
                .range((std::ops::Bound::Excluded(*key), std::ops::Bound::Unbounded)),
            None => self.rows.range::<BackupId, _>(..),
        };
        let (mut rows, mut bytes, mut last) = (Vec::new(), 0, None);
        let mut remaining = range.peekable();
        while let Some((id, row)) = remaining.peek() {
            let encoded = encode(id, row);
            if !rows.is_empty() && bytes + encoded.len() > bytes_max {
                break;
            }
            bytes += encoded.len();
            last = Some(**id);
            rows.push(encoded);
            remaining.next();
        }
        let done = remaining.peek().is_none();
        RowChunk { rows, last, done }
    }

    /// Store rows streamed from a peer. Every row is validated and keys must increase
    /// strictly, after `after`; on any error nothing is stored. Returns the last key.
    pub fn load_rows(
        &mut self,
        after: Option<&BackupId>,
        rows: &[Vec<u8>],
    ) -> Result<Option<BackupId>, Error> {
        let mut decoded = Vec::with_capacity(rows.len());
        let mut previous = after.copied();
        for bytes in rows {
            let (id, row) = decode(bytes)?;
            if previous.is_some_and(|previous| id <= previous) {
                return Err(Error::InvalidArgument(
                    "streamed rows are not in key order".into(),
                ));
            }
            previous = Some(id);
            decoded.push((id, row));
        }
        for (id, row) in decoded {
            self.rows.insert(id, row);
        }
        Ok(previous)
    }
}

fn encode(id: &BackupId, row: &Row) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(ROW_BYTES_MAX);
    bytes.extend_from_slice(id);
    bytes.push(row.data_len);
    bytes.extend_from_slice(row.data());
    bytes.extend_from_slice(&row.pin);
    bytes.push(row.tries);
    bytes.push(u8::from(row.exposed));
    bytes
}

fn decode(bytes: &[u8]) -> Result<(BackupId, Row), Error> {
    let malformed = |what: &str| Error::InvalidArgument(format!("streamed row: {what}"));
    let (id, rest) = bytes
        .split_first_chunk::<BACKUP_ID_BYTES>()
        .ok_or_else(|| malformed("short id"))?;
    let (&data_len, rest) = rest
        .split_first()
        .ok_or_else(|| malformed("no data length"))?;
    let length = usize::from(data_len);
    if !(DATA_BYTES_MIN..=DATA_BYTES_MAX).contains(&length) || rest.len() != length + PIN_BYTES + 2
    {
        return Err(malformed("wrong size"));
    }
    let (data, rest) = rest.split_at(length);
    let (pin, flags) = rest.split_at(PIN_BYTES);
    let (tries, exposed) = (flags[0], flags[1]);
    if tries == 0 || exposed > 1 {
        return Err(malformed("tries must be 1..=255 and exposed 0 or 1"));
    }
    let mut row = Row {
        data: [0; DATA_BYTES_MAX],
        data_len,
        pin: [0; PIN_BYTES],
        tries,
        exposed: exposed == 1,
    };
    row.data[..length].copy_from_slice(data);
    row.pin.copy_from_slice(pin);
    Ok((*id, row))
}

#[cfg(test)]
mod tests {
    use cloister_proto::svr2::client::{BackupRequest, ExposeRequest, Request, request};

    use super::*;

    fn filled(count: u8) -> Database {
        let mut db = Database::default();
        for index in 0..count {
            let backup = BackupRequest {
                data: vec![index; 16 + usize::from(index % 33)],
                pin: vec![index; 32],
                max_tries: 1 + u32::from(index),
            };
            db.apply(
                &[index; 16],
                &Request {
                    inner: Some(request::Inner::Backup(backup)),
                },
            )
            .unwrap();
            if index % 2 == 0 {
                let expose = ExposeRequest {
                    data: vec![index; 16 + usize::from(index % 33)],
                };
                db.apply(
                    &[index; 16],
                    &Request {
                        inner: Some(request::Inner::Expose(expose)),
                    },
                )
                .unwrap();
            }
        }
        db
    }

    #[test]
    fn chunks_stream_every_row_once_in_order_and_rebuild_an_equal_database() {
        let source = filled(100);
        let mut target = Database::default();
        let (mut after, mut chunks) = (None, 0);
        loop {
            let chunk = source.stream_rows(after.as_ref(), 1_000);
            assert!(chunk.rows.iter().map(Vec::len).sum::<usize>() <= 1_000);
            after = target.load_rows(after.as_ref(), &chunk.rows).unwrap();
            chunks += 1;
            if chunk.done {
                break;
            }
        }
        assert!(chunks > 5);
        assert_eq!(target.len(), 100);
        assert_eq!(target.hash(), source.hash());
    }

    #[test]
    fn bad_rows_are_refused_and_nothing_is_stored() {
        let source = filled(3);
        let good = source.stream_rows(None, usize::MAX).rows;
        let mut target = Database::default();
        let mut cases: Vec<Vec<Vec<u8>>> = vec![
            vec![good[1].clone(), good[0].clone()],    // out of order
            vec![good[0].clone(), good[0].clone()],    // duplicate
            vec![good[0][..20].to_vec()],              // truncated
            vec![[good[0].clone(), vec![0]].concat()], // trailing byte
        ];
        let mut zero_tries = good[0].clone();
        let len = zero_tries.len();
        zero_tries[len - 2] = 0;
        cases.push(vec![zero_tries]);
        let mut bad_flag = good[0].clone();
        bad_flag[len - 1] = 2;
        cases.push(vec![bad_flag]);
        for case in cases {
            assert!(target.load_rows(None, &case).is_err());
            assert!(target.is_empty());
        }
        // Keys must come after the cursor.
        assert!(target.load_rows(Some(&[5; 16]), &good[..1]).is_err());
    }
}
