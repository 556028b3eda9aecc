//! The run's one source of randomness: a ChaCha stream from the seed. Every choice the
//! simulator makes (latencies, faults, client operations, the cores' own `Env` seeds) is
//! drawn from it, in a fixed order, so a seed replays exactly.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// Seeded, deterministic randomness.
pub struct SimRng(ChaCha8Rng);

impl SimRng {
    /// The stream for `seed`.
    pub fn new(seed: u64) -> Self {
        SimRng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// A uniform `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        // Rejection keeps it uniform; the loop ends with probability 1 and fast.
        let zone = u64::MAX - u64::MAX % bound;
        loop {
            let value = self.0.next_u64();
            if value < zone {
                return value % bound;
            }
        }
    }

    /// Uniform in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high.saturating_sub(low).saturating_add(1))
    }

    /// True with probability `per_million / 1_000_000`.
    pub fn chance(&mut self, per_million: u32) -> bool {
        self.below(1_000_000) < u64::from(per_million)
    }

    /// An index into a slice of `len` (`len` must be non-zero).
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// `count` random bytes.
    pub fn bytes(&mut self, count: usize) -> Vec<u8> {
        let mut bytes = vec![0; count];
        self.0.fill_bytes(&mut bytes);
        bytes
    }

    /// A 32-byte seed for something that needs its own generator (a core's `Env`).
    pub fn seed32(&mut self) -> [u8; 32] {
        let mut seed = [0; 32];
        self.0.fill_bytes(&mut seed);
        seed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_stream_and_bounds_hold() {
        let (mut a, mut b) = (SimRng::new(7), SimRng::new(7));
        for _ in 0..1000 {
            let value = a.between(3, 9);
            assert_eq!(value, b.between(3, 9));
            assert!((3..=9).contains(&value));
        }
        assert_ne!(SimRng::new(7).next_u64(), SimRng::new(8).next_u64());
        assert_eq!(SimRng::new(1).below(0), 0);
    }
}
