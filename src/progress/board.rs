//! The progress of one transfer, shared by its workers and drawn as asked: a live line (or
//! block) redrawn on a terminal, plain lines elsewhere (a line per blob and a status line
//! every 10 s, no control characters), newline-delimited JSON events on stdout, or nothing.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::digest::Digest;
use crate::manifest::Descriptor;

use super::human_bytes;

/// How often plain lines report the overall state.
/// The window over which the current speed is measured.
const SPEED_WINDOW: Duration = Duration::from_secs(3);
/// The width of the bar.
const BAR: usize = 24;

/// How the board is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Display {
    /// Redrawn in place on a terminal: one line, or a block with every active blob.
    Live { detailed: bool },
    /// Plain lines, for logs and pipes.
    Lines,
    /// Newline-delimited JSON events on stdout.
    Json,
    /// Nothing.
    Off,
}

/// The shared state of one transfer.
pub struct Board {
    display: Display,
    interval: Duration,
    /// How often plain lines add a status line.
    status_every: Duration,
    /// Whether each change of the worker count is said on a line, whatever the display.
    monitored: bool,
    /// Whether plain lines show whole digests (`--verbose`) rather than short ones.
    full_digests: bool,
    /// What each plain line starts with, where several transfers share stderr (`line 3: `).
    label: String,
    started: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    blobs: usize,
    bytes: u64,
    workers: u32,
    finished: usize,
    failed: usize,
    /// The sizes of the blobs done, however they were done.
    completed: u64,
    /// Bytes read from sources, for the speed.
    moved: u64,
    /// Blobs in flight: digest, bytes done, size.
    active: Vec<(Digest, u64, u64)>,
    /// Recent (time, bytes moved) samples for the current speed.
    samples: VecDeque<(Instant, u64)>,
    /// The last change of the worker count: `1 -> 2 (throughput rose 15%)`.
    last_adjustment: Option<String>,
    drawn: usize,
    last_draw: Option<Instant>,
    last_status: Option<Instant>,
}

impl Board {
    /// A board drawn as `display` says, redrawn at most every `interval` when live; as plain
    /// lines, with a status line every `status_every`.
    pub fn new(display: Display, interval: Duration, status_every: Duration) -> Board {
        Board {
            display,
            interval,
            status_every,
            monitored: false,
            full_digests: false,
            label: String::new(),
            started: Instant::now(),
            state: Mutex::new(State::default()),
        }
    }

    /// The same board, showing whole digests on its plain lines.
    pub fn with_full_digests(self) -> Board {
        Board {
            full_digests: true,
            ..self
        }
    }

    /// How a digest is shown on a plain line: `sha256:` and 12 hex digits, or whole.
    fn shown(&self, digest: &Digest) -> String {
        match self.full_digests {
            true => digest.to_string(),
            false => format!("sha256:{}", digest.short()),
        }
    }

    /// The same board, its plain lines starting with `label` (one of several transfers that
    /// run at once and share stderr).
    pub fn labelled(self, label: &str) -> Board {
        Board {
            label: format!("{label}: "),
            ..self
        }
    }

    /// Says one plain line of this board's, with its label.
    fn say(&self, message: std::fmt::Arguments<'_>) {
        super::say(format_args!("{}{message}", self.label));
    }

