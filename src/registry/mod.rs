//! A registry (Distribution API v2 / OCI distribution) as a source and a destination of
//! images. This file holds the client core every request goes through: choosing https or http,
//! authentication, following redirects (credentials only to the same origin), and retries
//! with backoff ([`crate::retry::retried`]). An answer not asked for becomes an error in one
//! place, [`refusal()`], with the registry's own code and message.

mod auth;
pub mod auth_file;
mod blobs;
mod cred_helper;
mod credentials;
pub mod docker_config;
mod http;
mod image;
mod manifests;
mod mirror;
mod proxy;
mod rate_limit;
mod referrer_page;
mod referrers;
mod refusal;
mod tags;
mod token;
mod untag;
mod url;
mod whole;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::inert::inert;
use crate::progress::Progress;
use crate::reference;
use crate::retry::{self, Pushbacks};

pub use blobs::UploadPlan;
pub use cred_helper::DEFAULT_DEADLINE as HELPER_TIMEOUT;
pub use credentials::{Credentials, Secret};
pub use http::HttpOptions;
pub use image::{Compress, RegistryDestination, RegistrySource};
pub use mirror::{MirrorSpec, Mirrors};
pub use untag::MAX_TAGS_CHECKED;

use http::{Body, Http, Response};
use refusal::refusal;

/// How many redirects a request may follow.
const MAX_REDIRECTS: usize = 5;

/// Everything needed to talk to registries.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    pub http: HttpOptions,
    pub credentials: Option<Credentials>,
    /// Hosts where a failed HTTPS attempt falls back to plain HTTP (loopback always does).
    pub insecure: Vec<String>,
    /// Attempts for a failed request that may succeed later (at least 1).
    pub attempts: u32,
    /// How long a credential helper may take to answer.
    pub helper_timeout: Duration,
    /// Where the requests tried again are counted (shared by the connections of a run).
    pub pushbacks: Pushbacks,
    /// Mirrors that images are read from before their registry (see [`Mirrors`]).
    pub mirrors: Vec<MirrorSpec>,
}

/// A connection to one registry.
pub struct Registry {
    http: Http,
    /// `https://host[:port]` or `http://host[:port]`.
    base: String,
    auth: auth::Auth,
    attempts: u32,
    warnings: Mutex<HashSet<String>>,
    /// Requests tried again because the registry or the network pushed back.
    pushbacks: Pushbacks,
    progress: Progress,
    /// Whether it has the Referrers API, once learned (see [`referrers`]).
    referrers_api: Mutex<Option<bool>>,
    /// Held by the one thread asking whether it has the API, while that is not known.
    referrers_probe: Mutex<()>,
    /// Per repository whose every tag was listed (a sync's), the referrer tags it has: the
    /// others are known absent without asking (see [`referrers`]).
    referrer_tags: Mutex<HashMap<String, HashSet<String>>>,
    /// Whether it refused a page of tags asked to find referrer tags (see [`referrer_page`]).
    tag_pages_refused: AtomicBool,
    /// Whose credentials requests carry and where they came from, or where none were found,
    /// said with a 401.
    credentials_said: String,
    /// How long the ping that answered took, its connection's setup included.
    ping_took: Duration,
}

