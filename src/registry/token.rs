//! The token server of the Distribution token spec: a `GET` with Basic credentials (or none)
//! and the OAuth2 `POST` that exchanges a refresh token (Docker's identity token) or, for
//! `login`, a password for an access token and a refresh token. Answers are capped and only
//! the server is named in errors, never what was sent.

use std::time::Duration;

use serde::Deserialize;

use super::auth::Credentials;
use super::http::{Body, Http, Response};
use super::{read_error_body, url};
use crate::error::{Error, Result};

/// Token responses are small; anything larger is refused.
const MAX_TOKEN_RESPONSE: u64 = 1024 * 1024;
/// Tokens without `expires_in` live this long, and none is taken as living less.
const MIN_TOKEN_LIFETIME: u64 = 60;
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
    granted(response, request.realm)
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
        _ => granted(response, request.realm).map(Some),
    }
}

/// The token of a `200` answer; an error naming the server for anything else.
fn granted(response: Response, realm: &str) -> Result<Granted> {
    let status = response.status().as_u16();
    let realm = url::shown(realm);
    if status != 200 {
        let (_, detail) = read_error_body(response);
        let what = format!("the token server {realm} refused (HTTP {status}{detail})");
        return Err(match status {
            401 | 403 => Error::Denied(what),
            408 | 429 | 500..=599 => Error::Network(what),
            _ => Error::Registry(what),
        });
    }
    #[derive(Deserialize)]
    struct TokenResponse {
        token: Option<String>,
        access_token: Option<String>,
        expires_in: Option<u64>,
        refresh_token: Option<String>,
    }
    let invalid = |e: &dyn std::fmt::Display| {
        Error::Registry(format!("the token server {realm} sent no valid token: {e}"))
    };
    let bytes = (response
        .into_body()
        .into_with_config()
        .limit(MAX_TOKEN_RESPONSE)
        .read_to_vec())
    .map_err(|e| invalid(&e))?;
    // serde's message may quote what it read: only say where it failed.
    let parsed: TokenResponse = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(&format_args!("at line {} column {}", e.line(), e.column())))?;
    let token = (parsed.token.or(parsed.access_token))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Registry(format!("the token server {realm} sent no token")))?;
    let lifetime = parsed
        .expires_in
        .unwrap_or(MIN_TOKEN_LIFETIME)
        .max(MIN_TOKEN_LIFETIME);
    Ok(Granted {
        token,
        lifetime: Duration::from_secs(lifetime),
        refresh_token: parsed.refresh_token.filter(|t| !t.is_empty()),
    })
}
