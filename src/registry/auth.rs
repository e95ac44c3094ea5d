//! Authentication: the registry's `WWW-Authenticate` challenge (Basic or Bearer), tokens from
//! its token server cached per scope, and when to send the credentials (see
//! [`super::credentials`]). Token-server errors quote only the server, never what was sent.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::credentials::{Credentials, Secret};
use super::http::Http;
use super::token::{self, Grant, Granted, TokenRequest};
use super::url;
use crate::error::{Error, Result};

/// How the registry asked to be authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// The authentication state for one registry, shared by all requests to it.
pub struct Auth {
    credentials: Option<Credentials>,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, (String, Instant)>>,
    /// Held while a token is fetched, so workers that need one at once ask for it once.
    fetching: Mutex<()>,
}

impl Auth {
    /// Authentication with these credentials (none: anonymous).
    pub fn new(credentials: Option<Credentials>) -> Auth {
        Auth {
            credentials,
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
            fetching: Mutex::new(()),
        }
    }

    /// Whether credentials were given.
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// Whether the registry has asked to be authenticated.
    pub fn is_challenged(&self) -> bool {
        self.challenge
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Takes the challenge of a 401 response. Returns false when it offers nothing usable.
    pub fn challenged(&self, header: Option<&str>, scope: &str) -> bool {
        let Some(challenge) = header.and_then(best_challenge) else {
            return false;
        };
        let mut current = self.challenge.lock().unwrap_or_else(|e| e.into_inner());
        *current = Some(challenge);
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(scope);
        true
    }

    /// The `Authorization` value for a request needing `scope`, fetching a token if needed.
    /// `registry_url` is the registry's base: credentials go to a plain-http token realm only
    /// when the registry itself is plain http; an anonymous token may come from anywhere.
    pub fn header(&self, http: &Http, scope: &str, registry_url: &str) -> Result<Option<String>> {
        let challenge = self
            .challenge
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.credentials.as_ref().map(Credentials::basic_header)),
            Some(Challenge::Bearer { realm, service }) => {
                if let Some(token) = self.cached(scope) {
                    return Ok(Some(format!("Bearer {token}")));
                }
                let _fetching = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
                // Another worker may have fetched it while this one waited.
                if let Some(token) = self.cached(scope) {
                    return Ok(Some(format!("Bearer {token}")));
                }
                self.may_send_credentials(&realm, registry_url)?;
                let request = TokenRequest {
                    realm: &realm,
                    service: service.as_deref(),
                    scope,
                };
                let Granted {
                    token, lifetime, ..
                } = self.fetch_token(http, &request)?;
                // A lifetime past what the clock can count keeps the token for this request
                // only (token.rs clamps it to a day, so this is never more than a guard).
                let kept =
                    Instant::now().checked_add(lifetime.saturating_sub(Duration::from_secs(10)));
                if let Some(expires) = kept {
                    self.tokens
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(scope.to_string(), (token.clone(), expires));
                }
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// A token still valid for `scope`: its own, or for a pull, the push token of the same
    /// repository (which allows pulling too).
    fn cached(&self, scope: &str) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let wider = scope
            .strip_suffix(":pull")
            .map(|repo| format!("{repo}:pull,push"));
        std::iter::once(scope)
            .chain(wider.as_deref())
            .filter_map(|scope| tokens.get(scope))
            .find(|(_, expires)| Instant::now() < *expires)
            .map(|(token, _)| token.clone())
    }

    /// A token for `request`: an identity token is exchanged with `POST` (falling back to a
    /// `GET` with Basic when the server does not take `POST`), anything else asks with `GET`.
    fn fetch_token(&self, http: &Http, request: &TokenRequest<'_>) -> Result<Granted> {
        let credentials = self.credentials.as_ref();
        if let Some(Secret::IdentityToken(refresh_token)) = credentials.map(|c| &c.secret)
            && let Some(granted) = token::post(http, request, &Grant::Refresh(refresh_token))?
        {
            return Ok(granted);
        }
        token::get(http, request, credentials)
    }

    /// For `login`: asks the token server for a refresh token with the password (an offline
    /// password grant), to be stored instead of the password. `None` when the registry does not
    /// use tokens, the server does not take `POST`, or it gives no refresh token.
    pub fn identity_token(&self, http: &Http, registry_url: &str) -> Result<Option<String>> {
        let challenge = self
            .challenge
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (Some(Challenge::Bearer { realm, service }), Some(credentials)) =
            (challenge, self.credentials.as_ref())
        else {
            return Ok(None);
        };
        let Secret::Password(password) = &credentials.secret else {
            return Ok(None);
        };
        self.may_send_credentials(&realm, registry_url)?;
        let request = TokenRequest {
            realm: &realm,
            service: service.as_deref(),
            scope: "",
        };
        let grant = Grant::OfflinePassword(&credentials.username, password);
        Ok(token::post(http, &request, &grant)?.and_then(|granted| granted.refresh_token))
    }

    /// Refuses to send credentials to a plain-http token server of an https registry.
    fn may_send_credentials(&self, realm: &str, registry_url: &str) -> Result<()> {
        if self.credentials.is_some() && !credentials_may_go(realm, registry_url) {
            return Err(Error::Denied(format!(
                "the registry asks for credentials to be sent to its token server {} over \
                 plain http; refused",
                url::shown(realm)
            )));
        }
        Ok(())
    }
}

/// Whether credentials may go to the token server at `realm` for the registry at
/// `registry_url`: over https, or when the registry is plain http itself (loopback, or
/// `--insecure-registry`), where they travel in the clear anyway.
fn credentials_may_go(realm: &str, registry_url: &str) -> bool {
    realm.starts_with("https://") || registry_url.starts_with("http://")
}

/// The challenge to answer among those offered: Bearer first, then Basic.
fn best_challenge(header: &str) -> Option<Challenge> {
    let challenges = parse_challenges(header);
    let bearer = challenges.iter().find(|(scheme, _)| scheme == "bearer");
    if let Some((_, params)) = bearer {
        let realm = params.get("realm")?.clone();
        return Some(Challenge::Bearer {
            realm,
            service: params.get("service").cloned(),
        });
    }
    challenges
        .iter()
        .any(|(scheme, _)| scheme == "basic")
        .then_some(Challenge::Basic)
}

/// Parses a `WWW-Authenticate` value into (lowercase scheme, parameters) pairs. Several
/// challenges may share one header; quoted values may hold commas and escapes.
fn parse_challenges(header: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut challenges: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    let bytes = header.as_bytes();
    let mut i = 0;
    let skip = |i: &mut usize, set: &[u8]| {
        while *i < bytes.len() && set.contains(&bytes[*i]) {
            *i += 1;
        }
    };
    loop {
        skip(&mut i, b" \t,");
        let start = i;
        while i < bytes.len() && !b" \t,=".contains(&bytes[i]) {
            i += 1;
        }
        if start == i {
            break;
        }
        let token = &header[start..i];
        skip(&mut i, b" \t");
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            skip(&mut i, b" \t");
            let value = if i < bytes.len() && bytes[i] == b'"' {
                let mut value = String::new();
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' && i + 1 < bytes.len() {
                        i += 1;
                    }
                    let ch = header[i..].chars().next().unwrap_or_default();
                    value.push(ch);
                    i += ch.len_utf8();
                }
                i += 1;
                value
            } else {
                let value_start = i;
                while i < bytes.len() && bytes[i] != b',' {
                    i += 1;
                }
                header[value_start..i].trim().to_string()
            };
            if let Some((_, params)) = challenges.last_mut() {
                params.insert(token.to_ascii_lowercase(), value);
            }
        } else {
            challenges.push((token.to_ascii_lowercase(), BTreeMap::new()));
        }
    }
    challenges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_several_challenges_with_quoted_commas() {
        let header = r#"Basic realm="x", Bearer realm="https://auth.example.com/token",service="registry,one",scope="repository:a/b:pull,push""#;
        let parsed = parse_challenges(header);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].0, "basic");
        assert_eq!(parsed[1].1["service"], "registry,one");
        assert_eq!(parsed[1].1["scope"], "repository:a/b:pull,push");
        assert_eq!(
            best_challenge(header),
            Some(Challenge::Bearer {
                realm: "https://auth.example.com/token".into(),
                service: Some("registry,one".into())
            })
        );
    }

    #[test]
    fn schemes_are_case_insensitive_and_basic_is_the_fallback() {
        assert_eq!(
            best_challenge(r#"BASIC realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(best_challenge("Negotiate"), None);
        assert_eq!(best_challenge(""), None);
    }

    #[test]
    fn credentials_go_to_a_plain_http_realm_only_from_a_plain_http_registry() {
        assert!(credentials_may_go(
            "https://auth.example.com/token",
            "https://r.example.com"
        ));
        assert!(!credentials_may_go(
            "http://auth.example.com/token",
            "https://r.example.com"
        ));
        assert!(credentials_may_go(
            "http://127.0.0.1:5001/token",
            "http://127.0.0.1:5000"
        ));
    }

    #[test]
    fn an_anonymous_token_may_come_from_a_plain_http_realm() {
        let auth = Auth::new(None);
        assert!(auth.challenged(Some(r#"Bearer realm="http://127.0.0.1:9/token""#), ""));
        let http = Http::new(
            &super::super::HttpOptions {
                ca_certs: Vec::new(),
                skip_tls: false,
                timeout: Duration::from_secs(1),
            },
            crate::progress::Progress::new(crate::progress::Verbosity::Quiet),
        )
        .unwrap();
        // Nothing listens there: the request is made (and fails to connect) instead of being
        // refused for credentials there are none of.
        let error = auth.header(&http, "", "https://r.example.com").unwrap_err();
        assert!(!error.to_string().contains("plain http"), "{error}");
    }
}
