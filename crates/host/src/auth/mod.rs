//! SVR2 client credentials: HTTP Basic auth whose username is the backup id and whose
//! password is a timestamped HMAC minted by a credential service that shares the host's
//! secret.
//!
//! ```text
//! username = hex(backup_id)                       32 lowercase hex chars (16 bytes)
//! password = "<unix_ts>:" + hex(HMAC-SHA256(secret, "<username>:<unix_ts>")[0..10])
//! ```
//!
//! A token is accepted while `|now - unix_ts| <= max_age`. Parsing is strict (lowercase hex,
//! canonical decimal timestamp, exact lengths), so every accepted token has one spelling,
//! and the signature is compared in constant time.

mod basic;
mod secret;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub use basic::{AUTHORIZATION_BYTES_MAX, BasicCredentials, parse_basic};
pub use secret::{AUTH_SECRET_BYTES, AuthSecret, SecretError};

/// Bytes in a backup id.
pub const BACKUP_ID_BYTES: usize = 16;
/// Bytes of the HMAC kept in a password.
pub const SIGNATURE_BYTES: usize = 10;
/// The default maximum token age (either way from now): 120 days.
pub const TOKEN_AGE_MAX_SECS_DEFAULT: u64 = 120 * 24 * 60 * 60;
/// Digits in the longest `u64`.
const TIMESTAMP_DIGITS_MAX: usize = 20;

/// Why credentials were refused. Every variant answers HTTP 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("missing Authorization header")]
    MissingHeader,
    /// The header is not well-formed HTTP Basic auth.
    #[error("malformed Authorization header: {0}")]
    MalformedHeader(&'static str),
    /// The username is not 32 lowercase hex chars.
    #[error("malformed username: {0}")]
    MalformedUsername(&'static str),
    /// The password is not `<unix_ts>:<20 lowercase hex chars>`.
    #[error("malformed password: {0}")]
    MalformedPassword(&'static str),
    /// The signature does not match (wrong secret, wrong user, or tampering).
    #[error("bad signature")]
    BadSignature,
    /// The token is older than the maximum age.
    #[error("token expired")]
    Expired,
    /// The token's timestamp is further in the future than the maximum age.
    #[error("token timestamp is in the future")]
    FromFuture,
}

/// The 16-byte backup id a client authenticated as. Only [`verify`] (or an operator's explicit
/// [`BackupId::parse_hex`]) makes one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackupId([u8; BACKUP_ID_BYTES]);

impl BackupId {
    /// Parses 32 lowercase hex chars.
    pub fn parse_hex(text: &str) -> Result<Self, AuthError> {
        decode_lower_hex::<BACKUP_ID_BYTES>(text)
            .map(BackupId)
            .map_err(AuthError::MalformedUsername)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; BACKUP_ID_BYTES] {
        &self.0
    }

    /// Lowercase hex, as in a username.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for BackupId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "BackupId({})", self.to_hex())
    }
}

/// Mints a password for `username` at `now_unix_secs`, as a credential service would.
///
/// Refuses a username that [`verify`] would refuse, so a minted token always verifies.
pub fn mint(secret: &AuthSecret, username: &str, now_unix_secs: u64) -> Result<String, AuthError> {
    BackupId::parse_hex(username)?;
    let signature = sign(secret, username, now_unix_secs);
    Ok(format!("{now_unix_secs}:{}", hex::encode(signature)))
}

/// Checks a username/password pair and yields the backup id it proves.
///
/// The token must be signed with `secret` for exactly this username, and its timestamp must
/// be within `max_age_secs` of `now_unix_secs` in either direction.
pub fn verify(
    secret: &AuthSecret,
    username: &str,
    password: &str,
    now_unix_secs: u64,
    max_age_secs: u64,
) -> Result<BackupId, AuthError> {
    let backup_id = BackupId::parse_hex(username)?;
    let (timestamp_text, signature_text) = password
        .split_once(':')
        .ok_or(AuthError::MalformedPassword("no ':'"))?;
    let timestamp = parse_timestamp(timestamp_text)?;
    let given = decode_lower_hex::<SIGNATURE_BYTES>(signature_text)
        .map_err(AuthError::MalformedPassword)?;
    let expected = sign(secret, username, timestamp);
    if !bool::from(expected.ct_eq(&given)) {
        return Err(AuthError::BadSignature);
    }
    if timestamp > now_unix_secs && timestamp - now_unix_secs > max_age_secs {
        return Err(AuthError::FromFuture);
    }
    if now_unix_secs > timestamp && now_unix_secs - timestamp > max_age_secs {
        return Err(AuthError::Expired);
    }
    Ok(backup_id)
}

/// HMAC-SHA256(secret, "<username>:<timestamp>"), truncated.
fn sign(secret: &AuthSecret, username: &str, timestamp: u64) -> [u8; SIGNATURE_BYTES] {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        unreachable!("HMAC accepts keys of any length");
    };
    mac.update(username.as_bytes());
    mac.update(b":");
    mac.update(timestamp.to_string().as_bytes());
    let tag = mac.finalize().into_bytes();
    let mut truncated = [0u8; SIGNATURE_BYTES];
    truncated.copy_from_slice(&tag[..SIGNATURE_BYTES]);
    truncated
}

