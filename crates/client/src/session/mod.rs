//! Whole flows across fresh connections, with the retry rules the protocol requires.
//!
//! ```text
//!  store_secret:  Backup ──retryable error──▶ new connection, Backup again (bounded)
//!                   │ OK: StoredSecret (never Backup this secret again)
//!                   ▼
//!  StoredSecret::expose:  Expose ──retryable error──▶ new connection, Expose again
//!                   │ OK                 │ ERROR: the row is gone or replaced
//!                   ▼                    ▼
//!                 done           Error::ExposeRejected
//! ```
//!
//! **Why Backup is never retried once it succeeded.** A Backup resets the tries counter and
//! leaves the row unexposed, so Restore answers MISSING until Expose. If a client repeated
//! Backup after an Expose failure, an operator could let Expose through, drop its reply,
//! guess PINs until the tries are nearly gone, and then let the client's repeated Backup
//! reset the counter: unlimited guesses. Repeating Expose is harmless (it neither resets
//! tries nor changes data), so after the first successful Backup only Expose is retried.
//! [`StoredSecret`] is the proof that Backup succeeded; it offers only `expose`, and a
//! caller who gets an error from it keeps it to retry later.
//!
//! Retrying Backup *before* one succeeded is safe: until Expose, the row answers MISSING to
//! every Restore, so nobody can have guessed against it.
//!
//! **Restore** retries only where no try can be spent twice: failures before the request was
//! sent, and close 4014 (the protocol guarantees nothing changed).
//!
//! Every retry opens a new connection, and every phase is bounded by
//! [`RetryPolicy::attempts_max`].

mod flows;

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use zeroize::Zeroizing;

use crate::connection::{Client, Connection};
use crate::pin::PinHash;
use crate::{Error, Result};

pub use flows::{RestoreSecretOutcome, StoredSecret, backup_secret, restore_secret, store_secret};

/// Opens fresh, attested connections. [`Client`] is one; tests and apps may bring others.
pub trait Connector {
    /// Open a new connection.
    fn connect(&self) -> impl Future<Output = Result<Connection>> + Send;
}

impl Connector for Client {
    fn connect(&self) -> impl Future<Output = Result<Connection>> + Send {
        Client::connect(self)
    }
}

/// How often and how patiently to retry. Delays double from `backoff_initial` up to
/// `backoff_max`, with up to 50% random jitter added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per phase, the first included (0 behaves as 1).
    pub attempts_max: u32,
    /// Delay before the second attempt.
    pub backoff_initial: Duration,
    /// Largest delay. A server `Retry-After` longer than this ends the retries.
    pub backoff_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts_max: 5,
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn no_retries() -> Self {
        Self {
            attempts_max: 1,
            ..Self::default()
        }
    }

    /// The delay after failed attempt number `attempt` (1-based), or `None` to give up.
    fn delay(&self, attempt: u32, error: &Error) -> Option<Duration> {
        if attempt >= self.attempts_max {
            return None;
        }
        if let Error::RateLimited {
            retry_after: Some(retry_after),
        } = error
        {
            return (*retry_after <= self.backoff_max).then_some(*retry_after);
        }
        let doublings = attempt.saturating_sub(1).min(16);
        let base = self
            .backoff_initial
            .saturating_mul(1 << doublings)
            .min(self.backoff_max);
        let jitter_millis = rand::thread_rng().gen_range(0..=base.as_millis() / 2);
        let jitter = Duration::from_millis(u64::try_from(jitter_millis).unwrap_or(0));
        Some(base.saturating_add(jitter))
    }
}

/// Counts attempts of one phase and sleeps between them.
struct Attempts<'a> {
    policy: &'a RetryPolicy,
    failed: u32,
}

impl<'a> Attempts<'a> {
    fn new(policy: &'a RetryPolicy) -> Self {
        Self { policy, failed: 0 }
    }

    /// After a failure: sleep and return `Ok` to try again, or hand the error back when it
    /// may not be retried or the attempts are spent.
    async fn after_failure(&mut self, error: Error, may_retry: bool) -> Result<()> {
        self.failed += 1;
        let delay = self.policy.delay(self.failed, &error).filter(|_| may_retry);
        let Some(delay) = delay else {
            return Err(error);
        };
        tracing::debug!(attempt = self.failed, %error, ?delay, "retrying on a new connection");
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

/// Derive a PIN hash on a blocking thread: Argon2id would stall an async worker.
async fn derive_off_thread(pin: &str, username: &str, group_id: u64) -> Result<PinHash> {
    let pin = Zeroizing::new(pin.to_owned());
    let username = username.to_owned();
    match tokio::task::spawn_blocking(move || PinHash::derive(&pin, &username, group_id)).await {
        Ok(result) => result,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => Err(Error::Transport(
            "the PIN hashing task was cancelled".into(),
        )),
    }
}

/// PIN keys for the group of the first connection. Every later connection must attest the
/// same group: a secret sealed for one group is no use in another.
#[derive(Default)]
struct GroupKeys {
    derived: Option<(u64, PinHash)>,
}

impl GroupKeys {
    /// The keys for `connection`'s group, derived on first use.
    async fn for_connection(&mut self, connection: &Connection, pin: &str) -> Result<&PinHash> {
        let found = connection.group_id();
        if let Some((expected, _)) = &self.derived {
            if *expected != found {
                return Err(Error::GroupChanged {
                    expected: *expected,
                    found,
                });
            }
        } else {
            let keys = derive_off_thread(pin, connection.username(), found).await?;
            self.derived = Some((found, keys));
        }
        match &self.derived {
            Some((_, keys)) => Ok(keys),
            None => Err(Error::invalid("pin", "keys were not derived")),
        }
    }

    /// The keys, once derived.
    fn keys(&self) -> Option<&PinHash> {
        self.derived.as_ref().map(|(_, keys)| keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_bound_and_stop_after_the_last_attempt() {
        let policy = RetryPolicy {
            attempts_max: 6,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(350),
        };
        let error = Error::Transport("reset".into());
        for (attempt, base_millis) in [(1, 100), (2, 200), (3, 350), (5, 350)] {
            let delay = policy.delay(attempt, &error).unwrap();
            let base = Duration::from_millis(base_millis);
            assert!(
                delay >= base && delay <= base + base / 2,
                "{attempt}: {delay:?}"
            );
        }
        assert_eq!(policy.delay(6, &error), None);
        assert_eq!(RetryPolicy::no_retries().delay(1, &error), None);
    }

    #[test]
    fn retry_after_is_honoured_within_the_bound() {
        let policy = RetryPolicy::default();
        let soon = Error::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(policy.delay(1, &soon), Some(Duration::from_secs(2)));
        let late = Error::RateLimited {
            retry_after: Some(Duration::from_secs(600)),
        };
        assert_eq!(policy.delay(1, &late), None);
    }
}
