//! The token server of the Distribution token spec: a `GET` with Basic credentials (or none)
//! and the OAuth2 `POST` that exchanges a refresh token (Docker's identity token) or, for
//! `login`, a password for an access token and a refresh token. Answers are capped and only
//! the server is named in errors, never what was sent.

use std::time::Duration;

use serde::Deserialize;

use super::credentials::Credentials;
use super::http::{Body, Http, Response};
use super::refusal::refusal;
use super::{url, whole};
use crate::error::{Error, Result};
use crate::retry;

/// Token responses are small; anything larger is refused.
const MAX_TOKEN_RESPONSE: u64 = 1024 * 1024;
/// Tokens without a usable `expires_in` live this long (the spec's default), and none is
/// taken as living less.
const MIN_TOKEN_LIFETIME: u64 = 60;
/// No token is kept longer than this, whatever the server says (a lifetime of 2^64-1
/// seconds would overflow the clock).
const MAX_TOKEN_LIFETIME: u64 = 24 * 60 * 60;
/// The OAuth2 client this program is, as the spec asks every client to say.
const CLIENT_ID: &str = "docker-image-pusher";

/// Where to ask and for what.
pub struct TokenRequest<'a> {
    pub realm: &'a str,
    pub service: Option<&'a str>,
    /// Space-separated scopes (`repository:a/b:pull,push`), or empty for none.
    pub scope: &'a str,
}

/// What the server granted.
pub struct Granted {
    pub token: String,
    pub lifetime: Duration,
    /// A refresh token, when the server gave one (to an offline password grant).
    pub refresh_token: Option<String>,
}

/// An OAuth2 grant sent with `POST`.
pub enum Grant<'a> {
    /// Exchange an identity token.
    Refresh(&'a str),
    /// Exchange a user name and password, asking for a refresh token too (`login`).
    OfflinePassword(&'a str, &'a str),
}

/// `GET realm?service=…&scope=…`, with Basic credentials when there are some.
pub fn get(
    http: &Http,
    request: &TokenRequest<'_>,
    credentials: Option<&Credentials>,
) -> Result<Granted> {
    let mut query = Vec::new();
    if let Some(service) = request.service {
        query.push(format!("service={}", url::encode(service)));
    }
    query.extend(
        (request.scope.split(' '))
            .filter(|scope| !scope.is_empty())
            .map(|scope| format!("scope={}", url::encode(scope))),
    );
    if let Some(credentials) = credentials {
        query.push(format!("account={}", url::encode(&credentials.username)));
    }
    let separator = if request.realm.contains('?') {
        '&'
    } else {
        '?'
    };
    let token_url = format!("{}{separator}{}", request.realm, query.join("&"));
    let headers: Vec<(&str, String)> = credentials
        .iter()
        .map(|c| ("Authorization", c.basic_header()))
        .collect();
    let response = http.send("GET", &token_url, &headers, Body::Empty)?;
    granted(http, response, request.realm)
}

/// `POST realm` with an OAuth2 form. `None` when the server does not take `POST` (404 or
/// 405): the caller falls back to [`get`].
pub fn post(http: &Http, request: &TokenRequest<'_>, grant: &Grant<'_>) -> Result<Option<Granted>> {
    let mut form = vec![("client_id", CLIENT_ID)];
    match grant {
        Grant::Refresh(refresh_token) => form.extend([
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ]),
        Grant::OfflinePassword(username, password) => form.extend([
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
            ("access_type", "offline"),
        ]),
    }
    if let Some(service) = request.service {
        form.push(("service", service));
    }
    if !request.scope.is_empty() {
        form.push(("scope", request.scope));
    }
    let body: Vec<String> = (form.iter())
        .map(|(name, value)| format!("{name}={}", url::encode(value)))
        .collect();
    let headers = [(
        "Content-Type",
        "application/x-www-form-urlencoded".to_string(),
    )];
    let body = body.join("&");
    let response = http.send(
        "POST",
        request.realm,
        &headers,
        Body::Bytes(body.as_bytes()),
    )?;
    match response.status().as_u16() {
        404 | 405 => Ok(None),
        _ => granted(http, response, request.realm).map(Some),
    }
}

