//! The one HTTP agent every registry and token request goes through: TLS roots (the system's,
//! Mozilla's bundled ones when the host has none, `--ca-cert`, or no checks with
//! `--skip-tls`), proxies from `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` (see [`super::proxy`]),
//! and timeouts that bound connecting and any stretch without progress, never a whole
//! transfer (small bodies have a total deadline besides: see [`super::whole`]). It follows no redirect: the registry client decides where credentials may go.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::{Agent, Proxy, SendBody, http};

use super::proxy::ProxySettings;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::reference::hide_credentials;

/// Where system CA bundles live on common distributions.
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// How to reach registries.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Extra CA certificates (PEM files) to trust.
    pub ca_certs: Vec<PathBuf>,
    /// Accept any certificate.
    pub skip_tls: bool,
    /// Bound on connecting, and on any read or write that makes no progress.
    pub timeout: Duration,
}

/// Idle connections kept for reuse, to one host and in all: as many as `sync --jobs` and
/// `--max-concurrent` keep busy at once, so that none is closed only to be opened again
/// (ureq keeps 3 to a host).
const IDLE_PER_HOST: usize = 32;
const IDLE: usize = 64;

/// A response whose body has not been read yet.
pub type Response = http::Response<ureq::Body>;

/// What a request carries.
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// Streamed as it is read: with chunked encoding unless a `Content-Length` header is given.
    Stream(&'a mut dyn Read),
}

/// The agents, shared by every request so connections are kept alive: one going direct, and
/// one through each proxy the environment names.
pub struct Http {
    direct: Agent,
    /// By proxy URL, as the environment gave it.
    proxied: Vec<(String, Agent)>,
    proxies: ProxySettings,
    /// How long a small body may take to arrive whole.
    body_deadline: Duration,
    progress: Progress,
}

impl Http {
    /// Builds the agent; fails only on an unreadable `--ca-cert`. With `--verbose`, each
    /// request is logged to `progress` (method, path without query, status, time): never a
    /// header, so never a credential.
    pub fn new(options: &HttpOptions, progress: Progress) -> Result<Http> {
        let tls = TlsConfig::builder()
            .root_certs(root_certs(&options.ca_certs)?)
            .disable_verification(options.skip_tls)
            .build();
        let agent = |proxy: Option<Proxy>| {
            let timeout = Some(options.timeout);
            Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .max_idle_connections(IDLE)
                .max_idle_connections_per_host(IDLE_PER_HOST)
                .tls_config(tls.clone())
                .proxy(proxy)
                .user_agent(concat!("docker-image-pusher/", env!("CARGO_PKG_VERSION")))
                .timeout_connect(timeout)
                .timeout_per_read(timeout)
                .timeout_per_write(timeout)
                .timeout_recv_response(timeout)
                .build()
                .new_agent()
        };
        let proxies = ProxySettings::from_env()?;
        let mut proxied: Vec<(String, Agent)> = Vec::new();
        for (url, variable) in proxies.https.iter().chain(&proxies.http) {
            if proxied.iter().any(|(known, _)| known == url) {
                continue;
            }
            let proxy = Proxy::new(url).map_err(|_| {
                Error::Usage(format!(
                    "{variable} is not a proxy URL such as http://[user:password@]proxy:3128"
                ))
            })?;
            proxied.push((url.clone(), agent(Some(proxy))));
        }
        Ok(Http {
            direct: agent(None),
            proxied,
            proxies,
            body_deadline: options.timeout * super::whole::DEADLINE_TIMEOUTS,
            progress,
        })
    }

    /// How long a small body (a manifest, a token answer, a tag page, an error body) may take
    /// to arrive whole: [`super::whole::DEADLINE_TIMEOUTS`] × `--timeout`.
    pub fn body_deadline(&self) -> Duration {
        self.body_deadline
    }

    /// The proxy requests to `url` go through, as shown to the user (`http://proxy:3128 (from
    /// HTTPS_PROXY)`, without its credentials), if any.
    pub fn proxy_for(&self, url: &str) -> Option<String> {
        let (proxy, variable) = self.proxies.for_url(url)?;
        Some(format!("{} (from {variable})", hide_credentials(proxy)))
    }

    /// The agent for a request to `url`.
    fn agent(&self, url: &str) -> &Agent {
        let proxy = self.proxies.for_url(url).map(|(proxy, _)| proxy);
        (self.proxied.iter())
            .find(|(known, _)| Some(known) == proxy)
            .map_or(&self.direct, |(_, agent)| agent)
    }

    /// Sends one request and returns the response, whatever its status.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<Response> {
        let mut request = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let shown = super::url::shown(url);
        let invalid = |e: http::Error| Error::Registry(format!("{method} {shown}: {e}"));
        let started = Instant::now();
        let agent = self.agent(url);
        let sent = match body {
            Body::Empty => agent.run(request.body(SendBody::none()).map_err(invalid)?),
            Body::Bytes(bytes) => agent.run(request.body(bytes).map_err(invalid)?),
            Body::Stream(reader) => agent.run(
                request
                    .body(SendBody::from_reader(reader))
                    .map_err(invalid)?,
            ),
        };
        let took = started.elapsed().as_millis();
        let sent = sent.map_err(|e| transport_error(method, shown, e));
        match &sent {
            Ok(response) => self.progress.detail(format_args!(
                "{method} {shown} {} ({took} ms)",
                response.status().as_u16()
            )),
            // Said as the user will read it: the words, not the TLS library's variant name.
            Err(error) => self.progress.detail(format_args!("{error} ({took} ms)")),
        }
        sent
    }
}

