//! Sealing the user's 32-byte secret into the 48 bytes a Backup stores.
//!
//! AES-256-GCM-SIV under the PIN hash's encryption key, with a **fixed all-zero nonce** and
//! the associated data [`SECRET_LABEL`]; the output is ciphertext (32) then tag (16).
//!
//! Why a fixed nonce is safe here: the key is unique to (PIN, username, group), and
//! GCM-SIV is nonce-misuse resistant. Sealing two secrets under one key with one nonce only
//! reveals whether the two plaintexts are equal, and each user stores one secret per group.
//! The tag makes a wrong PIN hash or tampered data fail to open instead of yielding garbage.

use std::fmt;

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce, Tag};
use rand::RngCore;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::operations::{DATA_BYTES_MAX, DATA_BYTES_MIN};
use crate::{Error, Result};

/// Length of the user's secret.
pub const SECRET_BYTES: usize = 32;
/// Length of a sealed secret: ciphertext then the 16-byte tag.
pub const ENCRYPTED_SECRET_BYTES: usize = SECRET_BYTES + TAG_BYTES;
/// Associated data bound into every sealed secret (names the construction and its version).
pub const SECRET_LABEL: &[u8] = b"cloister svr2 secret v1";

const TAG_BYTES: usize = 16;
const NONCE: [u8; 12] = [0; 12];
const _: () = assert!(DATA_BYTES_MIN <= ENCRYPTED_SECRET_BYTES);
const _: () = assert!(ENCRYPTED_SECRET_BYTES <= DATA_BYTES_MAX);

/// The user's secret (for example a key that encrypts their other data). Not `Clone`,
/// wiped on drop, compared in constant time, and never printed.
pub struct Secret(Zeroizing<[u8; SECRET_BYTES]>);

impl Secret {
    /// Wrap secret bytes.
    pub fn new(bytes: [u8; SECRET_BYTES]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Copy a 32-byte slice.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
        if bytes.len() != SECRET_BYTES {
            return Err(Error::invalid(
                "secret",
                format!("is {} bytes; must be {SECRET_BYTES}", bytes.len()),
            ));
        }
        secret.copy_from_slice(bytes);
        Ok(Self(secret))
    }

    /// A fresh random secret from the operating system's generator.
    pub fn generate() -> Self {
        let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
        rand::rngs::OsRng.fill_bytes(secret.as_mut());
        Self(secret)
    }

    /// The secret bytes.
    pub fn as_bytes(&self) -> &[u8; SECRET_BYTES] {
        &self.0
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&*other.0).into()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Secret(<redacted>)")
    }
}

/// A sealed secret: the `data` of a Backup and an Expose.
#[derive(PartialEq, Eq)]
pub struct EncryptedSecret(Zeroizing<[u8; ENCRYPTED_SECRET_BYTES]>);

impl EncryptedSecret {
    /// The 48 bytes.
    pub fn as_bytes(&self) -> &[u8; ENCRYPTED_SECRET_BYTES] {
        &self.0
    }
}

impl fmt::Debug for EncryptedSecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("EncryptedSecret(<redacted>)")
    }
}

pub(super) fn encrypt(key: &[u8; 32], secret: &Secret) -> Result<EncryptedSecret> {
    let cipher = Aes256GcmSiv::new(key.into());
    let mut sealed = Zeroizing::new([0u8; ENCRYPTED_SECRET_BYTES]);
    let (body, tag_out) = sealed.split_at_mut(SECRET_BYTES);
    body.copy_from_slice(secret.as_bytes());
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(&NONCE), SECRET_LABEL, body)
        .map_err(|_| Error::invalid("secret", "encryption failed"))?;
    tag_out.copy_from_slice(&tag);
    Ok(EncryptedSecret(sealed))
}

pub(super) fn decrypt(key: &[u8; 32], data: &[u8]) -> Result<Secret> {
    if data.len() != ENCRYPTED_SECRET_BYTES {
        return Err(Error::SecretIntegrity);
    }
    let cipher = Aes256GcmSiv::new(key.into());
    let mut plaintext = Zeroizing::new([0u8; SECRET_BYTES]);
    plaintext.copy_from_slice(&data[..SECRET_BYTES]);
    let tag = Tag::from_slice(&data[SECRET_BYTES..]);
    cipher
        .decrypt_in_place_detached(
            Nonce::from_slice(&NONCE),
            SECRET_LABEL,
            plaintext.as_mut(),
            tag,
        )
        .map_err(|_| Error::SecretIntegrity)?;
    Ok(Secret(plaintext))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [0x42; 32];

    #[test]
    fn round_trip_and_sizes() {
        let secret = Secret::generate();
        let sealed = encrypt(&KEY, &secret).unwrap();
        assert_eq!(sealed.as_bytes().len(), 48);
        assert_ne!(&sealed.as_bytes()[..32], secret.as_bytes());
        assert_eq!(decrypt(&KEY, sealed.as_bytes()).unwrap(), secret);
    }

    #[test]
    fn deterministic_under_one_key() {
        let secret = Secret::new([1; 32]);
        assert_eq!(
            encrypt(&KEY, &secret).unwrap(),
            encrypt(&KEY, &secret).unwrap()
        );
        assert_ne!(
            encrypt(&KEY, &secret).unwrap(),
            encrypt(&[0x43; 32], &secret).unwrap()
        );
    }

    #[test]
    fn tampering_and_wrong_keys_are_detected() {
        let sealed = encrypt(&KEY, &Secret::new([9; 32])).unwrap();
        for index in [0, 31, 32, 47] {
            let mut tampered = *sealed.as_bytes();
            tampered[index] ^= 0x01;
            assert!(
                matches!(decrypt(&KEY, &tampered), Err(Error::SecretIntegrity)),
                "{index}"
            );
        }
        assert!(matches!(
            decrypt(&[0x43; 32], sealed.as_bytes()),
            Err(Error::SecretIntegrity)
        ));
        assert!(matches!(
            decrypt(&KEY, &sealed.as_bytes()[..47]),
            Err(Error::SecretIntegrity)
        ));
        assert!(matches!(
            decrypt(&KEY, &[0; 16]),
            Err(Error::SecretIntegrity)
        ));
    }

    #[test]
    fn secrets_check_length_and_never_print() {
        assert!(Secret::from_slice(&[0; 31]).is_err());
        assert!(Secret::from_slice(&[0; 33]).is_err());
        let secret = Secret::from_slice(&[0x77; 32]).unwrap();
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        let sealed = encrypt(&KEY, &secret).unwrap();
        assert_eq!(format!("{sealed:?}"), "EncryptedSecret(<redacted>)");
        assert_ne!(Secret::generate(), Secret::generate());
    }
}
