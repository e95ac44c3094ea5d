//! The one retry policy. A request, or a blob transfer, is tried at most once more than
//! `--retry-attempts` says; between tries it waits with exponential backoff and jitter, or as
//! long as the registry's `Retry-After` asks, up to a minute (asked to wait longer, it does not
//! try again: see `Refusal::is_retryable`). The requests a blob transfer
//! makes are each sent once: the transfer owns their retries, so retries never nest.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::Error;

/// The longest pause one `Retry-After` may impose: a registry asking for a day gets a minute.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The pause before try `attempt + 1` after `error` failed try `attempt`, and the words to
/// add when the registry asked for it.
pub fn pause(attempt: u32, error: &Error) -> (Duration, &'static str) {
    match error.refusal().and_then(|refusal| refusal.retry_after) {
        Some(asked) => (
            asked.min(MAX_RETRY_AFTER),
            " (the registry asked to wait, with Retry-After)",
        ),
        None => (backoff(attempt), ""),
    }
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

/// Exponential backoff with jitter: about 0.5 s, 1 s, 2 s, … capped at 30 s.
pub fn backoff(attempt: u32) -> Duration {
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
            Error::Refused(Box::new(crate::error::Refusal {
                request: "GET x".into(),
                status: 503,
                codes: Vec::new(),
                detail: String::new(),
                retry_after: Some(pause_asked(asked)),
                rate_limit: String::new(),
            }))
        };
        assert_eq!(pause(1, &refused("30")).0, Duration::from_secs(30));
        assert_eq!(pause(1, &refused("60")).0, MAX_RETRY_AFTER);
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
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= Duration::from_millis(500));
        assert!(backoff(3) >= Duration::from_millis(1000));
        assert!(backoff(40) <= Duration::from_secs(30));
    }
}
