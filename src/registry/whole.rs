//! Small bodies read whole: manifests, token answers, tag pages and error bodies. Each is
//! capped in size, and in time by a total deadline (10 × `--timeout`) besides `--timeout`'s
//! bound on each stall, so a server trickling a byte at a time cannot hold a run. A body
//! larger than its cap is bad input; one cut short, failing midway or too slow is a network
//! failure, tried again like a request that failed.

use std::io::Read;
use std::time::{Duration, Instant};

use ureq::http::HeaderMap;

use super::Registry;
use super::http::Body;
use super::url;
use crate::error::{Error, Result};

/// How many `--timeout`s a small body may take to arrive whole.
pub const DEADLINE_TIMEOUTS: u32 = 10;

impl Registry {
    /// `GET url` answered with `200`, and its body read whole (see [`read`]), tried again as
    /// a whole as the retry policy says: a body cut short is retried as its request would be.
    /// `noun` names the body in errors (`the manifest`).
    pub(super) fn get_whole(
        &self,
        url: &str,
        scope: &str,
        headers: &[(&str, String)],
        limit: u64,
        noun: &str,
    ) -> Result<(HeaderMap, Vec<u8>)> {
        self.retried(self.attempts, || {
            let response = self.attempt("GET", url, scope, headers, Body::Empty, &[200])?;
            let (parts, body) = response.into_parts();
            let what = format!("GET {}: {noun}", url::shown(url));
            let bytes = read(body, limit, self.http.body_deadline(), &what)?;
            Ok((parts.headers, bytes))
        })
    }
}

/// Reads `body` whole: at most `limit` bytes, within `deadline` of starting (checked between
/// reads, each bounded by `--timeout`). `what` names the body in errors.
pub fn read(body: ureq::Body, limit: u64, deadline: Duration, what: &str) -> Result<Vec<u8>> {
    let started = Instant::now();
    let mut reader = body.into_with_config().limit(limit).reader();
    let mut bytes = Vec::new();
    let mut buffer = [0; 16 * 1024];
    loop {
        let n = reader
            .read(&mut buffer)
            .map_err(|e| match ureq::Error::from(e) {
                ureq::Error::BodyExceedsLimit(_) => {
                    Error::BadInput(format!("{what} is larger than {limit} bytes"))
                }
                e => Error::Network(format!("{what} stopped short ({e})")),
            })?;
        if n == 0 {
            return Ok(bytes);
        }
        bytes.extend_from_slice(&buffer[..n]);
        if started.elapsed() > deadline {
            return Err(Error::Network(format!(
                "{what} did not arrive whole within {} s ({DEADLINE_TIMEOUTS} × --timeout); \
                 {} bytes came",
                deadline.as_secs(),
                bytes.len()
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    /// A body of `bytes`, given `step` bytes at a time after a pause of `pause` each, then
    /// ending with `end` (`None`: the end of the body).
    struct Slow {
        bytes: Vec<u8>,
        step: usize,
        pause: Duration,
        end: Option<io::ErrorKind>,
    }

    impl Read for Slow {
        fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            if self.bytes.is_empty() {
                return match self.end {
                    Some(kind) => Err(io::Error::new(kind, "peer disconnected")),
                    None => Ok(0),
                };
            }
            std::thread::sleep(self.pause);
            let n = self.step.min(buffer.len()).min(self.bytes.len());
            buffer[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes.drain(..n);
            Ok(n)
        }
    }

    fn body(bytes: &[u8], step: usize, pause: Duration, end: Option<io::ErrorKind>) -> ureq::Body {
        ureq::Body::builder().reader(Slow {
            bytes: bytes.to_vec(),
            step,
            pause,
            end,
        })
    }

    #[test]
    fn a_whole_body_within_its_limit_is_read() {
        let read = read(
            body(b"{}", 1, Duration::ZERO, None),
            2,
            Duration::from_secs(1),
            "x",
        );
        assert_eq!(read.unwrap(), b"{}");
    }

    #[test]
    fn a_body_larger_than_its_limit_is_bad_input() {
        let error = read(
            body(b"{ }", 3, Duration::ZERO, None),
            2,
            Duration::from_secs(1),
            "x",
        )
        .unwrap_err();
        assert_eq!(error.exit_code(), 3, "{error}");
        assert!(!error.is_retryable());
        assert_eq!(error.to_string(), "x is larger than 2 bytes");
    }

    #[test]
    fn a_body_cut_short_is_a_network_failure() {
        let cut = Some(io::ErrorKind::UnexpectedEof);
        let error = read(
            body(b"{", 1, Duration::ZERO, cut),
            64,
            Duration::from_secs(1),
            "x",
        )
        .unwrap_err();
        assert!(error.is_retryable(), "{error}");
        assert_eq!(error.exit_code(), 5);
        assert!(error.to_string().starts_with("x stopped short"), "{error}");
    }

    #[test]
    fn a_trickled_body_meets_its_deadline() {
        let trickle = body(&[b' '; 100], 1, Duration::from_millis(20), None);
        let started = Instant::now();
        let error = read(trickle, 1024, Duration::from_millis(200), "x").unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(600));
        assert!(error.is_retryable(), "{error}");
        assert!(
            error.to_string().contains("did not arrive whole"),
            "{error}"
        );
    }
}
