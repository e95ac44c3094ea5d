//! What a registry's `429 Too Many Requests` says about its rate limit, in words: Docker Hub's
//! `RateLimit-Limit` and `RateLimit-Remaining` (`100;w=21600`: 100 per 6 hours), the IETF
//! draft's `RateLimit-Reset`, and `Retry-After`. Only numbers are taken from these headers;
//! anything else in them is left out, never echoed.

use std::time::Duration;

use ureq::http::HeaderMap;

/// The words to append to a 429's error: `; rate limit: 100 per 6 h, 0 left; …`, with a hint
/// to log in at `login_host` when the request was anonymous. Empty when there is nothing to
/// say.
pub fn explain(
    headers: &HeaderMap,
    retry_after: Option<Duration>,
    login_host: Option<&str>,
) -> String {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let mut facts = Vec::new();
    if let Some((limit, window)) = header("ratelimit-limit").and_then(quota) {
        facts.push(match window {
            Some(window) => format!("{limit} requests per {}", span(window)),
            None => format!("{limit} requests"),
        });
    }
    if let Some((remaining, _)) = header("ratelimit-remaining").and_then(quota) {
        facts.push(format!("{remaining} left"));
    }
    if let Some((reset, _)) = header("ratelimit-reset").and_then(quota) {
        facts.push(format!("resets in {}", span(reset)));
    }
    let mut words = String::new();
    if !facts.is_empty() {
        words.push_str(&format!("; rate limit: {}", facts.join(", ")));
    }
    if let Some(asked) = retry_after {
        words.push_str(&format!(
            "; the registry asks to wait {} (Retry-After)",
            span(asked.as_secs())
        ));
    }
    if let Some(host) = login_host {
        words.push_str(&format!(
            "; these requests were anonymous, and logged-in users get a higher limit: \
             docker-image-pusher login {host}"
        ));
    }
    words
}

/// `N` or `N;w=SECONDS` (Docker Hub's form): the number and the window, if both are numbers.
fn quota(value: &str) -> Option<(u64, Option<u64>)> {
    let mut parts = value.split(';').map(str::trim);
    let number = parts.next()?.parse().ok()?;
    let window = parts
        .filter_map(|part| part.strip_prefix("w="))
        .find_map(|seconds| seconds.parse().ok());
    Some((number, window))
}

/// A span of seconds as a person says it: `45 s`, `10 min`, `6 h`.
fn span(seconds: u64) -> String {
    match seconds {
        0..120 => format!("{seconds} s"),
        120..7200 => format!("{} min", seconds.div_ceil(60)),
        _ => format!("{} h", seconds.div_ceil(3600)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn docker_hub_headers_are_said_in_words() {
        let said = explain(
            &headers(&[
                ("ratelimit-limit", "100;w=21600"),
                ("ratelimit-remaining", "0;w=21600"),
            ]),
            Some(Duration::from_secs(3600)),
            Some("docker.io"),
        );
        assert_eq!(
            said,
            "; rate limit: 100 requests per 6 h, 0 left; the registry asks to wait 60 min \
             (Retry-After); these requests were anonymous, and logged-in users get a higher \
             limit: docker-image-pusher login docker.io"
        );
    }

    #[test]
    fn only_numbers_are_taken_from_the_headers() {
        let said = explain(
            &headers(&[
                ("ratelimit-limit", "lots; w=soon"),
                ("ratelimit-remaining", "7"),
                ("ratelimit-reset", "90"),
            ]),
            None,
            None,
        );
        assert_eq!(said, "; rate limit: 7 left, resets in 90 s");
        assert_eq!(explain(&HeaderMap::new(), None, None), "");
    }
}
