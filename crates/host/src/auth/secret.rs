//! The secret shared with the credential service: 32 bytes, stored as one line of hex.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Bytes in the auth secret.
pub const AUTH_SECRET_BYTES: usize = 32;
/// Longest secret file read: 64 hex chars and a line ending, with room to say "too long".
const SECRET_FILE_BYTES_MAX: u64 = 256;

/// The HMAC key for client credentials. Not `Clone`; zeroized on drop; never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct AuthSecret([u8; AUTH_SECRET_BYTES]);

/// Why the auth secret could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file exists but could not be read.
    #[error("cannot read auth secret {path}: {source}")]
    Read {
        /// The secret file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file (or its directory) could not be created or written.
    #[error("cannot create auth secret {path}: {source}")]
    Create {
        /// The secret file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not hold exactly one line of 64 hex chars. It is left untouched.
    #[error("auth secret {path} is malformed ({reason}); expected one line of 64 hex chars")]
    Malformed {
        /// The secret file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl AuthSecret {
    /// A secret from raw bytes (tests, or a caller that manages its own storage).
    pub fn from_bytes(bytes: [u8; AUTH_SECRET_BYTES]) -> Self {
        AuthSecret(bytes)
    }

    /// A fresh secret from the operating system's randomness.
    pub fn generate() -> Self {
        let mut secret = AuthSecret([0; AUTH_SECRET_BYTES]);
        rand::rngs::OsRng.fill_bytes(&mut secret.0);
        secret
    }

    /// Parses the file format: 64 hex chars (either case), optionally followed by one line
    /// ending.
    pub fn from_hex_line(text: &str) -> Result<Self, &'static str> {
        let line = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(text);
        if line.len() != 2 * AUTH_SECRET_BYTES {
            return Err("wrong length");
        }
        let mut secret = AuthSecret([0; AUTH_SECRET_BYTES]);
        hex::decode_to_slice(line, &mut secret.0).map_err(|_| "not hex")?;
        Ok(secret)
    }

    /// Loads an existing secret file.
    pub fn load(path: &Path) -> Result<Self, SecretError> {
        let read_error = |source| SecretError::Read {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        warn_if_readable_by_others(path, &file);
        let mut text = Zeroizing::new(String::new());
        let mut limited = std::io::Read::take(file, SECRET_FILE_BYTES_MAX);
        std::io::Read::read_to_string(&mut limited, &mut text).map_err(|source| {
            match source.kind() {
                std::io::ErrorKind::InvalidData => SecretError::Malformed {
                    path: path.to_owned(),
                    reason: "not UTF-8",
                },
                _ => read_error(source),
            }
        })?;
        AuthSecret::from_hex_line(&text).map_err(|reason| SecretError::Malformed {
            path: path.to_owned(),
            reason,
        })
    }

    /// Loads the secret at `path`, or creates it (mode 0600, parent directories 0700) with 32
    /// fresh random bytes if the file does not exist. Returns whether it was created. A file
    /// that exists but is malformed is an error and is never overwritten.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), SecretError> {
        if path.exists() {
            return AuthSecret::load(path).map(|secret| (secret, false));
        }
        let create_error = |source| SecretError::Create {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(create_error)?;
        }
        let opened = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        let mut file = match opened {
            Ok(file) => file,
            // Another process created it between our check and our open: use theirs.
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                return AuthSecret::load(path).map(|secret| (secret, false));
            }
            Err(error) => return Err(create_error(error)),
        };
        let secret = AuthSecret::generate();
        let line = Zeroizing::new(format!("{}\n", hex::encode(secret.0)));
        file.write_all(line.as_bytes()).map_err(create_error)?;
        file.sync_all().map_err(create_error)?;
        Ok((secret, true))
    }

    pub(crate) fn as_bytes(&self) -> &[u8; AUTH_SECRET_BYTES] {
        &self.0
    }
}

fn warn_if_readable_by_others(path: &Path, file: &std::fs::File) {
    if let Ok(metadata) = file.metadata() {
        if metadata.permissions().mode() & 0o077 != 0 {
            let path = path.display();
            tracing::warn!(%path, "auth secret is readable by group or others; chmod 600 it");
        }
    }
}

impl std::fmt::Debug for AuthSecret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("AuthSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "cloister-host-secret-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn debug_is_redacted() {
        let secret = AuthSecret::from_bytes([0xab; AUTH_SECRET_BYTES]);
        let printed = format!("{secret:?}");
        assert_eq!(printed, "AuthSecret(<redacted>)");
        assert!(!printed.contains("ab"));
    }

    #[test]
    fn load_or_create_creates_once_then_loads_the_same_secret() {
        let dir = scratch_dir("create");
        let path = dir.join("nested/deeper/auth.secret");
        let (created_secret, created) = AuthSecret::load_or_create(&path).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text.ends_with('\n'));
        let (loaded, created) = AuthSecret::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(loaded.as_bytes(), created_secret.as_bytes());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn two_generated_secrets_differ() {
        assert_ne!(
            AuthSecret::generate().as_bytes(),
            AuthSecret::generate().as_bytes()
        );
    }

    #[test]
    fn a_malformed_file_is_an_error_and_is_left_alone() {
        let dir = scratch_dir("malformed");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("auth.secret");
        let cases: [&[u8]; 6] = [
            b"",
            b"abcd\n",
            b"zz00000000000000000000000000000000000000000000000000000000000000\n",
            b"00000000000000000000000000000000000000000000000000000000000000000\n",
            b"0000000000000000000000000000000000000000000000000000000000000000\n\n",
            b"\xff\xfe",
        ];
        for contents in cases {
            std::fs::write(&path, contents).unwrap();
            let result = AuthSecret::load_or_create(&path);
            assert!(
                matches!(result, Err(SecretError::Malformed { .. })),
                "{contents:?}"
            );
            assert_eq!(std::fs::read(&path).unwrap(), contents);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn hex_lines_of_either_case_and_line_ending_parse() {
        let lower = "ab".repeat(32);
        for text in [
            lower.clone(),
            format!("{lower}\n"),
            format!("{lower}\r\n"),
            lower.to_uppercase(),
        ] {
            let secret = AuthSecret::from_hex_line(&text).unwrap();
            assert_eq!(secret.as_bytes(), &[0xab; 32]);
        }
    }

    #[test]
    fn an_unreadable_path_is_a_read_error() {
        let dir = scratch_dir("unreadable");
        std::fs::create_dir_all(dir.join("auth.secret")).unwrap();
        let result = AuthSecret::load(&dir.join("auth.secret"));
        assert!(matches!(result, Err(SecretError::Read { .. })));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
