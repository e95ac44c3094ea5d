//! Everything the program tells the user while it works goes through here, to stderr:
//! nothing with `--quiet`, more with `--verbose`. Data for scripts goes to stdout elsewhere.
//! `board.rs` draws the progress of a transfer.

mod board;

use std::fmt::Display;

use crate::inert::inert_lines;

pub use board::{Board, Display as BoardDisplay};

/// How much to say on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Errors only.
    Quiet,
    /// What was done.
    #[default]
    Normal,
    /// Also each step (each blob).
    Verbose,
}

/// The reporter commands and the copy loop write to.
#[derive(Clone, Copy)]
pub struct Progress {
    verbosity: Verbosity,
}

impl Progress {
    /// A reporter at the given verbosity.
    pub fn new(verbosity: Verbosity) -> Progress {
        Progress { verbosity }
    }

    /// A line about what was done (hidden with `--quiet`).
    pub fn info(&self, message: impl Display) {
        if self.verbosity >= Verbosity::Normal {
            say(message);
        }
    }

    /// A line about a step (only with `--verbose`).
    pub fn detail(&self, message: impl Display) {
        if self.verbosity >= Verbosity::Verbose {
            say(message);
        }
    }

    /// Something the user should know that is not an error (hidden with `--quiet`).
    pub fn warn(&self, message: impl Display) {
        if self.verbosity >= Verbosity::Normal {
            say(format_args!("warning: {message}"));
        }
    }
}

/// Writes one line to stderr. A closed or broken stderr never aborts a run: what could not be
/// said is dropped (the exit code still tells). Control characters other than line ends are
/// shown as escapes, whichever part of the message brought them in (see [`crate::inert`]).
pub fn say(message: impl Display) {
    use std::io::Write;
    let message = message.to_string();
    let _ = writeln!(std::io::stderr().lock(), "{}", inert_lines(&message));
}

/// Seconds for JSON, to the millisecond (`1.511`, not `1.5107396739999999`).
pub fn json_seconds(elapsed: std::time::Duration) -> f64 {
    (elapsed.as_secs_f64() * 1000.0).round() / 1000.0
}

/// `n` things, in words: `1 layer`, `2 layers`.
pub fn count(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// A byte count for people, in decimal units as Docker shows them (`1.5 MB`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_like_docker() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1500), "1.5 kB");
        assert_eq!(human_bytes(999_999), "1.0 MB");
        assert_eq!(human_bytes(20_000_000_000), "20.0 GB");
    }
}