    /// The same board, saying each change of the worker count on a line of its own.
    pub fn monitored(self) -> Board {
        Board {
            monitored: true,
            ..self
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The transfer begins: this many blobs and bytes to look at, on this many workers.
    pub fn begin(&self, blobs: usize, bytes: u64, workers: u32) {
        let mut state = self.state();
        (state.blobs, state.bytes, state.workers) = (blobs, bytes, workers.max(1));
        match self.display {
            Display::Json => event(
                json!({ "event": "start", "blobs": blobs, "bytes": bytes, "workers": workers.max(1) }),
            ),
            Display::Lines => {
                self.say(format_args!("{blobs} blobs, {} in all", human_bytes(bytes)))
            }
            _ => {}
        }
    }

    /// A blob starts moving.
    pub fn started(&self, blob: &Descriptor) {
        let mut state = self.state();
        state.active.push((blob.digest.clone(), 0, blob.size));
        if self.display == Display::Lines {
            self.say(format_args!(
                "{} start ({})",
                self.shown(&blob.digest),
                human_bytes(blob.size)
            ));
        }
        self.redraw(&mut state, false);
    }

    /// `n` more bytes of `digest` moved.
    pub fn moved(&self, digest: &Digest, n: u64) {
        let mut state = self.state();
        state.moved += n;
        if let Some(active) = state.active.iter_mut().find(|(d, ..)| d == digest) {
            active.1 += n;
        }
        let now = Instant::now();
        let moved = state.moved;
        state.samples.push_back((now, moved));
        while state
            .samples
            .front()
            .is_some_and(|(t, _)| now - *t > SPEED_WINDOW)
        {
            state.samples.pop_front();
        }
        self.redraw(&mut state, false);
    }

    /// A blob is done: `outcome` is `copied`, `present` or `mounted`.
    pub fn finished(&self, blob: &Descriptor, outcome: &str) {
        let mut state = self.state();
        state.finished += 1;
        state.completed += blob.size;
        state.active.retain(|(d, ..)| *d != blob.digest);
        match self.display {
            Display::Json => event(
                json!({ "event": "blob", "digest": blob.digest, "size": blob.size, "outcome": outcome }),
            ),
            Display::Lines => self.say(format_args!(
                "{} {outcome} ({})",
                self.shown(&blob.digest),
                human_bytes(blob.size)
            )),
            _ => {}
        }
        self.redraw(&mut state, false);
    }

    /// A blob's transfer failed for good (the run ends with the error).
    pub fn failed(&self, blob: &Descriptor, error: &str) {
        let mut state = self.state();
        state.failed += 1;
        state.active.retain(|(d, ..)| *d != blob.digest);
        match self.display {
            Display::Json => event(
                json!({ "event": "blob", "digest": blob.digest, "size": blob.size,
                                            "outcome": "failed", "error": error }),
            ),
            Display::Lines => self.say(format_args!("{} failed", self.shown(&blob.digest))),
            _ => {}
        }
    }

    /// A blob's transfer failed with `error` in a way that may pass and is tried again;
    /// `said` is the retry policy's line for it (the error and the pause).
    pub fn retried(&self, blob: &Descriptor, error: &str, said: &str) {
        let mut state = self.state();
        if let Some(active) = state.active.iter_mut().find(|(d, ..)| *d == blob.digest) {
            active.1 = 0;
        }
        match self.display {
            Display::Json => {
                event(json!({ "event": "retry", "digest": blob.digest, "error": error }))
            }
            Display::Lines => self.say(format_args!("{} {said}", self.shown(&blob.digest))),
            _ => {}
        }
    }

    /// The worker count changed from `from` to `to` (`--concurrency dynamic`).
    pub fn adjusted(&self, from: u32, to: u32, reason: &str) {
        let mut state = self.state();
        state.workers = to;
        state.last_adjustment = Some(format!("{from} -> {to} ({reason})"));
        match self.display {
            Display::Json => event(
                json!({ "event": "adjustment", "seconds": super::json_seconds(self.elapsed()),
                                            "from": from, "to": to, "reason": reason }),
            ),
            Display::Lines => self.say(format_args!("workers: {from} -> {to} ({reason})")),
            Display::Live { .. } if self.monitored => {
                clear(state.drawn);
                state.drawn = 0;
                self.say(format_args!("workers: {from} -> {to} ({reason})"));
            }
            Display::Off if self.monitored => {
                self.say(format_args!("workers: {from} -> {to} ({reason})"))
            }
            _ => {}
        }
        self.redraw(&mut state, true);
    }

    /// The blobs are done: the live block is cleared, so the summary is printed alone.
    pub fn end(&self) {
        let mut state = self.state();
        if let Display::Live { .. } = self.display {
            clear(state.drawn);
            state.drawn = 0;
        }
    }

    /// Time since the board was made.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Draws the board if its display and the clock say so.
    fn redraw(&self, state: &mut State, force: bool) {
        let now = Instant::now();
        let due =
            |last: Option<Instant>, every: Duration| force || last.is_none_or(|t| now - t >= every);
        match self.display {
            Display::Live { detailed } if due(state.last_draw, self.interval) => {
                let lines = if detailed {
                    block(state, self.elapsed())
                } else {
                    vec![line(state, self.elapsed())]
                };
                clear(state.drawn);
                let mut stderr = std::io::stderr().lock();
                let _ = write!(stderr, "{}", lines.join("\n"));
                let _ = stderr.flush();
                state.drawn = lines.len();
                state.last_draw = Some(now);
            }
            Display::Lines
                if state.last_status.is_some() && due(state.last_status, self.status_every) =>
            {
                self.say(format_args!("progress: {}", status(state, self.elapsed())));
                state.last_status = Some(now);
            }
            Display::Lines if state.last_status.is_none() => state.last_status = Some(now),
            Display::Json if due(state.last_draw, self.interval.max(Duration::from_secs(1))) => {
                let active: Vec<_> = (state.active.iter())
                    .map(|(digest, done, size)| json!({ "digest": digest, "done": done, "size": size }))
                    .collect();
                event(
                    json!({ "event": "progress", "bytes_done": done(state), "bytes": state.bytes,
                              "blobs_done": state.finished, "blobs": state.blobs, "active": active }),
                );
                state.last_draw = Some(now);
            }
            _ => {}
        }
    }
}

/// Prints one JSON event as a line on stdout.
fn event(value: serde_json::Value) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{value}");
    let _ = stdout.flush();
}

/// Clears the `lines` lines drawn last, leaving the cursor at the start of the first.
fn clear(lines: usize) {
    if lines == 0 {
        return;
    }
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "\r\x1b[2K");
    for _ in 1..lines {
        let _ = write!(stderr, "\x1b[1A\x1b[2K");
    }
    let _ = stderr.flush();
}

