//! Per-user connection rate limit: a leaky bucket per backup id.
//!
//! Each admitted connection pours one unit into the user's bucket; the bucket drains at
//! `per_minute` units per minute; a connection is admitted while the bucket holds at most
//! `burst - 1` units. The clock is an argument, so tests need no sleeping.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::auth::BackupId;

/// Default bucket size: connections a user may open at once.
pub const BURST_DEFAULT: u32 = 10;
/// Default drain rate: connections per minute a user may sustain.
pub const PER_MINUTE_DEFAULT: u32 = 10;
/// Default bound on users tracked at once.
pub const USERS_MAX_DEFAULT: usize = 100_000;

/// One connection, in the bucket's fixed-point units (micro-connections).
const UNIT: u128 = 1_000_000;

/// What the limiter decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitError {
    /// The user's bucket is full; one more connection fits after this many seconds.
    Limited {
        /// Whole seconds to wait (at least 1), for `Retry-After`.
        retry_after_secs: u64,
    },
    /// Every tracked user's bucket still holds water and the table is full.
    TableFull,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: u128,
    updated: Instant,
}

/// The per-user leaky buckets, with a bounded table.
#[derive(Debug)]
pub struct RateLimiter {
    capacity: u128,
    per_minute: u128,
    users_max: usize,
    buckets: HashMap<BackupId, Bucket>,
}

impl RateLimiter {
    /// A limiter admitting bursts of `burst` and `per_minute` sustained connections per user,
    /// tracking at most `users_max` users. All three must be at least 1 (the config checks).
    pub fn new(burst: u32, per_minute: u32, users_max: usize) -> Self {
        assert!(burst >= 1 && per_minute >= 1 && users_max >= 1);
        RateLimiter {
            capacity: u128::from(burst) * UNIT,
            per_minute: u128::from(per_minute),
            users_max,
            buckets: HashMap::new(),
        }
    }

    /// Admits one connection for `user` at `now`, or says how long to wait. A refusal
    /// changes nothing.
    pub fn check(&mut self, user: BackupId, now: Instant) -> Result<(), RateLimitError> {
        if !self.buckets.contains_key(&user) && self.buckets.len() >= self.users_max {
            self.evict_drained(now);
            if self.buckets.len() >= self.users_max {
                return Err(RateLimitError::TableFull);
            }
        }
        let bucket = self.buckets.get(&user).copied();
        let level = bucket.map_or(0, |bucket| level_at(bucket, now, self.per_minute));
        if level + UNIT > self.capacity {
            let excess = level + UNIT - self.capacity;
            return Err(RateLimitError::Limited {
                retry_after_secs: self.seconds_to_drain(excess),
            });
        }
        let updated = bucket.map_or(now, |bucket| bucket.updated.max(now));
        self.buckets.insert(
            user,
            Bucket {
                level: level + UNIT,
                updated,
            },
        );
        Ok(())
    }

    /// Users currently tracked.
    pub fn users(&self) -> usize {
        self.buckets.len()
    }

    /// Drops every bucket that has fully drained by `now`. Forgetting such a user changes
    /// no decision, because an empty bucket and no bucket admit the same.
    pub fn evict_drained(&mut self, now: Instant) {
        let per_minute = self.per_minute;
        self.buckets
            .retain(|_, bucket| level_at(*bucket, now, per_minute) > 0);
    }

    fn seconds_to_drain(&self, excess: u128) -> u64 {
        // excess units drain in excess * 60 / (per_minute * UNIT) seconds; round up.
        let denominator = self.per_minute * UNIT;
        let seconds = (excess * 60).div_ceil(denominator).max(1);
        u64::try_from(seconds).unwrap_or(u64::MAX)
    }
}

/// The bucket's level at `now`. A clock that steps backwards drains nothing.
fn level_at(bucket: Bucket, now: Instant, per_minute: u128) -> u128 {
    let elapsed = now.saturating_duration_since(bucket.updated);
    let drained = elapsed.as_micros() * per_minute / 60;
    bucket.level.saturating_sub(drained)
}

