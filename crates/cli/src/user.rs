//! The user commands: backup, restore, tries, delete.

use cloister_client::pin::Secret;
use cloister_client::session::{RestoreSecretOutcome, backup_secret, restore_secret};
use cloister_client::{
    Client, ConnectOptions, Credentials, EnclaveId, RetryPolicy, TRIES_MAX, TRIES_MIN, TriesOutcome,
};
use cloister_host::auth::{self, AuthSecret};
use cloister_host::unix_now_secs;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::args::{BackupArgs, ClientArgs, RestoreArgs, UserArgs};
use crate::exit::{Failure, Outcome};

/// Longest `--user` accepted.
pub const USER_BYTES_MAX: usize = 256;

/// The backup id for a user name: the first 16 bytes of SHA-256 over a labelled name. A real
/// deployment's credential service assigns ids; the CLI derives them so a name is enough.
pub fn backup_id(user: &str) -> [u8; 16] {
    let digest = Sha256::new()
        .chain_update(b"cloister cli user\0")
        .chain_update(user)
        .finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

fn check_user(user: &str) -> Result<(), Failure> {
    if user.is_empty() || user.len() > USER_BYTES_MAX {
        return Err(Failure::usage(format!(
            "--user must be 1 to {USER_BYTES_MAX} bytes"
        )));
    }
    Ok(())
}

/// Build a client for `user` from the common flags, minting a fresh token.
pub fn client_for(user: &str, args: &ClientArgs) -> Result<Client, Failure> {
    check_user(user)?;
    let secret = AuthSecret::load(&args.auth_secret_file).map_err(|error| {
        Failure::other(anyhow::anyhow!(
            "{error} (start the node first, or pass --auth-secret-file)"
        ))
    })?;
    let username = hex::encode(backup_id(user));
    let password = auth::mint(&secret, &username, unix_now_secs())
        .map_err(|error| Failure::other(anyhow::anyhow!("minting a token: {error}")))?;
    let credentials = Credentials::new(username, password)
        .map_err(|error| Failure::other(anyhow::anyhow!("{error}")))?;
    let enclave_id = match &args.enclave_id {
        Some(hex) => hex
            .parse::<EnclaveId>()
            .map_err(|error| Failure::usage(format!("--enclave-id: {error}")))?,
        None => EnclaveId::new(cloister_attest::sim::measurement()),
    };
    let options = ConnectOptions {
        insecure_allow_simulated: args.allow_simulated,
        ..ConnectOptions::default()
    };
    Client::new(&args.server, enclave_id, credentials, options)
        .map_err(|error| Failure::usage(format!("--server: {error}")))
}

/// `cloister backup`.
pub async fn backup(args: BackupArgs) -> Result<Outcome, Failure> {
    let bytes = hex::decode(args.secret_hex.trim())
        .map_err(|_| Failure::usage("--secret-hex must be hex".into()))?;
    let secret = Secret::from_slice(&bytes).map_err(|_| {
        Failure::usage("--secret-hex must be exactly 32 bytes (64 hex digits)".into())
    })?;
    if !(TRIES_MIN..=TRIES_MAX).contains(&args.max_tries) {
        return Err(Failure::usage(format!(
            "--max-tries must be {TRIES_MIN} to {TRIES_MAX}"
        )));
    }
    if args.pin.trim().is_empty() {
        return Err(Failure::usage("--pin must not be empty".into()));
    }
    let client = client_for(&args.user, &args.client)?;
    backup_secret(
        &client,
        &secret,
        &args.pin,
        args.max_tries,
        &RetryPolicy::default(),
    )
    .await
    .map_err(Failure::from_client)?;
    Ok(Outcome::new(
        format!(
            "backed up a secret for {} with {} tries",
            args.user, args.max_tries
        ),
        json!({"status": "ok", "user": args.user, "tries": args.max_tries}),
    ))
}

/// `cloister restore`.
pub async fn restore(args: RestoreArgs) -> Result<Outcome, Failure> {
    if args.pin.trim().is_empty() {
        return Err(Failure::usage("--pin must not be empty".into()));
    }
    let client = client_for(&args.user, &args.client)?;
    match restore_secret(&client, &args.pin, &RetryPolicy::default())
        .await
        .map_err(Failure::from_client)?
    {
        RestoreSecretOutcome::Ok { secret, tries } => {
            let hex = hex::encode(secret.as_bytes());
            Ok(Outcome::new(
                hex.clone(),
                json!({"status": "ok", "secret_hex": hex, "tries": tries}),
            ))
        }
        RestoreSecretOutcome::PinMismatch { tries_left } => Err(Failure::pin_mismatch(tries_left)),
        RestoreSecretOutcome::Missing => Err(Failure::missing(&args.user)),
    }
}

/// `cloister tries`.
pub async fn tries(args: UserArgs) -> Result<Outcome, Failure> {
    let client = client_for(&args.user, &args.client)?;
    let mut connection = client.connect().await.map_err(Failure::from_client)?;
    let outcome = connection.tries().await.map_err(Failure::from_client)?;
    connection.close().await;
    match outcome {
        TriesOutcome::Ok { tries, exposed } => Ok(Outcome::new(
            format!(
                "{tries} tries left{}",
                if exposed { "" } else { " (not yet exposed)" }
            ),
            json!({"status": "ok", "tries": tries, "exposed": exposed}),
        )),
        TriesOutcome::Missing => Err(Failure::missing(&args.user)),
    }
}

/// `cloister delete`.
pub async fn delete(args: UserArgs) -> Result<Outcome, Failure> {
    let client = client_for(&args.user, &args.client)?;
    let mut connection = client.connect().await.map_err(Failure::from_client)?;
    connection.delete().await.map_err(Failure::from_client)?;
    connection.close().await;
    Ok(Outcome::new(
        format!("deleted the backup of {}", args.user),
        json!({"status": "ok"}),
    ))
}