/// What the system resolver says of a name that does not exist (glibc twice, musl, macOS), as
/// against a resolver that could not be asked ("Temporary failure in name resolution").
const NO_SUCH_NAME: [&str; 4] = [
    "Name or service not known",
    "No address associated with hostname",
    "Name does not resolve",
    "nodename nor servname provided",
];

/// A failure below HTTP: retryable when it is the network's, final when it is TLS's; an
/// untrusted certificate is [`Error::Tls`]. rustls reports one through an `io::Error`, so it is
/// told by its words, here and nowhere else. `url` comes without its query.
fn transport_error(method: &str, url: &str, error: ureq::Error) -> Error {
    let text = error.to_string();
    if text.contains("InvalidContentType") {
        // What rustls says when the answer to its hello is not TLS at all.
        let origin = super::url::origin(url).replacen("https://", "", 1);
        return Error::Registry(format!(
            "{method} {url}: the registry answered in plain HTTP, not TLS; ask for plain \
             HTTP with http://{origin}/… or --insecure-registry {origin}"
        ));
    }
    if matches!(error, ureq::Error::HostNotFound) || NO_SUCH_NAME.iter().any(|n| text.contains(n)) {
        // Asking again will not make the name exist (a temporary failure says otherwise).
        let host = crate::reference::without_scheme(super::url::origin(url));
        return Error::Registry(format!(
            "{method} {url}: {host} does not resolve: no such host ({error})"
        ));
    }
    if text.contains("certificate") {
        return Error::Tls(format!(
            "{method} {url}: TLS certificate verification failed ({error}); trust the registry's CA with \
             --ca-cert FILE, or skip verification with --skip-tls"
        ));
    }
    match error {
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => {
            Error::Registry(format!("{method} {url}: TLS failed ({error})"))
        }
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::InvalidProxyUrl => {
            Error::Registry(format!("{method} {url}: {error}"))
        }
        _ => Error::Network(format!("{method} {url}: {error}")),
    }
}

/// The roots to trust: the system's CA bundle (`SSL_CERT_FILE`, `SSL_CERT_DIR`, or the usual
/// places) plus `extra`; Mozilla's bundled roots when the system has none.
fn root_certs(extra: &[PathBuf]) -> Result<RootCerts> {
    let mut certs = Vec::new();
    for path in extra {
        let bytes = fs::read(path)
            .map_err(|e| Error::Usage(format!("--ca-cert {}: {e}", path.display())))?;
        let before = certs.len();
        certs.extend(pem_certificates(&bytes));
        if certs.len() == before {
            return Err(Error::Usage(format!(
                "--ca-cert {}: no PEM certificate in it",
                path.display()
            )));
        }
    }
    let system = system_certificates();
    if system.is_empty() && certs.is_empty() {
        return Ok(RootCerts::WebPki);
    }
    certs.extend(system);
    Ok(RootCerts::from(certs))
}

fn system_certificates() -> Vec<Certificate<'static>> {
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(file) = std::env::var_os("SSL_CERT_FILE") {
        files.push(file.into());
    }
    if let Some(dir) = std::env::var_os("SSL_CERT_DIR") {
        for dir in std::env::split_paths(&dir) {
            if let Ok(entries) = fs::read_dir(dir) {
                files.extend(entries.filter_map(|entry| entry.ok().map(|e| e.path())));
            }
        }
    }
    if files.is_empty() {
        files.extend(
            SYSTEM_BUNDLES
                .iter()
                .map(PathBuf::from)
                .filter(|path| path.exists())
                .take(1),
        );
    }
    files
        .iter()
        .filter_map(|path| read_if_file(path))
        .flat_map(|bytes| pem_certificates(&bytes))
        .collect()
}

fn read_if_file(path: &Path) -> Option<Vec<u8>> {
    path.is_file().then(|| fs::read(path).ok()).flatten()
}

fn pem_certificates(bytes: &[u8]) -> Vec<Certificate<'static>> {
    ureq::tls::parse_pem(bytes)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(words: &str) -> ureq::Error {
        ureq::Error::Io(std::io::Error::other(format!(
            "failed to lookup address information: {words}"
        )))
    }

    #[test]
    fn a_name_that_does_not_exist_is_final_and_a_resolver_down_is_retried() {
        let url = "https://no-such-host.invalid/v2/";
        for words in ["Name or service not known", "Name does not resolve"] {
            let error = transport_error("GET", url, lookup(words));
            assert!(!error.is_retryable(), "{error}");
            assert!(
                error
                    .to_string()
                    .contains("no-such-host.invalid does not resolve")
            );
        }
        assert!(transport_error("GET", url, ureq::Error::HostNotFound).exit_code() == 5);
        let down = transport_error("GET", url, lookup("Temporary failure in name resolution"));
        assert!(down.is_retryable(), "{down}");
    }

    #[test]
    fn an_untrusted_certificate_is_a_tls_error_that_is_final() {
        let rustls = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        );
        let error = transport_error("GET", "https://r.example.com/v2/", ureq::Error::Io(rustls));
        assert!(matches!(error, Error::Tls(_)), "{error:?}");
        assert_eq!(error.exit_code(), 5);
        assert!(!error.is_retryable());
        assert!(error.to_string().contains("--ca-cert FILE"), "{error}");
    }
}
