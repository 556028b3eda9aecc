//! Noise plumbing for client sessions: the protocol names, and a resolver that takes its
//! randomness from the core's [`Env`](crate::Env) so that handshakes replay from a seed.

pub use cloister_noise::{ClientHandshake, NOISE_MESSAGE_BYTES_MAX, NOISE_TAG_BYTES};

/// The SVR2 client handshake of a group without `client_pq`.
pub const CLIENT_NOISE_PATTERN: &str = "Noise_NK_25519_ChaChaPoly_SHA256";
/// The SVR2 client handshake of a group with `client_pq`.
pub const CLIENT_PQ_NOISE_PATTERN: &str = "Noise_NKhfs_25519+Kyber1024_ChaChaPoly_SHA256";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_names_are_the_shared_crates() {
        assert_eq!(
            ClientHandshake::for_group(false).pattern(),
            CLIENT_NOISE_PATTERN
        );
        assert_eq!(
            ClientHandshake::for_group(true).pattern(),
            CLIENT_PQ_NOISE_PATTERN
        );
    }
}
