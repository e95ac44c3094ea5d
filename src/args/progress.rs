//! How progress is shown: the live display, plain lines, JSON events.

use std::io::IsTerminal;
use std::time::Duration;

use lexopt::{Arg, Parser};

use crate::error::{Error, Result};
use crate::progress::{Board, BoardDisplay, Verbosity};

use super::{FlagGroup, number, value};

/// The help lines of the progress flags.
pub const PROGRESS_HELP: &str = "\
Progress options:
      --progress MODE          simple (one live line), detailed (a block), none
                               [default: simple]; not on a terminal, or with --verbose, a
                               plain line per blob and a status line every 10 s
      --progress-interval MS   how often the live display is redrawn [default: 200]
      --status-interval SECS   how often plain lines add a status line [default: 10]
      --json                   newline-delimited JSON events on stdout instead (start,
                               progress, blob, retry, result); the last line is the result
      --enable-monitoring      print each change of the worker count (--concurrency
                               dynamic) and the samples that led to it, whatever the
                               progress display
  The older tool's spellings work too: --progress-detail MODE is --progress MODE, and the
  flag --disable-progress is --progress none.";

/// How progress is shown: `--progress`, `--progress-interval`, `--json`.
pub struct ProgressArgs {
    display: Option<BoardDisplay>,
    interval: u64,
    status_every: u64,
    json: bool,
    /// `--enable-monitoring`: each change of the worker count said on a line.
    monitor: bool,
}

impl Default for ProgressArgs {
    fn default() -> ProgressArgs {
        ProgressArgs {
            display: None,
            interval: 200,
            status_every: 10,
            json: false,
            monitor: false,
        }
    }
}

impl ProgressArgs {
    /// Whether `--json` asked for events on stdout.
    pub fn json(&self) -> bool {
        self.json
    }

    /// The progress board: JSON events, nothing (`--quiet`, `--progress none`), plain lines
    /// (`--verbose`, stderr not a terminal, or `alongside` other boards drawn at the same
    /// time), else a live display.
    pub fn board(&self, verbosity: Verbosity, alongside: bool) -> Board {
        let display = match self.display {
            _ if self.json => BoardDisplay::Json,
            Some(BoardDisplay::Off) => BoardDisplay::Off,
            _ if verbosity == Verbosity::Quiet => BoardDisplay::Off,
            _ if alongside
                || verbosity == Verbosity::Verbose
                || !std::io::stderr().is_terminal() =>
            {
                BoardDisplay::Lines
            }
            Some(live) => live,
            None => BoardDisplay::Live { detailed: false },
        };
        let board = Board::new(
            display,
            Duration::from_millis(self.interval.max(10)),
            Duration::from_secs(self.status_every.max(1)),
        );
        let board = match verbosity {
            Verbosity::Verbose => board.with_full_digests(),
            _ => board,
        };
        match self.monitor && verbosity != Verbosity::Quiet {
            true => board.monitored(),
            false => board,
        }
    }
}

impl FlagGroup for ProgressArgs {
    fn claim(&mut self, arg: &Arg<'_>, parser: &mut Parser) -> Result<bool> {
        match arg {
            Arg::Long("progress") | Arg::Long("progress-detail") => {
                self.display = Some(match value(parser, "--progress")?.as_str() {
                    "simple" => BoardDisplay::Live { detailed: false },
                    "detailed" => BoardDisplay::Live { detailed: true },
                    "none" => BoardDisplay::Off,
                    other => {
                        return Err(Error::Usage(format!(
                            "--progress {other:?}: expected simple, detailed or none"
                        )));
                    }
                })
            }
            Arg::Long("disable-progress") => self.display = Some(BoardDisplay::Off),
            Arg::Long("progress-interval") => {
                self.interval = number(parser, "--progress-interval")?
            }
            Arg::Long("status-interval") => {
                self.status_every = number(parser, "--status-interval")?
            }
            Arg::Long("json") => self.json = true,
            Arg::Long("enable-monitoring") => self.monitor = true,
            _ => return Ok(false),
        }
        Ok(true)
    }
}
