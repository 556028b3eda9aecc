//! Where a stream stands: the applied index its entries reached and the last row key sent.
//!
//! ```text
//!  cursor = since_index (8, big-endian) · last_key (16, absent before the first row)
//!  empty  = the start of a stream (no entries, no rows yet)
//! ```

use crate::Error;
use crate::db::BackupId;

/// A position in a `ReplicateState` stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// Entries up to this index are reflected in the rows sent.
    pub(crate) since_index: u64,
    /// The last row sent; the next rows come after it.
    pub(crate) last_key: Option<BackupId>,
}

impl Cursor {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut bytes = self.since_index.to_be_bytes().to_vec();
        if let Some(key) = &self.last_key {
            bytes.extend_from_slice(key);
        }
        bytes
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        let malformed = || Error::InvalidArgument("malformed cursor".into());
        let (index, key) = bytes.split_first_chunk::<8>().ok_or_else(malformed)?;
        let last_key = match key.len() {
            0 => None,
            16 => Some(<BackupId>::try_from(key).map_err(|_| malformed())?),
            _ => return Err(malformed()),
        };
        Ok(Self {
            since_index: u64::from_be_bytes(*index),
            last_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_malformed_ones_are_refused() {
        for cursor in [
            Cursor::default(),
            Cursor {
                since_index: 7,
                last_key: None,
            },
            Cursor {
                since_index: u64::MAX,
                last_key: Some([9; 16]),
            },
        ] {
            assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        }
        assert_eq!(Cursor::decode(&[]).unwrap(), Cursor::default());
        for bad in [&[1u8; 7][..], &[1; 9], &[1; 23], &[1; 25]] {
            assert!(Cursor::decode(bad).is_err(), "{} bytes", bad.len());
        }
    }
}
