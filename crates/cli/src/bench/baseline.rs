//! The physical limit for sessions: a raw in-process Noise NK handshake loop with snow, no
//! sockets, no attestation, no protobuf. `cloister bench --op handshake` divides its
//! sessions per second by this, measured in the same run.

use std::time::{Duration, Instant};

use cloister_enclave::CLIENT_NOISE_PATTERN;

/// Run handshakes (initiator and responder, both in this thread) for `duration`.
/// Returns handshakes per second.
pub fn noise_nk_handshakes_per_sec(duration: Duration) -> anyhow::Result<f64> {
    let params: snow::params::NoiseParams = CLIENT_NOISE_PATTERN.parse()?;
    let responder_keys = snow::Builder::new(params.clone()).generate_keypair()?;
    let (mut message, mut payload) = (vec![0u8; 1024], vec![0u8; 1024]);
    let start = Instant::now();
    let mut handshakes = 0u64;
    while start.elapsed() < duration {
        let mut initiator = snow::Builder::new(params.clone())
            .remote_public_key(&responder_keys.public)?
            .build_initiator()?;
        let mut responder = snow::Builder::new(params.clone())
            .local_private_key(&responder_keys.private)?
            .build_responder()?;
        let length = initiator.write_message(&[], &mut message)?;
        responder.read_message(&message[..length], &mut payload)?;
        let length = responder.write_message(&[], &mut message)?;
        initiator.read_message(&message[..length], &mut payload)?;
        let _ = (
            initiator.into_transport_mode()?,
            responder.into_transport_mode()?,
        );
        handshakes += 1;
    }
    Ok(handshakes as f64 / start.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_baseline_completes_handshakes() {
        let rate =
            super::noise_nk_handshakes_per_sec(std::time::Duration::from_millis(50)).unwrap();
        assert!(rate > 0.0);
    }
}
