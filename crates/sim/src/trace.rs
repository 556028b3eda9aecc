//! The run's trace: one line per thing that happened, hashed as it goes. Two runs of the
//! same seed and build have the same trace hash, byte for byte; a failing run writes its
//! last lines to a file for a human to read.

use std::collections::VecDeque;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// Lines kept for the failure file (the hash covers every line).
const TRACE_LINES_KEPT: usize = 20_000;

/// The trace of one run.
pub struct Trace {
    hash: Sha256,
    lines: VecDeque<String>,
    count: u64,
}

impl Default for Trace {
    fn default() -> Self {
        Trace {
            hash: Sha256::new(),
            lines: VecDeque::new(),
            count: 0,
        }
    }
}

impl Trace {
    /// Record `line`, stamped with the simulated time.
    pub fn line(&mut self, now_ms: u64, line: impl AsRef<str>) {
        let mut text = String::new();
        let _ = write!(
            text,
            "{:>10}.{:03} {}",
            now_ms / 1000,
            now_ms % 1000,
            line.as_ref()
        );
        self.hash.update(text.as_bytes());
        self.hash.update(b"\n");
        self.count += 1;
        if self.lines.len() == TRACE_LINES_KEPT {
            self.lines.pop_front();
        }
        self.lines.push_back(text);
    }

    /// Fold bytes that are not worth a line (a frame's contents) into the hash.
    pub fn absorb(&mut self, bytes: &[u8]) {
        self.hash.update((bytes.len() as u64).to_le_bytes());
        self.hash.update(bytes);
    }

    /// The hash of everything so far, as hex.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash.clone().finalize())
    }

    /// How many lines were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The last lines, oldest first.
    pub fn tail(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(String::as_str)
    }
}
