//! `--limit-rate`: a cap on the bytes read from sources per second, shared by every worker, for
//! shared or metered links. A token bucket allows a burst of a tenth of a second's worth, so
//! the cap holds within a few percent over any transfer of two seconds or more (a bucket of a
//! whole second let a 2 s transfer run at 1.5 times the cap).

use std::io::{self, Read};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The burst the bucket holds, as a share of a second's worth.
const BURST: f64 = 0.1;

/// The shared cap.
pub struct RateLimit {
    rate: u64,
    bucket: Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl RateLimit {
    /// A cap of `rate` bytes per second (at least 1).
    pub fn new(rate: u64) -> RateLimit {
        let rate = rate.max(1);
        RateLimit {
            rate,
            bucket: Mutex::new(Bucket {
                tokens: rate as f64 * BURST,
                refilled: Instant::now(),
            }),
        }
    }

    /// `reader`, slowed to keep every reader of this cap together under it.
    pub fn wrap<'a>(&'a self, reader: Box<dyn Read + Send + 'a>) -> Box<dyn Read + Send + 'a> {
        Box::new(Limited {
            inner: reader,
            limit: self,
        })
    }

    /// Takes `n` bytes from the bucket, sleeping (outside the lock) as long as that overdraws it.
    fn take(&self, n: usize) {
        let pause = {
            let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let (tokens, pause) = take(bucket.tokens, now - bucket.refilled, self.rate, n as u64);
            bucket.tokens = tokens;
            bucket.refilled = now;
            pause
        };
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
}

/// The bucket after refilling for `elapsed` (capped at the burst) and taking `n`, and how long
/// to wait for the overdraft to be paid back.
fn take(tokens: f64, elapsed: Duration, rate: u64, n: u64) -> (f64, Duration) {
    let rate = rate as f64;
    let left = (tokens + elapsed.as_secs_f64() * rate).min(rate * BURST) - n as f64;
    let pause = if left < 0.0 {
        Duration::from_secs_f64(-left / rate)
    } else {
        Duration::ZERO
    };
    (left, pause)
}

struct Limited<'a> {
    inner: Box<dyn Read + Send + 'a>,
    limit: &'a RateLimit,
}

impl Read for Limited<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buffer)?;
        self.limit.take(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_lets_a_tenth_of_a_second_through_then_paces() {
        let second = Duration::from_secs(1);
        let (left, pause) = take(100.0, Duration::ZERO, 1000, 100);
        assert_eq!((left, pause), (0.0, Duration::ZERO));
        let (left, pause) = take(left, Duration::ZERO, 1000, 500);
        assert_eq!(
            pause,
            second / 2,
            "500 bytes more at 1000/s wait half a second"
        );
        let (_, pause) = take(left, second / 2, 1000, 500);
        assert_eq!(
            pause,
            second / 2,
            "the half second already waited paid the debt, not this"
        );
    }

    #[test]
    fn idle_time_refills_no_more_than_the_burst() {
        let (left, pause) = take(0.0, Duration::from_secs(60), 1000, 600);
        assert_eq!((left, pause), (-500.0, Duration::from_millis(500)));
    }
}
