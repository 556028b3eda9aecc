//! PIN handling: the server never sees a PIN.
//!
//! ```text
//!  pin ──normalize──▶ text ─┐
//!  username ──HKDF-SHA256(salt = group_id as 8 BE bytes, info = "")──▶ 32-byte salt ─┐
//!                           └──Argon2id(m = 16 MiB, t = 32, p = 1) ◀────────────────┘
//!                                       │ 64 bytes
//!                   ┌───────────────────┴──────────────────┐
//!          bytes 0..32: encryption key             bytes 32..64: access key
//!          secret (32) ──AES-256-GCM-SIV──▶ data (48)   = BackupRequest.pin / RestoreRequest.pin
//! ```
//!
//! - **Normalization** is defined in [`normalize`] (trim, fold digits of common scripts).
//! - **Salt**: HKDF-SHA256 extract with the group id (8 big-endian bytes) as salt and the
//!   username's UTF-8 bytes (the 32 hex characters exactly as given) as input key material,
//!   expanded with an **empty info string** to 32 bytes. A PIN hash therefore belongs to one
//!   user in one group: the same PIN for another user or group gives unrelated keys.
//! - **Argon2id** version 0x13, memory 16384 KiB, 32 passes, 1 lane, 64-byte output.
//! - **Secret encryption**: see [`PinHash::encrypt_secret`].
//!
//! Key material lives in zeroizing buffers, is not `Clone`, and `Debug` prints `<redacted>`.

mod normalize;
mod secret;

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{Error, Result};

pub use normalize::{DIGIT_ZEROS, PIN_TEXT_BYTES_MAX, normalize};
pub use secret::{ENCRYPTED_SECRET_BYTES, EncryptedSecret, SECRET_BYTES, SECRET_LABEL, Secret};

/// Argon2id memory, in KiB (16 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 16 * 1024;
/// Argon2id passes.
pub const ARGON2_PASSES: u32 = 32;
/// Argon2id lanes.
pub const ARGON2_LANES: u32 = 1;
/// Length of the Argon2id output: encryption key then access key.
pub const PIN_HASH_BYTES: usize = 64;
/// Length of the salt HKDF derives.
pub const SALT_BYTES: usize = 32;
/// The HKDF info string for the salt: empty.
pub const SALT_INFO: &[u8] = b"";

const KEY_BYTES: usize = PIN_HASH_BYTES / 2;
const _: () = assert!(KEY_BYTES == crate::operations::PIN_BYTES);

/// The two keys a PIN yields for one user in one group.
pub struct PinHash {
    encryption_key: Zeroizing<[u8; KEY_BYTES]>,
    access_key: Zeroizing<[u8; KEY_BYTES]>,
}

/// The Argon2id salt for `username` in group `group_id`.
pub fn salt(username: &str, group_id: u64) -> [u8; SALT_BYTES] {
    let mut salt = [0u8; SALT_BYTES];
    let hkdf = Hkdf::<Sha256>::new(Some(&group_id.to_be_bytes()), username.as_bytes());
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
    if hkdf.expand(SALT_INFO, &mut salt).is_err() {
        unreachable!("HKDF-SHA256 expands 32 bytes");
    }
    salt
}

