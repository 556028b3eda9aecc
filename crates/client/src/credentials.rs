//! HTTP Basic credentials for the WebSocket upgrade.
//!
//! The username is 32 hex characters, the 16-byte backup id. The password is a token a
//! credential service mints: `"<unix_ts>:" + hex(HMAC-SHA256(secret, "<username>:<unix_ts>")[0..10])`.
//! The host checks it; this client only carries it.

use std::fmt;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{Error, Result};

/// Length of a backup id.
pub const BACKUP_ID_BYTES: usize = 16;

/// Bound on a password (the token is about 32 characters; this leaves room).
pub const PASSWORD_BYTES_MAX: usize = 512;

/// Bytes of the HMAC kept in a minted token.
const TOKEN_HMAC_BYTES: usize = 10;

/// A username and password for HTTP Basic auth. `Debug` never shows the password.
///
/// The username is lowercase hex, the one spelling hosts accept; it is also the PIN salt's
/// input (see [`crate::pin`]), so a second spelling would be a different user to the PIN hash.
pub struct Credentials {
    username: String,
    password: Zeroizing<String>,
}

impl Credentials {
    /// Check and wrap credentials. The username must be 32 lowercase hex characters (the
    /// one spelling hosts accept, and the exact bytes the PIN salt uses); the password
    /// must be printable ASCII (it travels in an HTTP header), non-empty and bounded.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Result<Self> {
        let username = username.into();
        let password = Zeroizing::new(password.into());
        if username.len() != 2 * BACKUP_ID_BYTES
            || !username
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(Error::invalid(
                "username",
                format!(
                    "must be {} lowercase hex characters (a 16-byte backup id)",
                    2 * BACKUP_ID_BYTES
                ),
            ));
        }
        if password.is_empty() || password.len() > PASSWORD_BYTES_MAX {
            return Err(Error::invalid(
                "password",
                format!("must be 1..={PASSWORD_BYTES_MAX} bytes"),
            ));
        }
        if !password.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(Error::invalid(
                "password",
                "must be printable ASCII without spaces",
            ));
        }
        Ok(Self { username, password })
    }

    /// Mint credentials the way a credential service does, from the secret it shares with
    /// the host. Clients normally receive credentials instead; this serves development,
    /// tests and services that hold the secret.
    pub fn mint(
        shared_secret: &[u8],
        backup_id: &[u8; BACKUP_ID_BYTES],
        now_unix_secs: u64,
    ) -> Result<Self> {
        let username = hex::encode(backup_id);
        let mut mac = Hmac::<Sha256>::new_from_slice(shared_secret)
            .map_err(|_| Error::invalid("shared_secret", "unusable as an HMAC key"))?;
        mac.update(format!("{username}:{now_unix_secs}").as_bytes());
        let digest = mac.finalize().into_bytes();
        let password = format!(
            "{now_unix_secs}:{}",
            hex::encode(&digest[..TOKEN_HMAC_BYTES])
        );
        Self::new(username, password)
    }

    /// The username: 32 hex characters.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The backup id the username encodes.
    pub fn backup_id(&self) -> [u8; BACKUP_ID_BYTES] {
        let mut backup_id = [0u8; BACKUP_ID_BYTES];
        // new() checked 32 hex characters, so this cannot fail; stay total anyway.
        if hex::decode_to_slice(&self.username, &mut backup_id).is_err() {
            backup_id = [0; BACKUP_ID_BYTES];
        }
        backup_id
    }

    /// The password (a bearer token: do not log it).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The `Authorization` header value.
    pub(crate) fn authorization_header(&self) -> Zeroizing<String> {
        let joined = Zeroizing::new(format!("{}:{}", self.username, self.password.as_str()));
        let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*joined));
        Zeroizing::new(format!("Basic {}", encoded.as_str()))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERNAME: &str = "00112233445566778899aabbccddeeff";

    #[test]
    fn debug_redacts_the_password() {
        let credentials = Credentials::new(USERNAME, "1700000000:0123456789abcdef0123").unwrap();
        let text = format!("{credentials:?}");
        assert!(text.contains(USERNAME));
        assert!(text.contains("<redacted>"));
        assert!(!text.contains("0123456789abcdef0123"));
    }

    // SVR2 client protocol: username is 32 hex chars = 16 bytes.
    #[test]
    fn username_must_be_32_hex_characters() {
        for bad in [
            "",
            "00",
            &USERNAME[..31],
            &format!("{USERNAME}0"),
            "zz112233445566778899aabbccddeeff",
            // Hosts accept only lowercase; refusing here saves a 401 later.
            "AA112233445566778899AABBCCDDEEFF",
        ] {
            let error = Credentials::new(bad, "token").unwrap_err();
            assert!(
                matches!(
                    error,
                    Error::InvalidInput {
                        field: "username",
                        ..
                    }
                ),
                "{bad}"
            );
        }
        let credentials = Credentials::new(USERNAME, "token").unwrap();
        assert_eq!(credentials.backup_id()[0], 0x00);
        assert_eq!(credentials.backup_id()[15], 0xff);
    }

    #[test]
    fn password_must_be_header_safe_and_bounded() {
        for bad in [
            String::new(),
            "a b".into(),
            "a\nb".into(),
            "x".repeat(PASSWORD_BYTES_MAX + 1),
        ] {
            let error = Credentials::new(USERNAME, bad).unwrap_err();
            assert!(matches!(
                error,
                Error::InvalidInput {
                    field: "password",
                    ..
                }
            ));
        }
    }

    #[test]
    fn authorization_header_is_basic_base64() {
        let credentials = Credentials::new(USERNAME, "1:ab").unwrap();
        let header = credentials.authorization_header();
        let encoded = header.strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(decoded, format!("{USERNAME}:1:ab").as_bytes());
    }

    // SVR2 client protocol: password = "<ts>:" + hex(HMAC-SHA256(secret, "<user>:<ts>")[0..10]).
    #[test]
    fn minted_token_has_the_spec_shape() {
        let credentials = Credentials::mint(b"shared secret", &[0xab; 16], 1_700_000_000).unwrap();
        assert_eq!(credentials.username(), "ab".repeat(16));
        let (timestamp, mac) = credentials.password().split_once(':').unwrap();
        assert_eq!(timestamp, "1700000000");
        assert_eq!(mac.len(), 2 * TOKEN_HMAC_BYTES);
        let mut expected = Hmac::<Sha256>::new_from_slice(b"shared secret").unwrap();
        expected.update(format!("{}:1700000000", "ab".repeat(16)).as_bytes());
        assert_eq!(mac, hex::encode(&expected.finalize().into_bytes()[..10]));
        let other = Credentials::mint(b"other secret", &[0xab; 16], 1_700_000_000).unwrap();
        assert_ne!(other.password(), credentials.password());
    }
}
