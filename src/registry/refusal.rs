//! The one way from a registry's answer (or its token server's) to a [`Refusal`]: the codes
//! and words of its error body, read within a deadline and capped, the pause its
//! `Retry-After` asks for, what its rate-limit headers say, and the retry policy's verdict.

use std::time::Duration;

use super::http::Response;
use super::{rate_limit, whole};
use crate::error::Refusal;
use crate::inert::inert;
use crate::retry;

/// Error bodies are shown to the user; this much is read.
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// What a response whose status was not asked for says: the registry's own codes and words
/// from its body, the pause its `Retry-After` asks for, on a 429 what its rate-limit headers
/// say, and whether the retry policy finds it worth trying again. Its body is read within
/// `deadline`. The one way from an answer to a refusal, for the registry and its token server.
pub(super) fn refusal(
    what: &str,
    status: u16,
    response: Response,
    login_host: Option<&str>,
    deadline: Duration,
) -> Refusal {
    let retry_after = (response.headers().get("retry-after"))
        .and_then(|value| value.to_str().ok())
        .map(retry::pause_asked);
    let advice = match status {
        429 => rate_limit::explain(response.headers(), retry_after, login_host),
        _ => String::new(),
    };
    let (codes, detail) = read_error_body(response, deadline);
    Refusal {
        request: what.to_string(),
        status,
        retryable: retry::worth_retrying(status, &codes, retry_after),
        codes,
        detail,
        retry_after,
        advice,
    }
}

/// The registry's explanation from an error body: the codes of its JSON errors, and
/// `: CODE: message` for each, or the first line of anything else, capped; nothing when it
/// does not arrive whole within `deadline`.
fn read_error_body(response: Response, deadline: Duration) -> (Vec<String>, String) {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        code: Option<String>,
        message: Option<String>,
    }
    let Ok(bytes) = whole::read(response.into_body(), MAX_ERROR_BODY, deadline, "") else {
        return (Vec::new(), String::new());
    };
    if let Ok(parsed) = serde_json::from_slice::<Errors>(&bytes)
        && !parsed.errors.is_empty()
    {
        let codes: Vec<String> = (parsed.errors.iter())
            .map(|item| item.code.clone().unwrap_or_else(|| "ERROR".into()))
            .collect();
        let items: Vec<String> = (parsed.errors.iter().zip(&codes))
            .map(|(item, code)| match &item.message {
                Some(message) => format!("{}: {}", inert(code), inert(message)),
                None => inert(code).to_string(),
            })
            .collect();
        return (codes, format!(": {}", items.join("; ")));
    }
    let text = String::from_utf8_lossy(&bytes);
    let line = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or_default();
    let detail = match line.is_empty() {
        true => String::new(),
        false => format!(": {}", inert(&line.chars().take(200).collect::<String>())),
    };
    (Vec::new(), detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    /// A refusal with this status and these codes.
    fn refused(status: u16, codes: &[&str]) -> Error {
        let codes: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
        Error::Refused(Box::new(Refusal {
            request: "GET x".into(),
            status,
            retryable: retry::worth_retrying(status, &codes, None),
            codes,
            detail: String::new(),
            retry_after: None,
            advice: String::new(),
        }))
    }

    #[test]
    fn statuses_map_to_exit_codes() {
        assert_eq!(refused(401, &[]).exit_code(), 4);
        assert_eq!(refused(403, &[]).exit_code(), 4);
        assert_eq!(refused(404, &[]).exit_code(), 6);
        assert!(refused(503, &[]).is_retryable());
        assert!(refused(429, &[]).is_retryable());
        assert!(!refused(400, &["MANIFEST_INVALID"]).is_retryable());
        assert_eq!(refused(400, &["MANIFEST_INVALID"]).exit_code(), 3);
        assert!(refused(400, &["BLOB_UPLOAD_INVALID"]).is_retryable());
        assert_eq!(refused(405, &[]).exit_code(), 5);
    }
}