/// A canonical decimal `u64`: digits only, no sign, no leading zero (except "0" itself), so
/// the text signed is the text received.
fn parse_timestamp(text: &str) -> Result<u64, AuthError> {
    if text.is_empty() || text.len() > TIMESTAMP_DIGITS_MAX {
        return Err(AuthError::MalformedPassword("timestamp length"));
    }
    if !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(AuthError::MalformedPassword("timestamp is not decimal"));
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(AuthError::MalformedPassword("timestamp has a leading zero"));
    }
    text.parse::<u64>()
        .map_err(|_| AuthError::MalformedPassword("timestamp overflows"))
}

/// Exactly `2 * N` lowercase hex chars.
fn decode_lower_hex<const N: usize>(text: &str) -> Result<[u8; N], &'static str> {
    if text.len() != 2 * N {
        return Err("wrong length");
    }
    if !text
        .bytes()
        .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err("not lowercase hex");
    }
    let mut bytes = [0u8; N];
    hex::decode_to_slice(text, &mut bytes).map_err(|_| "not hex")?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "00112233445566778899aabbccddeeff";
    const NOW: u64 = 1_700_000_000;
    const DAY: u64 = 24 * 60 * 60;

    fn secret() -> AuthSecret {
        AuthSecret::from_bytes([7; AUTH_SECRET_BYTES])
    }

    #[test]
    fn a_minted_token_verifies_to_its_backup_id() {
        let password = mint(&secret(), USER, NOW).unwrap();
        let id = verify(&secret(), USER, &password, NOW, TOKEN_AGE_MAX_SECS_DEFAULT).unwrap();
        assert_eq!(id.to_hex(), USER);
        assert_eq!(id.as_bytes()[0], 0x00);
        assert_eq!(id.as_bytes()[15], 0xff);
        let (timestamp, signature) = password.split_once(':').unwrap();
        assert_eq!(timestamp, NOW.to_string());
        assert_eq!(signature.len(), 2 * SIGNATURE_BYTES);
    }

    #[test]
    fn the_signature_is_truncated_hmac_sha256_of_user_and_timestamp() {
        // SVR2 client protocol: password = ts + ":" + hex(HMAC-SHA256(secret, user:ts)[0..10]).
        let mut mac = Hmac::<Sha256>::new_from_slice(&[7; 32]).unwrap();
        mac.update(format!("{USER}:{NOW}").as_bytes());
        let full = mac.finalize().into_bytes();
        let expected = format!("{NOW}:{}", hex::encode(&full[..10]));
        assert_eq!(mint(&secret(), USER, NOW).unwrap(), expected);
    }

    #[test]
    fn a_different_secret_or_user_is_refused() {
        let password = mint(&secret(), USER, NOW).unwrap();
        let other_secret = AuthSecret::from_bytes([8; AUTH_SECRET_BYTES]);
        let result = verify(&other_secret, USER, &password, NOW, DAY);
        assert_eq!(result, Err(AuthError::BadSignature));
        let other_user = "ffeeddccbbaa99887766554433221100";
        let result = verify(&secret(), other_user, &password, NOW, DAY);
        assert_eq!(result, Err(AuthError::BadSignature));
    }

    #[test]
    fn a_changed_signature_or_timestamp_is_refused() {
        let password = mint(&secret(), USER, NOW).unwrap();
        let mut flipped = password.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(
            verify(&secret(), USER, &flipped, NOW, DAY),
            Err(AuthError::BadSignature)
        );
        let shifted = password.replacen(&NOW.to_string(), &(NOW + 1).to_string(), 1);
        assert_eq!(
            verify(&secret(), USER, &shifted, NOW, DAY),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn age_is_bounded_in_both_directions() {
        let max_age = 120 * DAY;
        let password = mint(&secret(), USER, NOW).unwrap();
        assert!(verify(&secret(), USER, &password, NOW + max_age, max_age).is_ok());
        assert!(verify(&secret(), USER, &password, NOW - max_age, max_age).is_ok());
        let late = verify(&secret(), USER, &password, NOW + max_age + 1, max_age);
        assert_eq!(late, Err(AuthError::Expired));
        let early = verify(&secret(), USER, &password, NOW - max_age - 1, max_age);
        assert_eq!(early, Err(AuthError::FromFuture));
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let password = mint(&secret(), USER, u64::MAX).unwrap();
        assert_eq!(
            verify(&secret(), USER, &password, 0, DAY),
            Err(AuthError::FromFuture)
        );
        let password = mint(&secret(), USER, 0).unwrap();
        assert_eq!(
            verify(&secret(), USER, &password, u64::MAX, DAY),
            Err(AuthError::Expired)
        );
        assert!(verify(&secret(), USER, &password, u64::MAX, u64::MAX).is_ok());
    }

    #[test]
    fn malformed_usernames_are_refused() {
        let password = mint(&secret(), USER, NOW).unwrap();
        let upper = USER.to_uppercase();
        let too_short = &USER[..30];
        let too_long = format!("{USER}00");
        let not_hex = format!("{}zz", &USER[..30]);
        for username in ["", too_short, &too_long, &upper, &not_hex, "é"] {
            let result = verify(&secret(), username, &password, NOW, DAY);
            assert!(
                matches!(result, Err(AuthError::MalformedUsername(_))),
                "{username}"
            );
        }
        assert!(matches!(
            mint(&secret(), &upper, NOW),
            Err(AuthError::MalformedUsername(_))
        ));
    }

    #[test]
    fn malformed_passwords_are_refused() {
        let signature = mint(&secret(), USER, NOW)
            .unwrap()
            .split_once(':')
            .unwrap()
            .1
            .to_owned();
        let cases = [
            String::new(),
            NOW.to_string(),
            format!(":{signature}"),
            format!("0{NOW}:{signature}"),
            format!("+{NOW}:{signature}"),
            format!("-1:{signature}"),
            format!("{NOW} :{signature}"),
            format!("99999999999999999999:{signature}"),
            format!("123456789012345678901:{signature}"),
            format!("{NOW}:"),
            format!("{NOW}:{}", &signature[..18]),
            format!("{NOW}:{signature}00"),
            format!("{NOW}:{}", signature.to_uppercase()),
            format!("{NOW}:{signature}:extra"),
        ];
        for password in &cases {
            let result = verify(&secret(), USER, password, NOW, DAY);
            assert!(
                matches!(result, Err(AuthError::MalformedPassword(_))),
                "{password:?}"
            );
        }
    }

    #[test]
    fn the_signature_check_uses_constant_time_equality() {
        // `subtle`'s ct_eq is what `verify` calls; equal and unequal inputs of one length are
        // both decided without an early exit on the first differing byte.
        let a = [1u8; SIGNATURE_BYTES];
        let mut b = a;
        assert!(bool::from(a.ct_eq(&b)));
        b[SIGNATURE_BYTES - 1] ^= 1;
        assert!(!bool::from(a.ct_eq(&b)));
        let source = include_str!("mod.rs");
        let verify_body = source.split("pub fn verify(").nth(1).unwrap();
        let verify_body = verify_body.split("\nfn sign(").next().unwrap();
        assert!(verify_body.contains("ct_eq"));
        assert!(!verify_body.contains("expected == given"));
    }

    #[test]
    fn backup_id_debug_is_hex() {
        let id = BackupId::parse_hex(USER).unwrap();
        assert_eq!(format!("{id:?}"), format!("BackupId({USER})"));
    }
}
