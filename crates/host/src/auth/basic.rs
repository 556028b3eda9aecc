//! HTTP Basic auth (RFC 7617) header parsing, bounded and strict.

use base64::Engine;
use zeroize::Zeroizing;

use super::AuthError;

/// Longest `Authorization` header accepted. A valid SVR2 header is about 100 bytes.
pub const AUTHORIZATION_BYTES_MAX: usize = 512;

/// A username and password from a Basic header. The password is zeroized on drop.
pub struct BasicCredentials {
    /// The user name (for SVR2, the backup id in hex).
    pub username: String,
    /// The password (for SVR2, the timestamped token).
    pub password: Zeroizing<String>,
}

impl std::fmt::Debug for BasicCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("BasicCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Parses the raw value of an `Authorization` header (`None` when the header is absent).
pub fn parse_basic(header: Option<&[u8]>) -> Result<BasicCredentials, AuthError> {
    let header = header.ok_or(AuthError::MissingHeader)?;
    if header.len() > AUTHORIZATION_BYTES_MAX {
        return Err(AuthError::MalformedHeader("too long"));
    }
    let header =
        std::str::from_utf8(header).map_err(|_| AuthError::MalformedHeader("not ASCII"))?;
    let (scheme, encoded) = header
        .trim()
        .split_once(' ')
        .ok_or(AuthError::MalformedHeader("no credentials"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(AuthError::MalformedHeader("scheme is not Basic"));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim_start())
        .map(Zeroizing::new)
        .map_err(|_| AuthError::MalformedHeader("not base64"))?;
    let text =
        std::str::from_utf8(&decoded).map_err(|_| AuthError::MalformedHeader("not UTF-8"))?;
    let (username, password) = text
        .split_once(':')
        .ok_or(AuthError::MalformedHeader("no ':' in credentials"))?;
    Ok(BasicCredentials {
        username: username.to_owned(),
        password: Zeroizing::new(password.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(credentials: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
    }

    #[test]
    fn parses_username_and_password() {
        let value = header("user:123:abc");
        let credentials = parse_basic(Some(value.as_bytes())).unwrap();
        assert_eq!(credentials.username, "user");
        // The password keeps everything after the first ':' (SVR2 passwords contain one).
        assert_eq!(credentials.password.as_str(), "123:abc");
        let lowercase_scheme = value.replace("Basic", "basic");
        assert!(parse_basic(Some(lowercase_scheme.as_bytes())).is_ok());
    }

    #[test]
    fn debug_hides_the_password() {
        let value = header("user:topsecret");
        let printed = format!("{:?}", parse_basic(Some(value.as_bytes())).unwrap());
        assert!(!printed.contains("topsecret"));
    }

    #[test]
    fn refuses_missing_and_malformed_headers() {
        assert_eq!(parse_basic(None).unwrap_err(), AuthError::MissingHeader);
        let long = header(&format!("user:{}", "x".repeat(AUTHORIZATION_BYTES_MAX)));
        let bearer = "Bearer abc".to_owned();
        let cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"Basic".to_vec(),
            bearer.into_bytes(),
            b"Basic !!!!".to_vec(),
            header("no-colon").into_bytes(),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode([0xff, b':'])
            )
            .into_bytes(),
            b"Basic \xff".to_vec(),
            long.into_bytes(),
        ];
        for value in &cases {
            let result = parse_basic(Some(value));
            assert!(
                matches!(result, Err(AuthError::MalformedHeader(_))),
                "{value:?}"
            );
        }
    }
}
