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

/// What a help text says its command does: its first paragraph, on one line.
pub fn summary(help: &str) -> String {
    let lines = help.lines().take_while(|line| !line.trim().is_empty());
    lines.map(str::trim).collect::<Vec<_>>().join(" ")
}

/// The groups `--help` shows for a command with these: them, and for a command with the
/// transfer flags the tuning of `--concurrency dynamic` too.
pub fn long_groups(groups: &[&'static str]) -> impl Iterator<Item = &'static str> {
    let tuning = groups.contains(&TRANSFER_HELP).then_some(TUNING_HELP);
    groups.iter().copied().chain(tuning)
}

/// Prints a command's help: `-h` the synopsis, the command's own options and the global
/// ones, naming the shared groups; `--help` also the groups (and, for a command with the
/// transfer flags, the tuning of `--concurrency dynamic`) and the details.
pub fn print_help(usage: &str, groups: &[&'static str], details: &str, long: bool) -> Result<()> {
    let mut text = usage.to_string();
    if long {
        for group in long_groups(groups) {
            text.push_str("\n\n");
            text.push_str(group);
        }
    } else if !groups.is_empty() {
        let names: Vec<&str> = (groups.iter())
            .filter_map(|group| group.lines().next())
            .map(|title| title.trim_end_matches(':').trim_end_matches(" options"))
            .collect();
        text.push_str(&format!(
            "\n\n{} options too: see --help.",
            names.join(", ")
        ));
    }
    text.push_str("\n\n");
    text.push_str(GLOBAL_HELP);
    if long {
        text.push_str(details);
    }
    text.push('\n');
    write_stdout(text.as_bytes())
}
