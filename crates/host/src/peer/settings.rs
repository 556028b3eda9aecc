//! The transport's bounds and timings, every one named and checked before anything starts.

use std::time::Duration;

use super::wire::DATA_BYTES_MAX;
use crate::config::ConfigError;

/// Default bound on bytes queued (sent or not, but unacknowledged) for one peer.
pub const SEND_BUFFER_BYTES_MAX_DEFAULT: usize = 16 * 1024 * 1024;
/// Default bound on frames queued for one peer.
pub const SEND_BUFFER_FRAMES_MAX_DEFAULT: usize = 4_096;

/// Default time a delivered frame's acknowledgement waits for a Data frame to carry it
/// before a standalone `Ack` goes out. An acknowledgement only lets the sender release its
/// resend buffer, so waiting costs the sender memory, never latency; a few milliseconds is
/// long enough for most answers (a Raft append's response) to carry it, and short enough
/// that a sender holds only a few milliseconds of traffic for want of it.
pub const ACK_DELAY_DEFAULT: Duration = Duration::from_millis(5);

// A default buffer holds at least a few of the largest messages.
const _: () = assert!(SEND_BUFFER_BYTES_MAX_DEFAULT >= 4 * DATA_BYTES_MAX);

/// The peer transport's bounds and timings. `PeerSettings::default()` suits a production
/// group; tests shrink the timings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSettings {
    /// Bytes queued for one peer at most (unacknowledged frames, sent or not).
    pub send_buffer_bytes_max: usize,
    /// Frames queued for one peer at most.
    pub send_buffer_frames_max: usize,
    /// Peers the transport keeps state for at most (queues, sequence numbers).
    pub peers_max: usize,
    /// Entries in the address book at most.
    pub addresses_max: usize,
    /// Inbound messages and resets waiting for the enclave at most; a full queue stops
    /// reading from peers (TCP pushes back on their senders).
    pub events_max: usize,
    /// Inbound connections still in their Hello exchange at most.
    pub handshakes_max: usize,
    /// First delay between connection attempts; it doubles after each failure.
    pub backoff_initial: Duration,
    /// Longest delay between connection attempts.
    pub backoff_max: Duration,
    /// A peer that stays unreachable this long while frames wait for it is abandoned: its
    /// queue is dropped and the enclave is told `ResetPeer`.
    pub abandon_after: Duration,
    /// How long a TCP connect may take.
    pub connect_timeout: Duration,
    /// How long the Hello exchange may take.
    pub handshake_timeout: Duration,
    /// An idle link sends a `Ping` this often.
    pub ping_interval: Duration,
    /// A link that receives nothing for this long (or cannot write) is closed.
    pub idle_timeout: Duration,
    /// How long a link may take to answer a probe (sent when another connection claims the
    /// same peer) before it counts as dead and the other connection replaces it.
    pub probe_timeout: Duration,
    /// How long an acknowledgement may wait for a Data frame to carry it (see
    /// [`ACK_DELAY_DEFAULT`]); zero acknowledges at once.
    pub ack_delay: Duration,
}

impl Default for PeerSettings {
    fn default() -> Self {
        PeerSettings {
            send_buffer_bytes_max: SEND_BUFFER_BYTES_MAX_DEFAULT,
            send_buffer_frames_max: SEND_BUFFER_FRAMES_MAX_DEFAULT,
            peers_max: 256,
            addresses_max: 1_024,
            events_max: 1_024,
            handshakes_max: 64,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            abandon_after: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(20),
            probe_timeout: Duration::from_secs(2),
            ack_delay: ACK_DELAY_DEFAULT,
        }
    }
}