impl PinHash {
    /// Normalize `pin` and derive its keys for `username` in group `group_id` (the group id
    /// comes from the attested group config, see [`crate::Connection::group_id`]).
    ///
    /// Slow on purpose (Argon2id over 16 MiB, 32 passes): call it off an async executor's
    /// worker threads, as [`crate::session`] does.
    pub fn derive(pin: &str, username: &str, group_id: u64) -> Result<PinHash> {
        let normalized = normalize(pin)?;
        let params = Params::new(
            ARGON2_MEMORY_KIB,
            ARGON2_PASSES,
            ARGON2_LANES,
            Some(PIN_HASH_BYTES),
        )
        .map_err(|error| Error::invalid("argon2 parameters", error.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut output = Zeroizing::new([0u8; PIN_HASH_BYTES]);
        argon2
            .hash_password_into(
                normalized.as_bytes(),
                &salt(username, group_id),
                output.as_mut(),
            )
            .map_err(|error| Error::invalid("pin", error.to_string()))?;
        let mut encryption_key = Zeroizing::new([0u8; KEY_BYTES]);
        let mut access_key = Zeroizing::new([0u8; KEY_BYTES]);
        encryption_key.copy_from_slice(&output[..KEY_BYTES]);
        access_key.copy_from_slice(&output[KEY_BYTES..]);
        Ok(PinHash {
            encryption_key,
            access_key,
        })
    }

    /// The value of the `pin` field in Backup and Restore requests.
    pub fn access_key(&self) -> &[u8; KEY_BYTES] {
        &self.access_key
    }

    /// Encrypt the user's secret into the 48 bytes a Backup stores: AES-256-GCM-SIV under
    /// the encryption key, with a fixed all-zero nonce and the associated data
    /// [`SECRET_LABEL`]; ciphertext (32 bytes) then tag (16 bytes).
    ///
    /// The fixed nonce is safe: the key is unique to (PIN, username, group), and GCM-SIV is
    /// nonce-misuse resistant, so reusing a nonce under one key reveals at most whether two
    /// plaintexts are equal. Sealing is therefore deterministic, which lets a retried Backup
    /// store exactly the same bytes.
    pub fn encrypt_secret(&self, secret: &Secret) -> Result<EncryptedSecret> {
        secret::encrypt(&self.encryption_key, secret)
    }

    /// Decrypt restored data, checking its tag. Fails with [`Error::SecretIntegrity`] when the
    /// data was not made by [`PinHash::encrypt_secret`] under this PIN, user and group.
    pub fn decrypt_secret(&self, data: &[u8]) -> Result<Secret> {
        secret::decrypt(&self.encryption_key, data)
    }
}

impl fmt::Debug for PinHash {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("PinHash(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "00112233445566778899aabbccddeeff";

    #[test]
    fn salt_depends_on_user_and_group_only() {
        assert_eq!(salt(USER, 1), salt(USER, 1));
        assert_ne!(salt(USER, 1), salt(USER, 2));
        assert_ne!(salt(USER, 1), salt("ffeeddccbbaa99887766554433221100", 1));
        // The username is used exactly as given.
        assert_ne!(salt(USER, 1), salt(&USER.to_uppercase(), 1));
    }

    // Known-answer check of the salt: HKDF-SHA256 (RFC 5869) with salt = 8 BE bytes of the
    // group id, ikm = username, info = "". Computed independently from HMAC-SHA256.
    #[test]
    fn salt_is_hkdf_sha256_with_empty_info() {
        use hmac::{Hmac, Mac};
        let mut extract = Hmac::<Sha256>::new_from_slice(&7u64.to_be_bytes()).unwrap();
        extract.update(USER.as_bytes());
        let prk = extract.finalize().into_bytes();
        let mut expand = Hmac::<Sha256>::new_from_slice(&prk).unwrap();
        expand.update(&[0x01]);
        assert_eq!(
            salt(USER, 7).as_slice(),
            expand.finalize().into_bytes().as_slice()
        );
    }

    // SVR2 client protocol: client-side PIN handling. Argon2 with the real parameters is
    // slow in debug builds, so all hashing checks share one test.
    #[test]
    fn pin_hash_is_stable_and_separates_pin_user_and_group() {
        let first = PinHash::derive("1234", USER, 1).unwrap();
        let again = PinHash::derive(" \u{0661}\u{0662}\u{0663}\u{0664} ", USER, 1).unwrap();
        assert_eq!(first.access_key(), again.access_key());
        assert_eq!(*first.encryption_key, *again.encryption_key);
        assert_ne!(first.access_key(), &*first.encryption_key);
        let others = [
            PinHash::derive("1235", USER, 1).unwrap(),
            PinHash::derive("1234", "ffeeddccbbaa99887766554433221100", 1).unwrap(),
            PinHash::derive("1234", USER, 2).unwrap(),
        ];
        for other in &others {
            assert_ne!(other.access_key(), first.access_key());
            assert_ne!(*other.encryption_key, *first.encryption_key);
        }
        // The key from one PIN cannot open a secret sealed under another.
        let secret = Secret::new([3; SECRET_BYTES]);
        let data = first.encrypt_secret(&secret).unwrap();
        assert_eq!(again.decrypt_secret(data.as_bytes()).unwrap(), secret);
        assert!(matches!(
            others[0].decrypt_secret(data.as_bytes()),
            Err(Error::SecretIntegrity)
        ));
        assert_eq!(format!("{first:?}"), "PinHash(<redacted>)");
    }

    #[test]
    fn derive_refuses_an_empty_pin_before_hashing() {
        assert!(matches!(
            PinHash::derive("  ", USER, 1),
            Err(Error::InvalidInput { field: "pin", .. })
        ));
    }
}
