//! `--concurrency dynamic`: how many workers may move blobs at once, between `--min-concurrent`
//! and `--max-concurrent`. It starts at two (within them), or, where the first request to a
//! registry (the ping) took [`WIDE_ROUND_TRIP`] or more, with a worker per blob (a link whose
//! round trips cost more than the small blobs' bytes: widening step by step would spend the
//! transfer's first seconds below the link), and decides at the end of each window (half
//! a second for the first and after each rise, while the workers ramp up; else a second), in
//! this order (the second rule does not wait for the window's end, only for a quarter of it,
//! or what `--confidence-threshold` says: a short push over a long link is over before a
//! second window would be):
//! - the registry pushed back (429, 5xx, timeouts): one worker fewer at once, and no more
//!   probing;
//! - blobs are still waiting and the blobs done in the window spent more than a fifth of their
//!   time on round trips (before their first byte and after their last, not moving bytes):
//!   twice the workers;
//! - else, by throughput against the last window: one more while it rises by more than 10 %
//!   (and once to probe, with nothing to compare yet), one fewer when it falls by more than
//!   10 % (the first window after a wide start is no baseline: it also counts the bytes that
//!   only filled the connections' buffers).
//!
//! Each change is recorded, with the samples that led to it.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::retry::Pushbacks;

/// A first request (the ping) that took this long or longer shows a link whose round trips
/// bind: the transfer starts with a worker per blob. Loopback and a LAN answer far sooner.
pub const WIDE_ROUND_TRIP: Duration = Duration::from_millis(5);

/// The numbers the rules go by. `--concurrency-strategy` picks a set and the seeds' tuning
/// flags (`--adjustment-factor`, `--speed-threshold`, `--sample-interval`, ...) change one.
#[derive(Clone, Debug, PartialEq)]
pub struct Tuning {
    /// The workers to start with (within the minimum and maximum).
    pub start: u32,
    /// How long throughput is measured before a decision; the first window, and the one after
    /// each rise, last half as long, so the workers ramp up early.
    pub window: Duration,
    /// The change in throughput that counts as rising or falling.
    pub margin: Margin,
    /// What the workers are multiplied by when round trips bind (1: one more).
    pub factor: f64,
    /// Whether the round-trip rules apply at all: the wide start over a long link, and twice
    /// the workers while round trips bind (else only throughput decides).
    pub switching: bool,
    /// The share of the blobs' time on round trips above which they bind.
    pub round_trip_share: f64,
    /// The blobs a window must have seen done before their round trips count.
    pub min_samples: u32,
    /// The share of a window that must have passed before round trips may bind early.
    pub early: f64,
}

/// How large a change in throughput must be to count as a rise or a fall.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Margin {
    /// This share of the last window's throughput (0.10: 10 %).
    Share(f64),
    /// This many bytes per second, whatever the throughput (`--speed-threshold 1048576`).
    PerSecond(f64),
}

impl Margin {
    /// The change, in bytes per second, that counts against a window of `last` bytes per
    /// second.
    fn of(self, last: f64) -> f64 {
        match self {
            Margin::Share(share) => last * share,
            Margin::PerSecond(bytes) => bytes,
        }
    }
}

impl Tuning {
    /// The rules as described above: start at two, windows of a second, 10 %, twice.
    pub fn adaptive() -> Tuning {
        Tuning {
            start: 2,
            window: Duration::from_secs(1),
            margin: Margin::Share(0.10),
            factor: 2.0,
            switching: true,
            round_trip_share: 0.20,
            min_samples: 1,
            early: 0.25,
        }
    }

    /// Slow and steady: start at one, windows of two seconds, one worker at a time.
    pub fn conservative() -> Tuning {
        Tuning {
            start: 1,
            window: Duration::from_secs(2),
            switching: false,
            factor: 1.0,
            ..Tuning::adaptive()
        }
    }

