//! `--concurrency dynamic`: how many workers may move blobs at once, between `--min-concurrent`
//! and `--max-concurrent`. It starts at the minimum and decides at the end of each window (the
//! first after half a second, then every second), in this order:
//! - the registry pushed back (429, 5xx, timeouts): one worker fewer at once, and no more
//!   probing;
//! - blobs are still waiting and the blobs of the window spent more than a fifth of their time
//!   before their first byte (round trips, not bandwidth, bound them): twice the workers;
//! - else, by throughput against the last window: one more while it rises by more than 10 %
//!   (and once to probe, with nothing to compare yet), one fewer when it falls by more than
//!   10 %.
//!
//! Each change is recorded, with the samples that led to it.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::retry::Pushbacks;

/// How long the first window lasts: the first decision comes early, as most of a WAN transfer
/// of small layers is over within seconds.
const FIRST_WINDOW: Duration = Duration::from_millis(500);
/// How long throughput is measured before each later decision.
const WINDOW: Duration = Duration::from_secs(1);
/// The share of the blobs' time before their first byte above which more workers help.
const LATENCY_BOUND: f64 = 0.2;
/// The change in throughput that counts as rising or falling.
const MARGIN: f64 = 0.10;

/// One change of the worker count.
#[derive(Clone, Debug, PartialEq)]
pub struct Adjustment {
    /// Since the transfer began.
    pub at: Duration,
    pub from: u32,
    pub to: u32,
    pub reason: String,
}

/// The shared worker count and what it is based on.
pub struct Governor {
    min: u32,
    max: u32,
    started: Instant,
    /// The requests the registries tried again: more than last seen is trouble.
    pushbacks: Pushbacks,
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    allowed: u32,
    active: u32,
    /// Blobs not started yet.
    waiting: usize,
    /// The length of the current window.
    window: Duration,
    /// The blobs of this window: time before their first byte, and time moving bytes.
    before_first_byte: Duration,
    moving: Duration,
    window_started: Instant,
    window_bytes: u64,
    last_throughput: Option<f64>,
    /// Whether a window with nothing to compare may still try one worker more.
    probing: bool,
    pushbacks_seen: u64,
    adjustments: Vec<Adjustment>,
}