impl Registry {
    /// Connects to the registry at `host` (`docker.io` means its API host). `scheme` forces
    /// `http` or `https`; without it HTTPS is tried first, and for loopback and insecure
    /// hosts a failure to speak HTTPS falls back to plain HTTP, as Docker does.
    pub fn connect(
        host: &str,
        scheme: Option<&str>,
        options: &RegistryOptions,
        progress: Progress,
    ) -> Result<Registry> {
        let api_host = if host == reference::DEFAULT_REGISTRY {
            reference::DOCKER_HUB_API
        } else {
            host
        };
        let http = Http::new(&options.http, progress)?;
        let (credentials, credentials_said) = credentials_for(host, options, progress);
        let mut registry = Registry {
            http,
            base: String::new(),
            auth: auth::Auth::new(credentials),
            attempts: options.attempts.max(1),
            warnings: Mutex::new(HashSet::new()),
            pushbacks: options.pushbacks.clone(),
            progress,
            referrers_api: Mutex::new(None),
            referrers_probe: Mutex::new(()),
            referrer_tags: Mutex::new(HashMap::new()),
            tag_pages_refused: AtomicBool::new(false),
            credentials_said,
            ping_took: Duration::ZERO,
        };
        let schemes = schemes_to_try(scheme, api_host, options);
        let mut last_error = None;
        for (i, scheme) in schemes.iter().enumerate() {
            registry.base = format!("{scheme}://{api_host}");
            if let Some(proxy) = registry.http.proxy_for(&registry.base) {
                progress.detail(format_args!(
                    "reaching {} through the proxy {proxy}",
                    registry.base
                ));
            }
            // Only the last scheme tried is worth waiting for.
            let tries = if i + 1 == schemes.len() {
                registry.attempts
            } else {
                1
            };
            match registry.ping(tries) {
                Ok(took) => {
                    registry.ping_took = took;
                    return registry.check_credentials().map(|()| registry);
                }
                // A server that speaks TLS but whose certificate fails is not plain HTTP.
                Err(e @ Error::Tls(_)) => return Err(e),
                Err(e @ (Error::Network(_) | Error::Registry(_) | Error::Refused(_))) => {
                    if let Some(next) = schemes.get(i + 1) {
                        progress.detail(format_args!("trying {next}://{api_host} instead"));
                    }
                    last_error = Some(e)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| Error::Registry(format!("cannot reach {api_host}"))))
    }

    /// With credentials, `GET /v2/` once more as `docker login` does, so that wrong ones fail
    /// here with the registry's own message rather than later on a bodiless `HEAD`.
    fn check_credentials(&self) -> Result<()> {
        if self.auth.has_credentials() {
            let url = format!("{}/v2/", self.base);
            self.request("GET", &url, "", &[], Body::Empty, &[200])?;
        }
        Ok(())
    }

    /// `GET /v2/`, tried up to `tries` times: checks that this is a registry and learns how it
    /// wants to be authenticated. Returns how long the try that was answered took.
    fn ping(&self, tries: u32) -> Result<Duration> {
        let url = format!("{}/v2/", self.base);
        let mut took = Duration::ZERO;
        let response = self.retried(tries, || {
            let sent = Instant::now();
            let response = self.http.send("GET", &url, &[], Body::Empty)?;
            took = sent.elapsed();
            match response.status().as_u16() {
                200 | 401 => Ok(response),
                status => {
                    Err(self.speaks_https(self.refusal(&format!("GET {url}"), status, response)))
                }
            }
        })?;
        if response.status().as_u16() == 401 {
            let header = response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok());
            self.auth.challenged(header, "");
        }
        Ok(took)
    }

    /// How long its first request, the ping, took (from connecting to the answer): a bound on
    /// the link's round trip that the `--concurrency dynamic` governor starts from.
    pub fn ping_took(&self) -> Duration {
        self.ping_took
    }

    /// `refused`, or for a plain-HTTP request that an HTTPS server answered (Go's `400 Client
    /// sent an HTTP request to an HTTPS server`) the fix: not worth trying again.
    fn speaks_https(&self, refused: Error) -> Error {
        let said = (refused.refusal()).is_some_and(|r| {
            r.status == 400 && r.detail.contains("HTTP request to an HTTPS server")
        });
        match (said, self.base.strip_prefix("http://")) {
            (true, Some(host)) => Error::Registry(format!(
                "GET {}/v2/: this registry speaks HTTPS, not plain HTTP: use https://{host}",
                self.base
            )),
            _ => refused,
        }
    }

    /// For `login`: a refresh token the registry's token server gives for the password, to be
    /// stored instead of it (see [`auth::Auth::identity_token`]).
    pub fn identity_token(&self) -> Result<Option<String>> {
        self.auth.identity_token(&self.http, &self.base)
    }

