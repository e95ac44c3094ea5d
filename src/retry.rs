//! The one retry policy: which failures may pass ([`transient`], [`worth_retrying`]), how
//! often each is tried, how long to wait, and the one loop that does it ([`retried`]), used by
//! the registry for a request that stands alone and by the copy of a blob. A request that stands alone is tried at most once more than
//! `--retry-attempts` says. A blob transfer counts its failures in a row: any step that moved
//! it on (an upload session opened, bytes acknowledged, a response read whole) starts the count
//! again, and it ends once `--retry-attempts` + 1 tries in a row fail, or after
//! [`FAILURES_PER_ATTEMPT`] times as many failures in all. Between tries it waits with
//! exponential backoff and jitter, or as long as the registry's `Retry-After` asks, up to a
//! minute (asked to wait longer, it does not try again), saying each pause in one wording. The
//! requests a blob transfer makes are each sent once: the transfer owns their retries, so
//! retries never nest.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// The longest pause one `Retry-After` may impose: a registry asking for a day gets a minute.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Whether a registry's answer of `status`, with the codes of its error body, says a failure
/// that may pass: a timeout (408), a rate limit (429), a server error (5xx), or a 400 that says
/// the upload went out of step (`BLOB_UPLOAD_INVALID`).
pub fn transient(status: u16, codes: &[String]) -> bool {
    matches!(status, 408 | 429 | 500..=599)
        || (status == 400 && codes.iter().any(|c| c == "BLOB_UPLOAD_INVALID"))
}

/// Whether a registry's refusal is worth trying again: [`transient`], and not asking (with
/// `retry_after`) to wait longer than a retry may, as a rate limit that resets in hours does.
pub fn worth_retrying(status: u16, codes: &[String], retry_after: Option<Duration>) -> bool {
    transient(status, codes) && retry_after.is_none_or(|asked| asked <= MAX_RETRY_AFTER)
}

/// Runs `attempt` until it succeeds, fails in a way that will not pass, or `again` allows no
/// more: `again` is told each failure that may pass and answers the failures in a row (for
/// the pause) when another try is allowed. Before each pause, `said` gets the error and the
/// words that say it and the pause (`…; retrying in 1.0s`). The one retry loop: a request that
/// stands alone and a blob transfer both go through it.
pub fn retried<T>(
    mut attempt: impl FnMut() -> Result<T>,
    mut again: impl FnMut(&Error) -> Option<u32>,
    mut said: impl FnMut(&Error, &str),
) -> Result<T> {
    loop {
        let error = match attempt() {
            Ok(done) => return Ok(done),
            Err(error) => error,
        };
        let Some(in_a_row) = Some(&error)
            .filter(|error| error.is_retryable())
            .and_then(&mut again)
        else {
            return Err(error);
        };
        let (pause, words) = pause(in_a_row, &error);
        said(&error, &words);
        std::thread::sleep(pause);
    }
}

/// The pause before try `attempt + 1` after `error` failed try `attempt`, and the words that
/// say it: the error, then `; retrying in 1.0s`, and when the registry asked for the pause, so.
fn pause(attempt: u32, error: &Error) -> (Duration, String) {
    let (pause, why) = match error.refusal().and_then(|refusal| refusal.retry_after) {
        Some(asked) => (
            asked.min(MAX_RETRY_AFTER),
            " (the registry asked to wait, with Retry-After)",
        ),
        None => (backoff(attempt), ""),
    };
    let words = format!("{error}; retrying in {:.1}s{why}", pause.as_secs_f64());
    (pause, words)
}

/// How many requests the registries of a run tried again because the registry or the network
/// pushed back (408, 429, 5xx, timeouts, lost connections): counted by every registry
/// connection that shares it, watched by `--concurrency dynamic`.
#[derive(Clone, Debug, Default)]
pub struct Pushbacks(Arc<AtomicU64>);