/// Bytes per second now (over the window) and on average.
fn speeds(state: &State, elapsed: Duration) -> (f64, f64) {
    let average = state.moved as f64 / elapsed.as_secs_f64().max(0.001);
    let current = match (state.samples.front(), state.samples.back()) {
        (Some((t0, b0)), Some((t1, b1))) if t1 > t0 => (b1 - b0) as f64 / (*t1 - *t0).as_secs_f64(),
        _ => average,
    };
    (current, average)
}

/// The bytes of work done: blobs finished, and what the active ones have moved.
fn done(state: &State) -> u64 {
    state.completed
        + state
            .active
            .iter()
            .map(|(_, done, size)| (*done).min(*size))
            .sum::<u64>()
}

fn eta(state: &State, speed: f64) -> String {
    if speed < 1.0 {
        return "--:--".into();
    }
    let seconds = (state.bytes.saturating_sub(done(state)) as f64 / speed) as u64;
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

fn percent(done: u64, total: u64) -> u64 {
    (done.min(total) * 100).checked_div(total).unwrap_or(100)
}

/// `45%  3/7 blobs  12.3 MB/s  ETA 0:12`.
fn status(state: &State, elapsed: Duration) -> String {
    let (current, _) = speeds(state, elapsed);
    format!(
        "{:>3}%  {}/{} blobs  {}/s  ETA {}",
        percent(done(state), state.bytes),
        state.finished,
        state.blobs,
        human_bytes(current as u64),
        eta(state, current)
    )
}

/// The simple live line: bar, status, the active blobs, the worker count.
fn line(state: &State, elapsed: Duration) -> String {
    let filled = (percent(done(state), state.bytes) as usize * BAR) / 100;
    let active: Vec<String> = (state.active.iter())
        .map(|(digest, done, size)| format!("{} {}%", digest.short(), percent(*done, *size)))
        .collect();
    format!(
        "[{}{}] {}  | {}  | x{}",
        "=".repeat(filled),
        " ".repeat(BAR - filled),
        status(state, elapsed),
        if active.is_empty() {
            "-".to_string()
        } else {
            active.join(" ")
        },
        state.workers
    )
}

/// The detailed live block: totals, runtime, each active blob, speeds, ETA.
fn block(state: &State, elapsed: Duration) -> Vec<String> {
    let (current, average) = speeds(state, elapsed);
    let mut lines = vec![
        format!(
            "blobs: {} done, {} active, {} to go  |  {} of {}  |  running {:.0}s  |  workers {}",
            state.finished,
            state.active.len(),
            state
                .blobs
                .saturating_sub(state.finished + state.active.len()),
            human_bytes(done(state)),
            human_bytes(state.bytes),
            elapsed.as_secs_f64(),
            state.workers
        ),
        format!(
            "speed: {}/s now, {}/s average  |  ETA {}{}",
            human_bytes(current as u64),
            human_bytes(average as u64),
            eta(state, current),
            state
                .last_adjustment
                .as_ref()
                .map(|last| format!("  |  last worker change: {last}"))
                .unwrap_or_default()
        ),
    ];
    for (digest, done, size) in &state.active {
        lines.push(format!(
            "  {}  {} / {}  {:>3}%",
            digest.short(),
            human_bytes(*done),
            human_bytes(*size),
            percent(*done, *size)
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        let digest = Digest::of(b"layer");
        State {
            blobs: 4,
            bytes: 1_000_000,
            workers: 2,
            finished: 1,
            completed: 200_000,
            moved: 450_000,
            active: vec![(digest, 250_000, 500_000)],
            ..State::default()
        }
    }

    #[test]
    fn the_simple_line_has_bar_percent_blobs_speed_eta_active_and_workers() {
        let line = line(&state(), Duration::from_secs(1));
        assert!(line.starts_with("[==========              ]"), "{line}");
        for part in [" 45%", "1/4 blobs", "/s", "ETA 0:01", "50%", "x2"] {
            assert!(line.contains(part), "{part} missing: {line}");
        }
        assert!(!line.contains('\n'));
    }

    #[test]
    fn the_detailed_block_lists_every_active_blob() {
        let block = block(&state(), Duration::from_secs(2));
        assert_eq!(block.len(), 3);
        assert!(
            block[0].contains("1 done, 1 active, 2 to go"),
            "{}",
            block[0]
        );
        assert!(
            block[1].contains("average") && !block[1].contains("worker change"),
            "{}",
            block[1]
        );
        let adjusted = State {
            last_adjustment: Some("1 -> 2 (throughput rose 15%)".into()),
            ..state()
        };
        assert!(
            super::block(&adjusted, Duration::from_secs(2))[1]
                .ends_with("last worker change: 1 -> 2 (throughput rose 15%)")
        );
        assert!(
            block[2].contains("250.0 kB / 500.0 kB   50%"),
            "{}",
            block[2]
        );
    }
}