    /// Whether the registry has the Referrers API, if that has been learned.
    fn referrers_api(&self) -> Option<bool> {
        *self.referrers_api.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records whether the registry has the Referrers API.
    fn learn_referrers_api(&self, has: bool) {
        *self.referrers_api.lock().unwrap_or_else(|e| e.into_inner()) = Some(has);
    }

    /// Whether the registry asked to be authenticated when it was first reached.
    pub fn asks_for_credentials(&self) -> bool {
        self.auth.is_challenged()
    }

    /// Runs `attempt` up to `tries` times while it fails in a way that may pass (see
    /// [`retry::retried`]), counting each try again as a pushback.
    fn retried<T>(&self, tries: u32, attempt: impl FnMut() -> Result<T>) -> Result<T> {
        let mut tried = 0;
        retry::retried(
            attempt,
            |_| {
                tried += 1;
                (tried < tries).then_some(tried)
            },
            |_, said| {
                self.pushbacks.note();
                self.progress.warn(format_args!("{said}"));
            },
        )
    }

    /// [`Registry::attempt`], tried again as the retry policy says when its body can be
    /// sent again: for a request that stands alone, not one of a blob transfer (the transfer
    /// owns those retries).
    fn request(
        &self,
        method: &str,
        url: &str,
        scope: &str,
        headers: &[(&str, String)],
        mut body: Body<'_>,
        expected: &[u16],
    ) -> Result<Response> {
        let tries = match body {
            Body::Stream(_) => 1,
            _ => self.attempts,
        };
        self.retried(tries, || {
            self.attempt(method, url, scope, headers, reborrow(&mut body), expected)
        })
    }

    /// One attempt at a request needing `scope`, never retried: sent with redirects followed
    /// (GET and HEAD only), and sent again once after a `401` that brings a new challenge.
    /// Returns the response when its status is in `expected`. Every request, and every hop of
    /// a redirect, carries the registry's `Authorization` only when it goes to the registry's
    /// own origin; a `401` from anywhere else is an error, never a new challenge.
    fn attempt(
        &self,
        method: &str,
        url: &str,
        scope: &str,
        headers: &[(&str, String)],
        mut body: Body<'_>,
        expected: &[u16],
    ) -> Result<Response> {
        let replayable = !matches!(body, Body::Stream(_));
        let what = format!("{method} {}", url::shown(url));
        let mut reauthenticated = false;
        loop {
            let (response, from) =
                self.send_once(method, url, scope, headers, reborrow(&mut body))?;
            let status = response.status().as_u16();
            if expected.contains(&status) {
                self.show_warnings(&response);
                return Ok(response);
            }
            if status == 401 && !url::same_origin(&from, &self.base) {
                return Err(Error::Denied(format!(
                    "{what}: {from}, where the registry sent it, answered HTTP 401; the \
                     registry's credentials go only to {}",
                    self.base
                )));
            }
            if status == 401 && !reauthenticated && replayable {
                let header = response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok());
                if self.auth.challenged(header, scope) {
                    reauthenticated = true;
                    continue;
                }
            }
            return Err(self.refusal(&what, status, response));
        }
    }

    /// The `Authorization` for a request to `url`: the registry's credentials or token on the
    /// registry's own origin, nothing elsewhere; a step from an https registry down to plain
    /// http is refused.
    fn authorization(&self, method: &str, url: &str, scope: &str) -> Result<Option<String>> {
        let own = url::own_origin(&self.base, url)
            .map_err(|why| Error::Registry(format!("{method} {}: {why}", url::shown(url))))?;
        match own {
            true => self.auth.header(&self.http, scope, &self.base),
            false => Ok(None),
        }
    }