impl Governor {
    /// A governor between `min` and `max` workers, starting at `min`, that takes each new
    /// count in `pushbacks` as trouble.
    pub fn new(min: u32, max: u32, pushbacks: Pushbacks) -> Governor {
        let (min, max) = (min.max(1), max.max(min.max(1)));
        let now = Instant::now();
        Governor {
            min,
            max,
            started: now,
            pushbacks,
            state: Mutex::new(State {
                allowed: min,
                active: 0,
                waiting: 0,
                window: FIRST_WINDOW,
                before_first_byte: Duration::ZERO,
                moving: Duration::ZERO,
                window_started: now,
                window_bytes: 0,
                last_throughput: None,
                probing: true,
                pushbacks_seen: 0,
                adjustments: Vec::new(),
            }),
            changed: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The number of workers allowed now.
    pub fn allowed(&self) -> u32 {
        self.state().allowed
    }

    /// The transfer has `blobs` blobs to move.
    pub fn begin(&self, blobs: usize) {
        self.state().waiting = blobs;
    }

    /// Waits until another worker may start on a blob; the leave ends when it is dropped.
    pub fn leave(&self) -> Leave<'_> {
        let mut state = self.state();
        while !take_place(&mut state) {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.waiting = state.waiting.saturating_sub(1);
        Leave { governor: self }
    }

    /// A blob has moved all its bytes: `before_first_byte` after it started, then `moving`.
    pub fn blob_moved(&self, before_first_byte: Duration, moving: Duration) {
        let mut state = self.state();
        state.before_first_byte += before_first_byte;
        state.moving += moving;
    }

    /// `n` more bytes moved; at the end of a window, decides. Returns the adjustment made.
    pub fn moved(&self, n: u64) -> Option<Adjustment> {
        let mut state = self.state();
        state.window_bytes += n;
        let elapsed = state.window_started.elapsed();
        if elapsed < state.window {
            return None;
        }
        let throughput = state.window_bytes as f64 / elapsed.as_secs_f64();
        let timed = state.before_first_byte + state.moving;
        let latency =
            (!timed.is_zero()).then(|| state.before_first_byte.as_secs_f64() / timed.as_secs_f64());
        let decision =
            latency_bound(state.allowed, self.max, state.waiting, latency).or_else(|| {
                decide(
                    state.allowed,
                    self.min,
                    self.max,
                    state.last_throughput,
                    state.probing,
                    throughput,
                )
            });
        state.last_throughput = Some(throughput);
        state.probing = false;
        state.window = WINDOW;
        state.window_started = Instant::now();
        state.window_bytes = 0;
        (state.before_first_byte, state.moving) = (Duration::ZERO, Duration::ZERO);
        let (to, reason) = decision?;
        let reason = format!(
            "{reason} ({}/s{})",
            crate::progress::human_bytes(throughput as u64),
            latency.map_or(String::new(), |share| format!(
                ", {:.0}% before the first byte",
                share * 100.0
            ))
        );
        Some(self.adjust(&mut state, to, reason))
    }

    /// One worker fewer when the registries pushed back since the last look.
    pub fn watch_pushbacks(&self) -> Option<Adjustment> {
        let total = self.pushbacks.total();
        {
            let mut state = self.state();
            if total <= state.pushbacks_seen {
                return None;
            }
            state.pushbacks_seen = total;
        }
        self.trouble("a request was retried after 429, 5xx or a timeout")
    }

    /// The registry pushed back (`reason`): one worker fewer, and a new window.
    pub fn trouble(&self, reason: &str) -> Option<Adjustment> {
        let mut state = self.state();
        state.window_started = Instant::now();
        state.window_bytes = 0;
        state.last_throughput = None;
        state.probing = false;
        if state.allowed <= self.min {
            return None;
        }
        let to = state.allowed - 1;
        Some(self.adjust(
            &mut state,
            to,
            format!("the registry pushed back: {reason}"),
        ))
    }

    fn adjust(&self, state: &mut State, to: u32, reason: String) -> Adjustment {
        let adjustment = Adjustment {
            at: self.started.elapsed(),
            from: state.allowed,
            to,
            reason,
        };
        state.allowed = to;
        state.adjustments.push(adjustment.clone());
        self.changed.notify_all();
        adjustment
    }

    /// Every change made so far.
    pub fn adjustments(&self) -> Vec<Adjustment> {
        self.state().adjustments.clone()
    }
}

/// One worker's leave to move a blob, given back when dropped.
pub struct Leave<'a> {
    governor: &'a Governor,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.governor.state().active -= 1;
        self.governor.changed.notify_all();
    }
}

/// Takes a worker's place if one is free.
fn take_place(state: &mut State) -> bool {
    let free = state.active < state.allowed;
    state.active += u32::from(free);
    free
}

/// Twice the workers (up to `max`) when blobs are `waiting` and the blobs of the window spent
/// more than [`LATENCY_BOUND`] of their time before their first byte (`latency`).
fn latency_bound(
    allowed: u32,
    max: u32,
    waiting: usize,
    latency: Option<f64>,
) -> Option<(u32, String)> {
    let share = latency.filter(|share| *share > LATENCY_BOUND)?;
    (waiting > 0 && allowed < max).then(|| {
        let to = (allowed * 2).min(max);
        let reason = format!(
            "round trips bind: {:.0}% of the time before the first byte, {waiting} blobs waiting",
            share * 100.0
        );
        (to, reason)
    })
}