impl Pushbacks {
    /// Counts one more.
    pub fn note(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// How many so far.
    pub fn total(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// How many failures in all one blob transfer may have, per try `--retry-attempts` allows in a
/// row: a registry that keeps taking steps but never lets a blob finish still ends the run.
pub const FAILURES_PER_ATTEMPT: u32 = 4;

/// The steps one blob transfer made that moved it on, counted by whoever made them (the
/// upload's requests, the reopened source).
#[derive(Debug, Default)]
pub struct Headway(AtomicU64);

impl Headway {
    /// Counts one more step.
    pub fn made(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// How many so far.
    fn steps(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What one blob transfer may still fail: `attempts` tries in a row with no headway between
/// them, [`FAILURES_PER_ATTEMPT`] times as many in all.
#[derive(Debug)]
pub struct Budget {
    attempts: u32,
    in_a_row: u32,
    failures: u32,
    /// The headway seen at the last failure.
    steps: u64,
}

impl Budget {
    /// A budget of `attempts` tries in a row (at least one).
    pub fn new(attempts: u32) -> Budget {
        Budget {
            attempts: attempts.max(1),
            in_a_row: 0,
            failures: 0,
            steps: 0,
        }
    }

    /// Counts a failed try, after `headway` so far: `Some(n)` when another is allowed, `n`
    /// being the failures in a row (for the pause), `None` when the budget is spent.
    pub fn failed(&mut self, headway: &Headway) -> Option<u32> {
        let steps = headway.steps();
        self.in_a_row = match steps == self.steps {
            true => self.in_a_row + 1,
            false => 1,
        };
        self.steps = steps;
        self.failures += 1;
        let cap = self.attempts.saturating_mul(FAILURES_PER_ATTEMPT);
        (self.in_a_row < self.attempts && self.failures < cap).then_some(self.in_a_row)
    }

    /// The failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Why a spent budget ended the transfer, for its error; nothing when it allowed one try.
    pub fn spent(&self) -> Option<String> {
        match self.in_a_row < self.attempts {
            _ if self.failures < 2 => None,
            true => Some(format!(
                "{} failures in all, the most for one blob",
                self.failures
            )),
            false => Some(format!("{} failures in a row", self.in_a_row)),
        }
    }
}

/// Exponential backoff with jitter: about 0.5 s, 1 s, 2 s, … capped at 30 s.
fn backoff(attempt: u32) -> Duration {
    let base = 500u64
        .saturating_mul(1 << attempt.min(6).saturating_sub(1))
        .min(30_000);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_millis(base / 2 + u64::from(nanos) % (base / 2 + 1))
}

/// A `Retry-After` value in seconds (an HTTP date is taken as a short pause).
pub fn pause_asked(value: &str) -> Duration {
    Duration::from_secs(value.trim().parse::<u64>().unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_capped_at_a_minute() {
        assert_eq!(pause_asked("2"), Duration::from_secs(2));
        let refused = |asked: &str| {
            let retry_after = Some(pause_asked(asked));
            Error::Refused(Box::new(crate::error::Refusal {
                request: "GET x".into(),
                status: 503,
                codes: Vec::new(),
                detail: String::new(),
                retry_after,
                retryable: worth_retrying(503, &[], retry_after),
                advice: String::new(),
            }))
        };
        let (pause, words) = pause(1, &refused("30"));
        assert_eq!(pause, Duration::from_secs(30));
        assert_eq!(
            words,
            "GET x: HTTP 503; retrying in 30.0s (the registry asked to wait, with Retry-After)"
        );
        assert_eq!(super::pause(1, &refused("60")).0, MAX_RETRY_AFTER);
        assert!(
            !refused("86400").is_retryable(),
            "a day is not waited for at all"
        );
        assert_eq!(
            pause_asked("Wed, 21 Oct 2026 07:28:00 GMT"),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn timeouts_rate_limits_server_errors_and_an_upload_out_of_step_may_pass() {
        let codes = |codes: &[&str]| codes.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        for status in [408, 429, 500, 502, 503, 599] {
            assert!(transient(status, &[]), "{status}");
        }
        for status in [400, 401, 403, 404, 405, 409, 416] {
            assert!(!transient(status, &[]), "{status}");
        }
        assert!(transient(400, &codes(&["BLOB_UPLOAD_INVALID"])));
        assert!(!transient(400, &codes(&["MANIFEST_INVALID"])));
        let minute = Some(MAX_RETRY_AFTER);
        assert!(worth_retrying(429, &[], minute));
        assert!(!worth_retrying(429, &[], Some(MAX_RETRY_AFTER * 2)));
        assert!(!worth_retrying(404, &[], None));
    }

    #[test]
    fn a_budget_counts_failures_in_a_row_and_caps_them_in_all() {
        let headway = Headway::default();
        let mut budget = Budget::new(3);
        assert_eq!(budget.failed(&headway), Some(1));
        assert_eq!(budget.failed(&headway), Some(2));
        headway.made();
        assert_eq!(
            budget.failed(&headway),
            Some(1),
            "a step starts the count again"
        );
        assert_eq!(budget.failed(&headway), Some(2));
        assert_eq!(budget.failed(&headway), None, "three in a row");
        assert_eq!(budget.spent().unwrap(), "3 failures in a row");

        let mut budget = Budget::new(3);
        let allowed = (0..20)
            .take_while(|_| {
                headway.made();
                budget.failed(&headway).is_some()
            })
            .count();
        assert_eq!(allowed, 11, "twelve failures in all, however many steps");
        assert_eq!(budget.failures(), 12);
        assert_eq!(
            budget.spent().unwrap(),
            "12 failures in all, the most for one blob"
        );
        let mut once = Budget::new(1);
        assert_eq!(once.failed(&headway), None);
        assert_eq!(once.spent(), None, "one try is not given up on");
    }

    #[test]
    fn the_loop_tries_what_may_pass_while_allowed_and_says_each_pause() {
        let (tries, mut words) = (std::cell::Cell::new(0), Vec::new());
        let ended: Result<()> = retried(
            || {
                tries.set(tries.get() + 1);
                Err(Error::Network("lost".into()))
            },
            |_| (tries.get() < 2).then_some(tries.get()),
            |_, said| words.push(said.to_string()),
        );
        assert_eq!(ended.unwrap_err().to_string(), "lost");
        assert_eq!(tries.get(), 2);
        assert_eq!(words.len(), 1);
        assert!(words[0].starts_with("lost; retrying in "), "{words:?}");

        let mut tries = 0;
        let ended: Result<()> = retried(
            || {
                tries += 1;
                Err(Error::BadInput("bad".into()))
            },
            |_| Some(1),
            |_, said| panic!("a failure that will not pass is not retried: {said}"),
        );
        assert!(ended.is_err());
        assert_eq!(tries, 1);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= Duration::from_millis(500));
        assert!(backoff(3) >= Duration::from_millis(1000));
        assert!(backoff(40) <= Duration::from_secs(30));
    }
}