    /// One request, with redirects followed for GET and HEAD; returns the response and the
    /// origin that sent it.
    fn send_once(
        &self,
        method: &str,
        url: &str,
        scope: &str,
        headers: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<(Response, String)> {
        let send = |target: &str, body: Body<'_>| -> Result<Response> {
            let mut all = headers.to_vec();
            if let Some(authorization) = self.authorization(method, target, scope)? {
                all.push(("Authorization", authorization));
            }
            self.http.send(method, target, &all, body)
        };
        let mut response = send(url, body)?;
        let mut current = url.to_string();
        let follows = method == "GET" || method == "HEAD";
        for _ in 0..MAX_REDIRECTS {
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok());
            let redirected = matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308);
            let Some(location) = location.filter(|_| follows && redirected) else {
                return Ok((response, url::origin(&current).to_string()));
            };
            current = url::resolve(&current, location);
            response = send(&current, Body::Empty)?;
        }
        Err(Error::Registry(format!(
            "{method} {}: more than {MAX_REDIRECTS} redirects",
            url::shown(url)
        )))
    }

    /// [`refusal()`], with a word on logging in when an anonymous request was rate limited.
    fn refusal(&self, what: &str, status: u16, response: Response) -> Error {
        let host = reference::without_scheme(url::origin(&self.base));
        let login_host = login_host(host);
        let anonymous = !self.auth.has_credentials();
        let deadline = self.http.body_deadline();
        let mut refused = refusal(
            what,
            status,
            response,
            anonymous.then_some(login_host),
            deadline,
        );
        if status == 401 {
            refused.advice.push_str("; ");
            refused.advice.push_str(&self.credentials_said);
        }
        Error::Refused(Box::new(refused))
    }

    /// Shows each `Warning: 299` header once.
    fn show_warnings(&self, response: &Response) {
        for value in response.headers().get_all("warning") {
            let Ok(text) = value.to_str() else { continue };
            let Some(message) = text.strip_prefix("299 ") else {
                continue;
            };
            let message = message
                .trim_start_matches("- ")
                .trim_matches('"')
                .to_string();
            if self
                .warnings
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(message.clone())
            {
                self.progress.warn(format_args!("registry: {message}"));
            }
        }
    }
}

/// The credentials for `host`: given (-u, DOCKER_PUSHER_USERNAME), else from the first file
/// of [`auth_file::Searched`] that has any (a file that fails is warned of, and none taken);
/// and what a 401 says of them.
fn credentials_for(
    host: &str,
    options: &RegistryOptions,
    progress: Progress,
) -> (Option<Credentials>, String) {
    let refused = |credentials: &Credentials, from: &str| {
        let user = inert(&credentials.username);
        format!("the registry refused user {user}, whose credentials came from {from}")
    };
    if let Some(credentials) = &options.credentials {
        let said = refused(credentials, "-u or DOCKER_PUSHER_USERNAME");
        return (Some(credentials.clone()), said);
    }
    let searched = auth_file::Searched::from_env();
    let found = searched
        .lookup(host, options.helper_timeout)
        .unwrap_or_else(|e| {
            progress.warn(format_args!("{e}; going on without credentials"));
            None
        });
    match found {
        Some(found) => {
            let from = found.file.shown();
            progress.detail(format_args!("credentials for {host} from {from}"));
            let said = refused(&found.credentials, &from);
            (Some(found.credentials), said)
        }
        None => {
            let login_host = login_host(host);
            let said = format!(
                "no credentials were given or found for {login_host} (looked for -u, \
                 DOCKER_PUSHER_USERNAME, {}): log in with 'docker-image-pusher login \
                 {login_host}', or give -u",
                searched.shown()
            );
            (None, said)
        }
    }
}

/// The name `login` takes for the registry at `host` (Docker Hub's is `docker.io`).
fn login_host(host: &str) -> &str {
    match reference::is_docker_hub(host) {
        true => reference::DEFAULT_REGISTRY,
        false => host,
    }
}

/// The schemes to try, in order: the one a URL gave, else https, then http for loopback and
/// `--insecure-registry` hosts.
fn schemes_to_try(
    scheme: Option<&str>,
    api_host: &str,
    options: &RegistryOptions,
) -> &'static [&'static str] {
    match scheme {
        Some("http") => &["http"],
        Some(_) => &["https"],
        None if url::is_loopback(api_host) || options.insecure.iter().any(|h| h == api_host) => {
            &["https", "http"]
        }
        None => &["https"],
    }
}

/// A second use of a request body for a retried request (only replayable bodies are retried).
fn reborrow<'a>(body: &'a mut Body<'_>) -> Body<'a> {
    match body {
        Body::Empty => Body::Empty,
        Body::Bytes(bytes) => Body::Bytes(bytes),
        Body::Stream(reader) => Body::Stream(&mut **reader),
    }
}