/// The new worker count and why, when the throughput of the last window (`now`, bytes per
/// second) calls for one, compared with the window before (`last`); with nothing to compare,
/// one worker more when `probing`.
fn decide(
    allowed: u32,
    min: u32,
    max: u32,
    last: Option<f64>,
    probing: bool,
    now: f64,
) -> Option<(u32, String)> {
    let Some(last) = last else {
        return (probing && allowed < max)
            .then(|| (allowed + 1, "trying one worker more".to_string()));
    };
    if now > last * (1.0 + MARGIN) && allowed < max {
        return Some((
            allowed + 1,
            format!("throughput rose {:.0}%", (now / last - 1.0) * 100.0),
        ));
    }
    if now < last * (1.0 - MARGIN) && allowed > min {
        return Some((
            allowed - 1,
            format!("throughput fell {:.0}%", (1.0 - now / last) * 100.0),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rising_throughput_adds_a_worker_up_to_the_maximum() {
        assert_eq!(
            decide(2, 1, 4, Some(100.0), false, 120.0).map(|d| d.0),
            Some(3)
        );
        assert_eq!(
            decide(4, 1, 4, Some(100.0), false, 200.0),
            None,
            "already at the maximum"
        );
        assert_eq!(
            decide(2, 1, 4, Some(100.0), false, 105.0),
            None,
            "within 10% is no change"
        );
        assert_eq!(
            decide(1, 1, 4, None, true, 100.0).map(|d| d.0),
            Some(2),
            "the first window probes"
        );
        assert_eq!(
            decide(1, 1, 4, None, false, 100.0),
            None,
            "after pushback it only measures"
        );
    }

    #[test]
    fn round_trips_double_the_workers_while_blobs_wait() {
        let (to, reason) = latency_bound(2, 8, 5, Some(0.4)).unwrap();
        assert_eq!(to, 4);
        assert!(reason.contains("40%"), "{reason}");
        assert_eq!(latency_bound(6, 8, 5, Some(0.4)).map(|d| d.0), Some(8));
        assert_eq!(latency_bound(2, 8, 0, Some(0.9)), None, "nothing waits");
        assert_eq!(latency_bound(2, 8, 5, Some(0.1)), None, "bandwidth binds");
        assert_eq!(latency_bound(8, 8, 5, Some(0.9)), None, "at the maximum");
        assert_eq!(latency_bound(2, 8, 5, None), None, "no blob timed yet");
    }

    #[test]
    fn falling_throughput_removes_a_worker_down_to_the_minimum() {
        let (to, reason) = decide(3, 1, 4, Some(100.0), false, 50.0).unwrap();
        assert_eq!((to, reason.as_str()), (2, "throughput fell 50%"));
        assert_eq!(
            decide(1, 1, 4, Some(100.0), false, 10.0),
            None,
            "already at the minimum"
        );
    }

    #[test]
    fn trouble_lowers_at_once_and_is_recorded() {
        let governor = Governor::new(1, 4, Pushbacks::default());
        assert_eq!(governor.allowed(), 1, "it starts at the minimum");
        assert_eq!(governor.trouble("HTTP 429"), None, "not below the minimum");
        governor.state().allowed = 3;
        let adjustment = governor.trouble("HTTP 503").unwrap();
        assert_eq!((adjustment.from, adjustment.to), (3, 2));
        assert!(adjustment.reason.contains("503"));
        assert_eq!(governor.adjustments(), vec![adjustment]);
    }

    #[test]
    fn more_pushbacks_than_last_seen_are_trouble() {
        let pushbacks = Pushbacks::default();
        let governor = Governor::new(1, 4, pushbacks.clone());
        governor.state().allowed = 3;
        assert_eq!(governor.watch_pushbacks(), None);
        pushbacks.note();
        pushbacks.note();
        assert_eq!(governor.watch_pushbacks().map(|a| a.to), Some(2));
        assert_eq!(
            governor.watch_pushbacks(),
            None,
            "the same two are not counted again"
        );
        pushbacks.note();
        assert_eq!(governor.watch_pushbacks().map(|a| a.to), Some(1));
    }

    #[test]
    fn workers_wait_for_room() {
        let governor = Governor::new(1, 2, Pushbacks::default());
        let first = governor.leave();
        assert!(
            !take_place(&mut governor.state()),
            "no second place while one worker is allowed"
        );
        std::thread::scope(|scope| {
            let waiting = scope.spawn(|| drop(governor.leave()));
            drop(first);
            waiting
                .join()
                .expect("the waiting worker gets the place given back");
        });
        assert_eq!(governor.state().active, 0);
    }
}