impl PeerSettings {
    /// Checks every bound and every relation between settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let millis = |duration: Duration| duration.as_millis();
        let count = |value: usize| value as u128;
        let ms = " ms";
        let data_max = count(DATA_BYTES_MAX);
        #[rustfmt::skip] // one setting per line reads as a table
        let bounds: [(&'static str, u128, u128, u128, &'static str); 15] = [
            ("send_buffer_bytes_max", count(self.send_buffer_bytes_max), data_max, 1 << 32, " B"),
            ("send_buffer_frames_max", count(self.send_buffer_frames_max), 1, 1 << 20, ""),
            ("peers_max", count(self.peers_max), 1, 65_536, ""),
            ("addresses_max", count(self.addresses_max), 1, 1 << 20, ""),
            ("events_max", count(self.events_max), 1, 1 << 20, ""),
            ("handshakes_max", count(self.handshakes_max), 1, 65_536, ""),
            ("backoff_initial", millis(self.backoff_initial), 1, 60_000, ms),
            ("backoff_max", millis(self.backoff_max), 1, 600_000, ms),
            ("abandon_after", millis(self.abandon_after), 10, 86_400_000, ms),
            ("connect_timeout", millis(self.connect_timeout), 10, 600_000, ms),
            ("handshake_timeout", millis(self.handshake_timeout), 10, 600_000, ms),
            ("ping_interval", millis(self.ping_interval), 10, 600_000, ms),
            ("idle_timeout", millis(self.idle_timeout), 20, 3_600_000, ms),
            ("probe_timeout", millis(self.probe_timeout), 10, 600_000, ms),
            ("ack_delay", millis(self.ack_delay), 0, 1_000, ms),
        ];
        for (field, value, min, max, unit) in bounds {
            if !(min..=max).contains(&value) {
                return Err(ConfigError::OutOfRange {
                    field,
                    value,
                    min,
                    max,
                    unit,
                });
            }
        }
        if self.backoff_initial > self.backoff_max {
            return Err(ConfigError::Inconsistent(
                "peer backoff_initial must not exceed backoff_max",
            ));
        }
        if self.probe_timeout > self.idle_timeout {
            return Err(ConfigError::Inconsistent(
                "peer probe_timeout must not exceed idle_timeout, which already ends dead links",
            ));
        }
        if self.ping_interval * 2 > self.idle_timeout {
            return Err(ConfigError::Inconsistent(
                "peer idle_timeout must be at least twice ping_interval, or idle links drop",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_valid() {
        PeerSettings::default().validate().unwrap();
    }

    #[test]
    fn every_number_is_bounded_and_relations_hold() {
        type Edit = fn(&mut PeerSettings);
        let out_of_range: &[(&str, Edit)] = &[
            ("send_buffer_bytes_max", |s| s.send_buffer_bytes_max = 10),
            ("send_buffer_frames_max", |s| s.send_buffer_frames_max = 0),
            ("peers_max", |s| s.peers_max = 0),
            ("addresses_max", |s| s.addresses_max = usize::MAX),
            ("events_max", |s| s.events_max = 0),
            ("handshakes_max", |s| s.handshakes_max = 0),
            ("backoff_initial", |s| s.backoff_initial = Duration::ZERO),
            ("abandon_after", |s| s.abandon_after = Duration::ZERO),
            ("idle_timeout", |s| {
                s.idle_timeout = Duration::from_secs(86_400)
            }),
            ("probe_timeout", |s| s.probe_timeout = Duration::ZERO),
            ("ack_delay", |s| s.ack_delay = Duration::from_secs(2)),
        ];
        for (field, edit) in out_of_range {
            let mut settings = PeerSettings::default();
            edit(&mut settings);
            match settings.validate() {
                Err(ConfigError::OutOfRange { field: named, .. }) => assert_eq!(named, *field),
                other => panic!("{field}: expected OutOfRange, got {other:?}"),
            }
        }
        let contradictions: &[Edit] = &[
            |s| s.backoff_initial = s.backoff_max + Duration::from_millis(1),
            |s| s.ping_interval = s.idle_timeout,
            |s| s.probe_timeout = s.idle_timeout + Duration::from_millis(1),
        ];
        for edit in contradictions {
            let mut settings = PeerSettings::default();
            edit(&mut settings);
            assert!(matches!(
                settings.validate(),
                Err(ConfigError::Inconsistent(_))
            ));
        }
    }
}
