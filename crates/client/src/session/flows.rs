//! The flows: two-phase backup (Backup until it succeeds, then Expose until it succeeds),
//! and restore.

use super::{Attempts, Connector, GroupKeys, RetryPolicy};
use crate::operations::{ExposeOutcome, RestoreOutcome, TRIES_MAX, TRIES_MIN};
use crate::pin::{EncryptedSecret, Secret, normalize};
use crate::{Error, Result};

/// Proof that a Backup of this secret succeeded. Offers only [`StoredSecret::expose`], so
/// code holding one cannot Backup the same secret again by mistake.
#[derive(Debug)]
pub struct StoredSecret {
    group_id: u64,
    data: EncryptedSecret,
}

impl StoredSecret {
    /// The group the secret was backed up to.
    pub fn group_id(&self) -> u64 {
        self.group_id
    }

    /// Expose the stored backup, retrying Expose (never Backup) on fresh connections.
    /// On error, keep `self` and call again later.
    pub async fn expose<C: Connector>(&self, connector: &C, retry: &RetryPolicy) -> Result<()> {
        let mut attempts = Attempts::new(retry);
        loop {
            let error = match self.expose_once(connector).await {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            let may_retry = error.is_retryable();
            attempts.after_failure(error, may_retry).await?;
        }
    }

    async fn expose_once<C: Connector>(&self, connector: &C) -> Result<()> {
        let mut connection = connector.connect().await?;
        if connection.group_id() != self.group_id {
            return Err(Error::GroupChanged {
                expected: self.group_id,
                found: connection.group_id(),
            });
        }
        let outcome = connection.expose(self.data.as_bytes()).await?;
        connection.close().await;
        match outcome {
            ExposeOutcome::Ok => Ok(()),
            ExposeOutcome::Error => Err(Error::ExposeRejected),
        }
    }
}

/// Seal `secret` under `pin` and Backup it with `max_tries` guesses, retrying Backup on
/// fresh connections while no Backup has succeeded (see [`crate::session`] for why that is
/// the only time Backup may repeat). Then call [`StoredSecret::expose`].
///
/// The PIN hash is derived once, for the group the first connection attests.
pub async fn store_secret<C: Connector>(
    connector: &C,
    secret: &Secret,
    pin: &str,
    max_tries: u32,
    retry: &RetryPolicy,
) -> Result<StoredSecret> {
    if !(TRIES_MIN..=TRIES_MAX).contains(&max_tries) {
        return Err(Error::invalid(
            "max_tries",
            format!("is {max_tries}; must be {TRIES_MIN}..={TRIES_MAX}"),
        ));
    }
    normalize(pin)?;
    let mut keys = GroupKeys::default();
    let mut attempts = Attempts::new(retry);
    loop {
        let error = match backup_once(connector, &mut keys, secret, pin, max_tries).await {
            Ok(stored) => return Ok(stored),
            Err(error) => error,
        };
        let may_retry = error.is_retryable();
        attempts.after_failure(error, may_retry).await?;
    }
}

async fn backup_once<C: Connector>(
    connector: &C,
    keys: &mut GroupKeys,
    secret: &Secret,
    pin: &str,
    max_tries: u32,
) -> Result<StoredSecret> {
    let mut connection = connector.connect().await?;
    let pin_hash = keys.for_connection(&connection, pin).await?;
    // Sealing is deterministic (fixed nonce), so every attempt stores the same bytes.
    let data = pin_hash.encrypt_secret(secret)?;
    connection
        .backup(data.as_bytes(), pin_hash.access_key(), max_tries)
        .await?;
    let group_id = connection.group_id();
    connection.close().await;
    Ok(StoredSecret { group_id, data })
}

/// Backup then Expose: the whole two-phase flow. If Expose keeps failing this returns its
/// error, and the backup stays unexposed (Restore answers MISSING). To retry Expose later
/// without a second Backup, use [`store_secret`] and keep the [`StoredSecret`].
pub async fn backup_secret<C: Connector>(
    connector: &C,
    secret: &Secret,
    pin: &str,
    max_tries: u32,
    retry: &RetryPolicy,
) -> Result<()> {
    store_secret(connector, secret, pin, max_tries, retry)
        .await?
        .expose(connector, retry)
        .await
}

/// What [`restore_secret`] found.
#[derive(Debug)]
pub enum RestoreSecretOutcome {
    /// The PIN matched and the secret opened.
    Ok {
        /// The secret.
        secret: Secret,
        /// Tries left (a success does not reset them).
        tries: u32,
    },
    /// No exposed backup, or the last try was just used up.
    Missing,
    /// Wrong PIN; one try was used.
    PinMismatch {
        /// Tries left.
        tries_left: u32,
    },
}

/// Restore with `pin` and open the secret. Retries on fresh connections only where no try
/// can be spent twice: failures before the request was sent, and close 4014.
pub async fn restore_secret<C: Connector>(
    connector: &C,
    pin: &str,
    retry: &RetryPolicy,
) -> Result<RestoreSecretOutcome> {
    normalize(pin)?;
    let mut keys = GroupKeys::default();
    let mut attempts = Attempts::new(retry);
    let outcome = loop {
        let mut sent = false;
        let error = match restore_once(connector, &mut keys, pin, &mut sent).await {
            Ok(outcome) => break outcome,
            Err(error) => error,
        };
        let may_retry = error.is_retryable() && (!sent || error.guarantees_no_state_change());
        attempts.after_failure(error, may_retry).await?;
    };
    match outcome {
        RestoreOutcome::Ok { data, tries } => {
            let Some(pin_hash) = keys.keys() else {
                return Err(Error::invalid("pin", "keys were not derived"));
            };
            let secret = pin_hash.decrypt_secret(&data)?;
            Ok(RestoreSecretOutcome::Ok { secret, tries })
        }
        RestoreOutcome::Missing => Ok(RestoreSecretOutcome::Missing),
        RestoreOutcome::PinMismatch { tries_left } => {
            Ok(RestoreSecretOutcome::PinMismatch { tries_left })
        }
    }
}

async fn restore_once<C: Connector>(
    connector: &C,
    keys: &mut GroupKeys,
    pin: &str,
    sent: &mut bool,
) -> Result<RestoreOutcome> {
    let mut connection = connector.connect().await?;
    let pin_hash = keys.for_connection(&connection, pin).await?;
    *sent = true;
    let outcome = connection.restore(pin_hash.access_key()).await?;
    connection.close().await;
    Ok(outcome)
}