/// How long a full bucket of `burst` takes to drain at `per_minute` (for docs and tests).
pub fn full_drain_time(burst: u32, per_minute: u32) -> Duration {
    Duration::from_secs(u64::from(burst) * 60 / u64::from(per_minute.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(byte: u8) -> BackupId {
        BackupId::parse_hex(&hex::encode([byte; 16])).unwrap()
    }

    #[test]
    fn admits_a_burst_then_limits_with_retry_after() {
        // SVR2 client protocol: default burst 10, 10 per minute; 429 with Retry-After.
        let mut limiter = RateLimiter::new(BURST_DEFAULT, PER_MINUTE_DEFAULT, 100);
        let start = Instant::now();
        for _ in 0..10 {
            limiter.check(user(1), start).unwrap();
        }
        let refused = limiter.check(user(1), start);
        assert_eq!(
            refused,
            Err(RateLimitError::Limited {
                retry_after_secs: 6
            })
        );
        // Other users have their own buckets.
        limiter.check(user(2), start).unwrap();
    }

    #[test]
    fn the_bucket_drains_at_the_configured_rate() {
        let mut limiter = RateLimiter::new(10, 10, 100);
        let start = Instant::now();
        for _ in 0..10 {
            limiter.check(user(1), start).unwrap();
        }
        let almost = start + Duration::from_millis(5_999);
        assert_eq!(
            limiter.check(user(1), almost),
            Err(RateLimitError::Limited {
                retry_after_secs: 1
            })
        );
        limiter
            .check(user(1), start + Duration::from_secs(6))
            .unwrap();
        assert!(
            limiter
                .check(user(1), start + Duration::from_secs(6))
                .is_err()
        );
        // After a full drain, a whole burst fits again.
        let later = start + Duration::from_secs(6) + full_drain_time(10, 10);
        for _ in 0..10 {
            limiter.check(user(1), later).unwrap();
        }
    }

    #[test]
    fn a_refusal_changes_nothing() {
        let mut limiter = RateLimiter::new(1, 1, 100);
        let start = Instant::now();
        limiter.check(user(1), start).unwrap();
        for _ in 0..100 {
            assert!(limiter.check(user(1), start).is_err());
        }
        // Refusals poured nothing in: one minute later, the single unit has drained.
        limiter
            .check(user(1), start + Duration::from_secs(60))
            .unwrap();
    }

    #[test]
    fn retry_after_counts_whole_seconds_up() {
        let mut limiter = RateLimiter::new(2, 1, 10);
        let start = Instant::now();
        limiter.check(user(1), start).unwrap();
        limiter.check(user(1), start).unwrap();
        assert_eq!(
            limiter.check(user(1), start),
            Err(RateLimitError::Limited {
                retry_after_secs: 60
            })
        );
        let result = limiter.check(user(1), start + Duration::from_millis(30_500));
        assert_eq!(
            result,
            Err(RateLimitError::Limited {
                retry_after_secs: 30
            })
        );
    }

    #[test]
    fn a_backwards_clock_drains_nothing_and_does_not_panic() {
        let mut limiter = RateLimiter::new(1, 60, 10);
        let later = Instant::now() + Duration::from_secs(100);
        limiter.check(user(1), later).unwrap();
        assert!(
            limiter
                .check(user(1), later - Duration::from_secs(50))
                .is_err()
        );
        limiter
            .check(user(1), later + Duration::from_secs(1))
            .unwrap();
    }

    #[test]
    fn a_full_table_evicts_drained_buckets_then_refuses() {
        let mut limiter = RateLimiter::new(10, 60, 2);
        let start = Instant::now();
        limiter.check(user(1), start).unwrap();
        limiter.check(user(2), start).unwrap();
        assert_eq!(
            limiter.check(user(3), start),
            Err(RateLimitError::TableFull)
        );
        // Tracked users are still served while the table is full.
        limiter.check(user(1), start).unwrap();
        assert_eq!(limiter.users(), 2);
        // User 2's single unit drains in one second; user 1's two units take two.
        let later = start + Duration::from_secs(1);
        limiter.check(user(3), later).unwrap();
        assert_eq!(limiter.users(), 2);
        assert_eq!(
            limiter.check(user(4), later),
            Err(RateLimitError::TableFull)
        );
    }

    #[test]
    fn full_drain_time_matches_the_rate() {
        assert_eq!(full_drain_time(10, 10), Duration::from_secs(60));
        assert_eq!(full_drain_time(10, 600), Duration::from_secs(1));
    }
}
