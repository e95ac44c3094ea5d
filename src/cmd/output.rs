//! What the commands write on stdout: data and help, where a closed pipe (`| head`) ends the
//! output quietly instead of failing.

use std::io::Write;

use crate::args::{GLOBAL_HELP, TRANSFER_HELP, TUNING_HELP};
use crate::error::{Error, Result};

/// Writes data to stdout; a closed pipe (`| head`) is not a failure.
pub fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    still_read(stdout.write_all(bytes).and_then(|()| stdout.flush())).map(drop)
}

/// What writing to standard output came to: `false` once its reader has gone (a broken pipe,
/// which ends a listing quietly), an error for anything else.
pub fn still_read(written: std::io::Result<()>) -> Result<bool> {
    match written {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Error::io("writing to standard output", e)),
    }
}

/// Prints a command's help: `-h` the usage, `--help` also the details (and, for a command
/// with the transfer flags, the tuning of `--concurrency dynamic`).
pub fn print_help(usage: &str, groups: &[&str], details: &str, long: bool) -> Result<()> {
    let mut text = usage.to_string();
    let tuning = (long && groups.contains(&TRANSFER_HELP)).then_some(&TUNING_HELP);
    for group in groups.iter().chain(tuning).chain([&GLOBAL_HELP]) {
        text.push_str("\n\n");
        text.push_str(group);
    }
    if long {
        text.push_str(details);
    }
    text.push('\n');
    write_stdout(text.as_bytes())
}
