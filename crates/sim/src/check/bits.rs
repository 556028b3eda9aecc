//! A set of attempt positions, any size: the "linearized so far" half of the search's memo.

/// Positions `0..len` as bits in 64-bit words. Ordered, so it can key a `BTreeSet`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Bits(Vec<u64>);

const WORD_BITS: usize = 64;

impl Bits {
    /// The empty set over positions `0..len`.
    pub(crate) fn new(len: usize) -> Self {
        Self(vec![0; len.div_ceil(WORD_BITS)])
    }

    pub(crate) fn contains(&self, position: usize) -> bool {
        self.0
            .get(position / WORD_BITS)
            .is_some_and(|word| word & (1 << (position % WORD_BITS)) != 0)
    }

    pub(crate) fn insert(&mut self, position: usize) {
        if let Some(word) = self.0.get_mut(position / WORD_BITS) {
            *word |= 1 << (position % WORD_BITS);
        }
    }

    /// True when every position in `other` is in `self`.
    pub(crate) fn contains_all(&self, other: &Bits) -> bool {
        self.0
            .iter()
            .zip(&other.0)
            .all(|(mine, theirs)| theirs & !mine == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_span_several_words() {
        let mut bits = Bits::new(130);
        assert_eq!(bits.0.len(), 3);
        for position in [0, 63, 64, 129] {
            assert!(!bits.contains(position));
            bits.insert(position);
            assert!(bits.contains(position));
        }
        assert_eq!(bits.0.iter().map(|word| word.count_ones()).sum::<u32>(), 4);
        let mut fewer = Bits::new(130);
        fewer.insert(64);
        assert!(bits.contains_all(&fewer));
        assert!(!fewer.contains_all(&bits));
        // Out of range: ignored, never a panic.
        bits.insert(500);
        assert!(!bits.contains(500));
    }
}