    /// Quick to add: start at four, half-second windows, 5 %, round trips bind at 10 %.
    pub fn aggressive() -> Tuning {
        Tuning {
            start: 4,
            window: Duration::from_millis(500),
            margin: Margin::Share(0.05),
            round_trip_share: 0.10,
            ..Tuning::adaptive()
        }
    }
}

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
    tuning: Tuning,
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
    /// Blobs done in this window.
    samples: u32,
    /// The length of the current window.
    window: Duration,
    /// The blobs done in this window: time on round trips, and time moving bytes.
    round_trips: Duration,
    moving: Duration,
    window_started: Instant,
    window_bytes: u64,
    last_throughput: Option<f64>,
    /// Whether a window with nothing to compare may still try one worker more.
    probing: bool,
    pushbacks_seen: u64,
    adjustments: Vec<Adjustment>,
    /// The longest ping of the run's registries, once one is known.
    round_trip: Option<Duration>,
    /// Whether a transfer began already (only the first may start wide).
    began: bool,
    /// Whether this window's throughput is no baseline: the first after a wide start also
    /// counts the bytes that only filled the connections' buffers, so the next would seem
    /// to fall.
    filling: bool,
}

impl Governor {
    /// A governor between `min` and `max` workers going by `tuning` (starting at its `start`,
    /// within them), that takes each new count in `pushbacks` as trouble.
    pub fn new(min: u32, max: u32, tuning: Tuning, pushbacks: Pushbacks) -> Governor {
        let (min, max) = (min.max(1), max.max(min.max(1)));
        let (start, first_window) = (tuning.start.clamp(min, max), tuning.window / 2);
        let now = Instant::now();
        Governor {
            min,
            max,
            started: now,
            tuning,
            pushbacks,
            state: Mutex::new(State {
                allowed: start,
                active: 0,
                waiting: 0,
                samples: 0,
                window: first_window,
                round_trips: Duration::ZERO,
                moving: Duration::ZERO,
                window_started: now,
                window_bytes: 0,
                last_throughput: None,
                probing: true,
                pushbacks_seen: 0,
                adjustments: Vec::new(),
                round_trip: None,
                began: false,
                filling: false,
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

    /// A registry of the run answered its first request (the ping) in `took`.
    pub fn round_trip(&self, took: Duration) {
        let mut state = self.state();
        state.round_trip = state.round_trip.max(Some(took));
    }

    /// The transfer has `blobs` blobs to move; the first window starts now. The run's first
    /// transfer over a link of long round trips (see [`WIDE_ROUND_TRIP`]) starts with a
    /// worker per blob, up to the maximum: returns that change.
    pub fn begin(&self, blobs: usize) -> Option<Adjustment> {
        let mut state = self.state();
        state.waiting = blobs;
        state.window_started = Instant::now();
        let first = !std::mem::replace(&mut state.began, true);
        let took = state.round_trip.filter(|took| *took >= WIDE_ROUND_TRIP)?;
        let wide = u32::try_from(blobs)
            .unwrap_or(u32::MAX)
            .clamp(self.min, self.max);
        let widens = first && self.tuning.switching && state.adjustments.is_empty();
        (widens && wide > state.allowed).then(|| {
            let reason = format!(
                "the registry's first answer took {} ms: a worker per blob",
                took.as_millis()
            );
            state.filling = true;
            self.adjust(&mut state, wide, reason)
        })
    }

    /// Waits until another worker may start on a blob; the permit ends when it is dropped.
    pub fn permit(&self) -> Permit<'_> {
        let mut state = self.state();
        while !take_place(&mut state) {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.waiting = state.waiting.saturating_sub(1);
        Permit { governor: self }
    }

    /// A blob is done: it spent `waiting` on round trips (before its first byte, after its
    /// last) and `moving` between them. At the end of a window, decides.
    pub fn blob_moved(&self, waiting: Duration, moving: Duration) -> Option<Adjustment> {
        let mut state = self.state();
        state.round_trips += waiting;
        state.moving += moving;
        state.samples += 1;
        self.decide_at_window_end(&mut state)
    }

    /// `n` more bytes moved; at the end of a window, decides. Returns the adjustment made.
    pub fn moved(&self, n: u64) -> Option<Adjustment> {
        let mut state = self.state();
        state.window_bytes += n;
        self.decide_at_window_end(&mut state)
    }

    /// When the window is over, or a quarter of it and round trips bind: the decision its
    /// samples call for, and a new window (half a second again after adding workers, while
    /// they ramp up; else a second).
    fn decide_at_window_end(&self, state: &mut State) -> Option<Adjustment> {
        let elapsed = state.window_started.elapsed();
        if elapsed < state.window.mul_f64(self.tuning.early) {
            return None;
        }
        let timed = state.round_trips + state.moving;
        let latency = (!timed.is_zero() && state.samples >= self.tuning.min_samples)
            .then(|| state.round_trips.as_secs_f64() / timed.as_secs_f64());
        let samples = (state.allowed, state.waiting, latency);
        let bound = latency_bound(samples, self.max, &self.tuning);
        if elapsed < state.window && bound.is_none() {
            return None;
        }
        let throughput = state.window_bytes as f64 / elapsed.as_secs_f64();
        let decision = bound.or_else(|| {
            decide(
                state.allowed,
                (self.min, self.max),
                (state.last_throughput, state.probing),
                throughput,
                self.tuning.margin,
            )
        });
        state.last_throughput = (!std::mem::take(&mut state.filling)).then_some(throughput);
        state.probing = false;
        state.window = match &decision {
            Some((to, _)) if *to > state.allowed => self.tuning.window / 2,
            _ => self.tuning.window,
        };
        state.window_started = Instant::now();
        state.window_bytes = 0;
        (state.round_trips, state.moving) = (Duration::ZERO, Duration::ZERO);
        state.samples = 0;
        let (to, reason) = decision?;
        let reason = format!(
            "{reason} ({}/s in {:.1} s)",
            crate::progress::human_bytes(throughput as u64),
            elapsed.as_secs_f64()
        );
        Some(self.adjust(state, to, reason))
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

/// One worker's permit to move a blob, given back when dropped.
pub struct Permit<'a> {
    governor: &'a Governor,
}

impl Drop for Permit<'_> {
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

/// The workers times the factor (at least one more, up to `max`) when blobs are `waiting` and
/// the blobs of the window spent more than the tuning's share of their time on round trips
/// (`latency`; `None` when too few were timed).
fn latency_bound(
    (allowed, waiting, latency): (u32, usize, Option<f64>),
    max: u32,
    tuning: &Tuning,
) -> Option<(u32, String)> {
    let share = latency.filter(|share| tuning.switching && *share > tuning.round_trip_share)?;
    (waiting > 0 && allowed < max).then(|| {
        let to = ((f64::from(allowed) * tuning.factor) as u32).clamp(allowed + 1, max);
        let reason = format!(
            "round trips bind: {:.0}% of blob time, {waiting} blobs waiting",
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
    (min, max): (u32, u32),
    (last, probing): (Option<f64>, bool),
    now: f64,
    margin: Margin,
) -> Option<(u32, String)> {
    let Some(last) = last else {
        return (probing && allowed < max)
            .then(|| (allowed + 1, "trying one worker more".to_string()));
    };
    let change = margin.of(last);
    if now > last + change && allowed < max {
        return Some((
            allowed + 1,
            format!("throughput rose {:.0}%", (now / last - 1.0) * 100.0),
        ));
    }
    if now < last - change && allowed > min {
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
            decide(2, (1, 4), (Some(100.0), false), 120.0, Margin::Share(0.10)).map(|d| d.0),
            Some(3)
        );
        assert_eq!(
            decide(4, (1, 4), (Some(100.0), false), 200.0, Margin::Share(0.10)),
            None,
            "already at the maximum"
        );
        assert_eq!(
            decide(2, (1, 4), (Some(100.0), false), 105.0, Margin::Share(0.10)),
            None,
            "within 10% is no change"
        );
        assert_eq!(
            decide(1, (1, 4), (None, true), 100.0, Margin::Share(0.10)).map(|d| d.0),
            Some(2),
            "the first window probes"
        );
        assert_eq!(
            decide(1, (1, 4), (None, false), 100.0, Margin::Share(0.10)),
            None,
            "after pushback it only measures"
        );
    }

    #[test]
    fn a_margin_in_bytes_per_second_counts_the_same_change_at_any_throughput() {
        let mib = 1_048_576.0;
        let margin = Margin::PerSecond(mib);
        // 10 MB/s to 10.5 MB/s is no change against 1 MiB/s; to 12 MB/s is a rise.
        assert_eq!(decide(2, (1, 4), (Some(10e6), false), 10.5e6, margin), None);
        let rise = decide(2, (1, 4), (Some(10e6), false), 12e6, margin);
        assert_eq!(rise.map(|d| d.0), Some(3));
        let fall = decide(2, (1, 4), (Some(10e6), false), 8e6, margin);
        assert_eq!(fall.map(|d| d.0), Some(1));
    }

    #[test]
    fn round_trips_double_the_workers_while_blobs_wait() {
        let adaptive = Tuning::adaptive();
        let (to, reason) = latency_bound((2, 5, Some(0.4)), 8, &adaptive).unwrap();
        assert_eq!(to, 4);
        assert!(reason.contains("40%"), "{reason}");
        assert_eq!(
            latency_bound((6, 5, Some(0.4)), 8, &adaptive).map(|d| d.0),
            Some(8)
        );
        assert_eq!(
            latency_bound((2, 0, Some(0.9)), 8, &adaptive),
            None,
            "nothing waits"
        );
        assert_eq!(
            latency_bound((2, 5, Some(0.1)), 8, &adaptive),
            None,
            "bandwidth binds"
        );
        assert_eq!(
            latency_bound((8, 5, Some(0.9)), 8, &adaptive),
            None,
            "at the maximum"
        );
        assert_eq!(
            latency_bound((2, 5, None), 8, &adaptive),
            None,
            "no blob timed yet"
        );
        let conservative = Tuning::conservative();
        assert_eq!(
            latency_bound((2, 5, Some(0.9)), 8, &conservative),
            None,
            "conservative never switches"
        );
        let slow = Tuning {
            factor: 1.0,
            ..Tuning::adaptive()
        };
        assert_eq!(
            latency_bound((2, 5, Some(0.9)), 8, &slow).map(|d| d.0),
            Some(3)
        );
    }

    #[test]
    fn binding_round_trips_decide_after_a_quarter_of_the_window_throughput_after_all_of_it() {
        // Windows of 8 s (4 s for the first and after a rise): each back-dated moment is a
        // second or more from the threshold it is checked against, so a slow machine cannot
        // cross one between setting the clock and asking.
        let tuning = Tuning {
            window: Duration::from_secs(8),
            ..Tuning::adaptive()
        };
        let governor = Governor::new(1, 8, tuning, Pushbacks::default());
        governor.begin(10);
        let ms = Duration::from_millis;
        let window_began = |ago: u64| governor.state().window_started = Instant::now() - ms(ago);
        window_began(0);
        assert_eq!(
            governor.blob_moved(ms(90), ms(10)),
            None,
            "not before a quarter of the first window (1 s)"
        );
        window_began(2_000);
        let rise = governor
            .blob_moved(ms(90), ms(10))
            .expect("round trips bind");
        assert_eq!((rise.from, rise.to), (2, 4));
        window_began(2_000);
        assert_eq!(
            governor.blob_moved(ms(1), ms(99)),
            None,
            "bandwidth binds: throughput waits for the window's end (4 s after a rise)"
        );
        window_began(5_000);
        let end = governor.moved(1).expect("a decision at the window's end");
        assert_eq!((end.from, end.to), (4, 5));
        assert!(end.reason.starts_with("throughput rose"), "{}", end.reason);
    }

    #[test]
    fn a_long_first_answer_starts_the_first_transfer_with_a_worker_per_blob() {
        let ms = Duration::from_millis;
        let governor = |tuning: Tuning, ping: Duration| {
            let governor = Governor::new(1, 8, tuning, Pushbacks::default());
            governor.round_trip(ping);
            governor
        };
        let loopback = governor(Tuning::adaptive(), Duration::from_micros(300));
        assert_eq!(loopback.begin(12), None, "loopback starts as it always did");
        assert_eq!(loopback.allowed(), 2);
        let wan = governor(Tuning::adaptive(), ms(1));
        wan.round_trip(ms(41));
        let wide = wan.begin(12).expect("a wide start");
        assert_eq!((wide.from, wide.to), (2, 8), "up to the maximum");
        assert!(wide.reason.contains("41 ms"), "{}", wide.reason);
        wan.state().allowed = 5;
        assert_eq!(wan.begin(12), None, "only the run's first transfer");
        assert_eq!(wan.allowed(), 5);
        let few = governor(Tuning::adaptive(), ms(41));
        assert_eq!(few.begin(3).map(|a| a.to), Some(3), "a worker per blob");
        let conservative = governor(Tuning::conservative(), ms(41));
        assert_eq!(conservative.begin(12), None, "never switches");
        let troubled = governor(Tuning::adaptive(), ms(41));
        troubled.trouble("HTTP 503");
        assert_eq!(troubled.begin(12), None, "pushed back before it began");
    }

    #[test]
    fn the_window_after_a_wide_start_is_no_baseline() {
        let governor = Governor::new(1, 8, Tuning::adaptive(), Pushbacks::default());
        governor.round_trip(Duration::from_millis(41));
        governor.begin(12).expect("a wide start");
        let ms = Duration::from_millis;
        let window_began = |ago: u64| governor.state().window_started = Instant::now() - ms(ago);
        // The first window: the connections' buffers fill at once.
        window_began(600);
        assert_eq!(governor.moved(100_000_000), None, "at the maximum already");
        // The second moves at the link's pace, far less: no fall to act on.
        window_began(1_100);
        assert_eq!(governor.moved(10_000_000), None, "a burst is no baseline");
        // The third is held to the second.
        window_began(1_100);
        let fell = governor.moved(1_000_000).expect("a real fall");
        assert!(
            fell.reason.starts_with("throughput fell"),
            "{}",
            fell.reason
        );
        assert_eq!((fell.from, fell.to), (8, 7));
    }

    #[test]
    fn falling_throughput_removes_a_worker_down_to_the_minimum() {
        let (to, reason) =
            decide(3, (1, 4), (Some(100.0), false), 50.0, Margin::Share(0.10)).unwrap();
        assert_eq!((to, reason.as_str()), (2, "throughput fell 50%"));
        assert_eq!(
            decide(1, (1, 4), (Some(100.0), false), 10.0, Margin::Share(0.10)),
            None,
            "already at the minimum"
        );
    }

    #[test]
    fn trouble_lowers_at_once_and_is_recorded() {
        let governor = Governor::new(1, 4, Tuning::adaptive(), Pushbacks::default());
        assert_eq!(governor.allowed(), 2, "it starts at two");
        assert_eq!(
            Governor::new(1, 1, Tuning::adaptive(), Pushbacks::default()).allowed(),
            1
        );
        assert_eq!(
            Governor::new(3, 4, Tuning::adaptive(), Pushbacks::default()).allowed(),
            3
        );
        governor.state().allowed = 1;
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
        let governor = Governor::new(1, 4, Tuning::adaptive(), pushbacks.clone());
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
        let governor = Governor::new(1, 1, Tuning::adaptive(), Pushbacks::default());
        let first = governor.permit();
        assert!(
            !take_place(&mut governor.state()),
            "no second place while one worker is allowed"
        );
        std::thread::scope(|scope| {
            let waiting = scope.spawn(|| drop(governor.permit()));
            drop(first);
            waiting
                .join()
                .expect("the waiting worker gets the place given back");
        });
        assert_eq!(governor.state().active, 0);
    }
}
