//! Exit codes and how results are printed.
//!
//! 0 ok · 1 other error · 2 usage error · 3 wrong PIN · 4 no such backup.

use std::io::Write;

use serde_json::{Value, json};

/// Exit code: the command worked.
pub const EXIT_OK: u8 = 0;
/// Exit code: anything not listed below.
pub const EXIT_OTHER: u8 = 1;
/// Exit code: the command line was wrong.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the PIN was wrong (the message says how many tries are left).
pub const EXIT_WRONG_PIN: u8 = 3;
/// Exit code: there is no such backup.
pub const EXIT_MISSING: u8 = 4;

/// A successful result: text for people, JSON for programs.
pub struct Outcome {
    text: String,
    json: Value,
}

impl Outcome {
    /// A result with both renderings.
    pub fn new(text: String, json: Value) -> Self {
        Self { text, json }
    }

    /// Print to stdout in the chosen form. A closed stdout (the reader went away) is not
    /// an error worth a panic at exit.
    pub fn print(&self, as_json: bool) {
        let mut stdout = std::io::stdout();
        let _ = if as_json {
            writeln!(stdout, "{}", self.json)
        } else {
            writeln!(stdout, "{}", self.text)
        };
    }
}

/// A failed result and its exit code.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    message: String,
    json: Value,
}

impl Failure {
    /// A usage error (exit 2).
    pub fn usage(message: String) -> Self {
        let json = json!({"status": "usage_error", "error": message});
        Self {
            code: EXIT_USAGE,
            message,
            json,
        }
    }

    /// Any other error (exit 1).
    pub fn other(error: anyhow::Error) -> Self {
        let message = format!("{error:#}");
        let json = json!({"status": "error", "error": message});
        Self {
            code: EXIT_OTHER,
            message,
            json,
        }
    }

    /// A wrong PIN (exit 3).
    pub fn pin_mismatch(tries_left: u32) -> Self {
        Self {
            code: EXIT_WRONG_PIN,
            message: format!("wrong PIN: {tries_left} tries left"),
            json: json!({"status": "pin_mismatch", "tries": tries_left}),
        }
    }

    /// No such backup (exit 4).
    pub fn missing(user: &str) -> Self {
        Self {
            code: EXIT_MISSING,
            message: format!(
                "no backup for {user} (never backed up, deleted, or out of tries and erased)"
            ),
            json: json!({"status": "missing"}),
        }
    }

    /// An error from the client SDK (exit 1), worded for people.
    pub fn from_client(error: cloister_client::Error) -> Self {
        let hint = match &error {
            cloister_client::Error::SimulatedRefused => {
                " (the node runs the insecure simulated TEE; pass --allow-simulated to accept it)"
            }
            cloister_client::Error::Unauthorized => " (is --auth-secret-file the node's secret?)",
            cloister_client::Error::Transport(_) | cloister_client::Error::Timeout(_) => {
                " (is the node running at --server?)"
            }
            _ => "",
        };
        Self::other(anyhow::anyhow!("{error}{hint}"))
    }

    /// What went wrong, for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The exit code.
    pub fn code(&self) -> u8 {
        self.code
    }

    /// Print to stderr (text) or stdout (JSON), ignoring a closed stream.
    pub fn print(&self, as_json: bool) {
        let _ = if as_json {
            writeln!(std::io::stdout(), "{}", self.json)
        } else {
            writeln!(std::io::stderr(), "error: {}", self.message)
        };
    }
}