/// The token of a `200` answer; an error naming the server for anything else. The answer is
/// read whole within the deadline of small bodies: one cut short is a network failure.
fn granted(http: &Http, response: Response, realm: &str) -> Result<Granted> {
    let status = response.status().as_u16();
    let realm = url::shown(realm);
    let deadline = http.body_deadline();
    if status != 200 {
        let refused = refusal(
            &format!("the token server {realm}"),
            status,
            response,
            None,
            deadline,
        );
        let what = format!(
            "the token server {realm} refused (HTTP {status}{})",
            refused.detail
        );
        return Err(match status {
            // Like the registry's own, so that its Retry-After is waited for.
            _ if retry::transient(status, &refused.codes) => Error::Refused(Box::new(refused)),
            401 | 403 => Error::Denied(what),
            // Never a refusal, so that a token server's 404 is not read as the registry's.
            _ => Error::Registry(what),
        });
    }
    #[derive(Deserialize)]
    struct TokenResponse {
        token: Option<String>,
        access_token: Option<String>,
        expires_in: Option<serde_json::Value>,
        refresh_token: Option<String>,
    }
    let invalid = |e: &dyn std::fmt::Display| {
        Error::Registry(format!("the token server {realm} sent no valid token: {e}"))
    };
    let what = format!("the answer of the token server {realm}");
    let bytes = whole::read(response.into_body(), MAX_TOKEN_RESPONSE, deadline, &what)?;
    // serde's message may quote what it read: only say where it failed.
    let parsed: TokenResponse = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(&format_args!("at line {} column {}", e.line(), e.column())))?;
    let token = (parsed.token.or(parsed.access_token))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Registry(format!("the token server {realm} sent no token")))?;
    Ok(Granted {
        token,
        lifetime: lifetime(parsed.expires_in.as_ref()),
        refresh_token: parsed.refresh_token.filter(|t| !t.is_empty()),
    })
}

/// How long a token whose answer said `expires_in` may be kept: a number of seconds taken
/// within [`MIN_TOKEN_LIFETIME`] and [`MAX_TOKEN_LIFETIME`] (negative, fractional and huge
/// ones too), the least of them when it is missing or not a number.
fn lifetime(expires_in: Option<&serde_json::Value>) -> Duration {
    let seconds = (expires_in.and_then(serde_json::Value::as_f64))
        .map_or(MIN_TOKEN_LIFETIME as f64, |seconds| {
            seconds.clamp(MIN_TOKEN_LIFETIME as f64, MAX_TOKEN_LIFETIME as f64)
        });
    Duration::from_secs(seconds as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lifetime_of(json: &str) -> u64 {
        let value: Option<serde_json::Value> = serde_json::from_str(json).unwrap();
        lifetime(value.as_ref()).as_secs()
    }

    #[test]
    fn lifetimes_are_clamped_between_a_minute_and_a_day() {
        assert_eq!(lifetime_of("300"), 300);
        assert_eq!(lifetime_of("18446744073709551615"), MAX_TOKEN_LIFETIME);
        assert_eq!(lifetime_of("9223372036854775807"), MAX_TOKEN_LIFETIME);
        assert_eq!(lifetime_of("1e300"), MAX_TOKEN_LIFETIME);
        assert_eq!(lifetime_of("-5"), MIN_TOKEN_LIFETIME);
        assert_eq!(lifetime_of("-9223372036854775808"), MIN_TOKEN_LIFETIME);
        assert_eq!(lifetime_of("1.5"), MIN_TOKEN_LIFETIME);
        assert_eq!(lifetime_of("90.9"), 90);
    }

    #[test]
    fn a_lifetime_that_is_not_a_number_is_the_default() {
        for json in ["null", "\"300\"", "true", "[1]", "{}"] {
            assert_eq!(lifetime_of(json), MIN_TOKEN_LIFETIME, "{json}");
        }
    }
}
