//! Running one of Docker's credential helpers (`docker-credential-<name> get|store|erase`):
//! only by a plain name, found on `PATH`; its output bounded; and ended once its deadline
//! passes (`--timeout`, or [`DEFAULT_DEADLINE`]), so a helper that hangs or floods its output
//! can neither hold a run nor fill its memory.

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::inert::inert;

/// How long a helper may take when no `--timeout` was given.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);
/// The most a helper may print: its answers are a few hundred bytes.
const MAX_OUTPUT: u64 = 4 * 1024 * 1024;
/// How much of its standard error is kept to explain a failure.
const MAX_STDERR: u64 = 64 * 1024;
/// How often a helper that closed its output is checked for having exited.
const POLL: Duration = Duration::from_millis(10);
/// What a helper prints when it keeps nothing for the server asked about (the
/// docker-credential-helpers protocol's `ErrCredentialsNotFound`): not a failure.
const NOT_FOUND: &str = "credentials not found in native keychain";

/// Which of the helper's outputs a reader thread drained.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// Runs `docker-credential-<helper> <action>` with `input` on its standard input and returns
/// what it printed, within `deadline`, or `None` when it answered that it keeps nothing for
/// the server (as Docker takes that answer). `named_in` is the file that named the helper. A
/// name holding a path separator is refused unrun (exit 2, as for any malformed `config.json`
/// entry); a helper that fails otherwise, prints more than [`MAX_OUTPUT`] or outlives its
/// deadline is ended and refused as a credential failure (exit 4).
pub fn run(
    helper: &str,
    action: &str,
    input: &str,
    deadline: Duration,
    named_in: &str,
) -> Result<Option<String>> {
    if helper.contains(['/', '\\']) {
        return Err(Error::Usage(format!(
            "{named_in}: the credential helper \"{}\" is a path, not a name; refused \
             (helpers are found on PATH as docker-credential-NAME)",
            helper.escape_debug()
        )));
    }
    let program = format!("docker-credential-{helper}");
    let started = Instant::now();
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Denied(format!("{program} (named in {named_in}): {e}")))?;
    let (sender, drained) = mpsc::channel();
    if let Some(mut stdin) = child.stdin.take() {
        let input = input.to_string();
        // In a thread: a helper that never reads its input must not block this one.
        std::thread::spawn(move || drop(stdin.write_all(input.as_bytes())));
    }
    drain(child.stdout.take(), MAX_OUTPUT, Stream::Out, sender.clone());
    drain(child.stderr.take(), MAX_STDERR, Stream::Err, sender);
    let mut running = Running {
        child,
        program: &program,
        action,
        started,
        deadline,
    };
    let (stdout, stderr) = running.outputs(&drained)?;
    let status = running.status()?;
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    if !status.success() {
        let said = match stdout.trim().is_empty() {
            true => String::from_utf8_lossy(&stderr).into_owned(),
            false => stdout,
        };
        if said.trim() == NOT_FOUND {
            return Ok(None);
        }
        return Err(Error::Denied(format!(
            "{program} {action} failed: {}",
            inert(said.trim())
        )));
    }
    Ok(Some(stdout))
}

/// A helper started, and what its deadline is measured from.
struct Running<'a> {
    child: Child,
    program: &'a str,
    action: &'a str,
    started: Instant,
    deadline: Duration,
}

impl Running<'_> {
    /// Its standard output and error, each read to its end in its thread, within the
    /// deadline and the output's bound; the helper is ended when either is passed.
    fn outputs(
        &mut self,
        drained: &mpsc::Receiver<(Stream, Vec<u8>)>,
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let (mut stdout, mut stderr) = (None, None);
        while stdout.is_none() || stderr.is_none() {
            let left = self.deadline.saturating_sub(self.started.elapsed());
            let Ok((stream, bytes)) = drained.recv_timeout(left) else {
                return Err(self.ended_late());
            };
            match stream {
                Stream::Out if bytes.len() as u64 > MAX_OUTPUT => {
                    end(&mut self.child);
                    return Err(Error::Denied(format!(
                        "{} {} printed more than {MAX_OUTPUT} bytes; refused",
                        self.program, self.action
                    )));
                }
                Stream::Out => stdout = Some(bytes),
                Stream::Err => stderr = Some(bytes),
            }
        }
        Ok((stdout.unwrap_or_default(), stderr.unwrap_or_default()))
    }

    /// How it exited, waited for until the deadline.
    fn status(&mut self) -> Result<ExitStatus> {
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if self.started.elapsed() < self.deadline => std::thread::sleep(POLL),
                Ok(None) => return Err(self.ended_late()),
                Err(e) => {
                    return Err(Error::Denied(format!(
                        "{} {}: {e}",
                        self.program, self.action
                    )));
                }
            }
        }
    }

    /// Ends the helper that ran past its deadline, and says so.
    fn ended_late(&mut self) -> Error {
        end(&mut self.child);
        Error::Denied(format!(
            "{} {} did not finish within {} s and was ended (--timeout SECS gives it longer)",
            self.program,
            self.action,
            self.deadline.as_secs()
        ))
    }
}

/// Reads `pipe` to its end (or to one byte past `limit`) in a thread, and sends what it read.
fn drain(
    pipe: Option<impl Read + Send + 'static>,
    limit: u64,
    stream: Stream,
    sender: mpsc::Sender<(Stream, Vec<u8>)>,
) {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(pipe) = pipe {
            let _ = pipe.take(limit + 1).read_to_end(&mut bytes);
        }
        let _ = sender.send((stream, bytes));
    });
}

/// Ends the helper and reaps it. What it started itself may live on, but holds nothing of
/// this run: the threads reading its pipes are never waited for.
fn end(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
