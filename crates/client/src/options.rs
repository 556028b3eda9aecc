//! What a caller chooses about a connection: which enclave, which policy, which bounds.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use cloister_attest::{MEASUREMENT_BYTES, Policy};

use crate::{Error, Result};

/// An enclave id: the enclave's measurement, shown as hex in URLs (`/v1/<hex>`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnclaveId([u8; MEASUREMENT_BYTES]);

impl EnclaveId {
    /// Wrap a measurement.
    pub const fn new(measurement: [u8; MEASUREMENT_BYTES]) -> Self {
        Self(measurement)
    }

    /// Parse 64 hex characters.
    pub fn from_hex(text: &str) -> Result<Self> {
        let mut measurement = [0u8; MEASUREMENT_BYTES];
        hex::decode_to_slice(text.trim(), &mut measurement).map_err(|_| {
            Error::invalid(
                "enclave_id",
                format!("must be {} hex characters", 2 * MEASUREMENT_BYTES),
            )
        })?;
        Ok(Self(measurement))
    }

    /// The measurement.
    pub fn as_bytes(&self) -> &[u8; MEASUREMENT_BYTES] {
        &self.0
    }
}

impl fmt::Display for EnclaveId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for EnclaveId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "EnclaveId({self})")
    }
}

impl FromStr for EnclaveId {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        Self::from_hex(text)
    }
}

/// Bounds on how long each step of a connection may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect plus the WebSocket upgrade.
    pub connect: Duration,
    /// Reading the attestation frame, plus the Noise handshake round trip.
    pub handshake: Duration,
    /// One request's round trip. Writes wait for a Raft commit, so allow for an election.
    pub response: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            handshake: Duration::from_secs(10),
            response: Duration::from_secs(30),
        }
    }
}

/// How to connect and what to accept from the server.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Measurements the client accepts. Empty means "exactly the enclave id in the URL".
    pub accepted_measurements: Vec<[u8; MEASUREMENT_BYTES]>,
    /// Accept simulated enclaves. **Insecure**: anyone can forge simulated evidence, so the
    /// server could read every PIN hash and secret. For development and tests only.
    pub insecure_allow_simulated: bool,
    /// Bounds on each step.
    pub timeouts: Timeouts,
}

impl ConnectOptions {
    /// Options that accept a simulated enclave. **Insecure**; see
    /// [`ConnectOptions::insecure_allow_simulated`].
    pub fn insecure_simulated() -> Self {
        Self {
            insecure_allow_simulated: true,
            ..Self::default()
        }
    }

    /// The attestation policy these options mean for `enclave_id`.
    pub fn policy(&self, enclave_id: &EnclaveId) -> Policy {
        let measurements = if self.accepted_measurements.is_empty() {
            vec![*enclave_id.as_bytes()]
        } else {
            self.accepted_measurements.clone()
        };
        if self.insecure_allow_simulated {
            Policy::insecure_allow_simulated(measurements)
        } else {
            Policy::strict(measurements)
        }
    }
}

/// The URL of an enclave's WebSocket endpoint: `ws://host:port/v1/<enclave-id-hex>`.
pub(crate) fn endpoint_url(base_url: &str, enclave_id: &EnclaveId) -> Result<String> {
    let base = base_url.trim().trim_end_matches('/');
    if base.starts_with("wss://") {
        // The Noise channel carries the confidentiality; TLS would only hide metadata, and
        // this build has no TLS stack.
        return Err(Error::invalid(
            "base_url",
            "wss:// is not supported by this build; use ws://",
        ));
    }
    let Some(authority) = base.strip_prefix("ws://") else {
        return Err(Error::invalid(
            "base_url",
            "must start with ws:// (e.g. ws://127.0.0.1:8080)",
        ));
    };
    if authority.is_empty() || authority.contains(['?', '#', '@']) {
        return Err(Error::invalid(
            "base_url",
            "must be ws://host[:port][/prefix] without query, fragment or user info",
        ));
    }
    Ok(format!("{base}/v1/{enclave_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enclave_id_round_trips_through_hex() {
        let id = EnclaveId::new([0xa5; 32]);
        assert_eq!(id.to_string(), "a5".repeat(32));
        assert_eq!(EnclaveId::from_hex(&"A5".repeat(32)).unwrap(), id);
        assert_eq!("a5".repeat(32).parse::<EnclaveId>().unwrap(), id);
        assert!(EnclaveId::from_hex("a5").is_err());
        assert!(EnclaveId::from_hex(&"zz".repeat(32)).is_err());
    }

    // SVR2 client protocol: WebSocket at GET /v1/<enclave-id>.
    #[test]
    fn endpoint_url_appends_v1_and_the_id() {
        let id = EnclaveId::new([1; 32]);
        let expected = format!("ws://127.0.0.1:8080/v1/{}", "01".repeat(32));
        assert_eq!(endpoint_url("ws://127.0.0.1:8080", &id).unwrap(), expected);
        assert_eq!(endpoint_url("ws://127.0.0.1:8080/", &id).unwrap(), expected);
        for bad in ["http://x", "wss://x", "ws://", "ws://u@x", "x:80"] {
            assert!(
                matches!(
                    endpoint_url(bad, &id),
                    Err(Error::InvalidInput {
                        field: "base_url",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn policy_defaults_to_the_url_enclave_and_strict() {
        let id = EnclaveId::new([2; 32]);
        assert!(!ConnectOptions::default().policy(&id).allows_simulated());
        assert!(
            ConnectOptions::insecure_simulated()
                .policy(&id)
                .allows_simulated()
        );
    }
}
