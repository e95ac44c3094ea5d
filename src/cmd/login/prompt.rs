//! Asking on the terminal for what `login` was not given, as `docker login` does: the user
//! name as typed, the password without echo (turned off with `stty`, the terminal's own
//! tool, and back on whatever happens).

use std::io::{BufRead, Read, Write};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// The longest answer read: a user name or a token.
const MAX_ANSWER: u64 = 64 * 1024;

/// Says `prompt` on stderr and reads one line from the terminal on standard input, without
/// echo when `secret`. An empty answer is refused.
pub fn ask(prompt: &str, secret: bool) -> Result<String> {
    // Echo goes off before the prompt shows: nothing typed after it is shown.
    let echo_off = secret.then(EchoOff::new).transpose()?;
    let _ = write!(std::io::stderr(), "{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let read = (std::io::stdin().lock().take(MAX_ANSWER)).read_line(&mut line);
    if echo_off.is_some() {
        // The Enter that ended the line was not echoed.
        let _ = writeln!(std::io::stderr());
    }
    drop(echo_off);
    read.map_err(|e| Error::Usage(format!("reading the answer from the terminal: {e}")))?;
    let answer = line.trim_end_matches(['\r', '\n']).to_string();
    match answer.is_empty() {
        true => Err(Error::Usage(format!("{} nothing given", prompt.trim_end()))),
        false => Ok(answer),
    }
}

/// The terminal's echo, turned off while it lives.
struct EchoOff;

impl EchoOff {
    fn new() -> Result<EchoOff> {
        match stty("-echo") {
            true => Ok(EchoOff),
            false => Err(Error::Usage(
                "cannot turn the terminal's echo off (stty); give the password with \
                 --password-stdin"
                    .into(),
            )),
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        stty("echo");
    }
}

/// Runs `stty setting` on the terminal that is standard input; whether it worked.
fn stty(setting: &str) -> bool {
    (Command::new("stty").arg(setting).stdin(Stdio::inherit()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}
