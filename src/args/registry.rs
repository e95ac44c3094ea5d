//! How to reach registries and who to be there: credentials, TLS, timeouts, retries.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use lexopt::{Arg, Parser};

use crate::error::{Error, Result};
use crate::registry::{Credentials, HELPER_TIMEOUT, HttpOptions, MirrorSpec, RegistryOptions};
use crate::retry::Pushbacks;

use super::{Env, FlagGroup, number, secret, value};

/// The most bytes `--password-stdin` reads: tokens run to a few kilobytes.
const MAX_PASSWORD: u64 = 64 * 1024;

/// `--timeout` when none is given, in seconds.
const DEFAULT_TIMEOUT: u64 = 300;

/// The help lines of the registry flags.
pub const REGISTRY_HELP: &str = "\
Registry options:
  -u, --username USER          user name [env: DOCKER_PUSHER_USERNAME]
  -p, --password PASSWORD      password or token [env: DOCKER_PUSHER_PASSWORD]
      --password-stdin         read the password from standard input
      --ca-cert FILE           also trust this CA certificate (PEM); may be repeated
      --skip-tls               accept any certificate (insecure) [env: DOCKER_PUSHER_SKIP_TLS]
      --insecure-registry HOST allow plain HTTP for HOST when HTTPS fails (loopback always
                               may); may be repeated
      --timeout SECS           limit on connecting and on any stall, never on a whole
                               layer; a manifest, token, tag page or error body must
                               arrive whole within 10 × SECS, and a credential helper
                               must answer within SECS (30 s if not given)
                               [default: 300] [env: DOCKER_PUSHER_TIMEOUT]
      --retry-attempts N       retries after a failure that may pass: connection lost,
                               timeout, 408, 429, 5xx; for a blob, failures in a row,
                               counted again after each step that moves it on (at most
                               4 x (N + 1) failures per blob) [default: 3]
                               [env: DOCKER_PUSHER_RETRY_ATTEMPTS]
      --registry-mirror REGISTRY=URL
                               read images of REGISTRY from this pull-through mirror first
                               (pull, copy, sync, inspect; never push), falling back to
                               REGISTRY; URL is [http[s]://]host[:port][/path]; may be
                               repeated, tried in order [env: DOCKER_PUSHER_REGISTRY_MIRRORS,
                               comma-separated]
  Without -u, credentials come from Docker's config.json (its credential helpers, then its
  auths, identity tokens included), as 'login' or 'docker login' stored them, else (only when
  it has nothing for the registry) from podman's auth.json: $REGISTRY_AUTH_FILE, else
  $XDG_RUNTIME_DIR/containers/auth.json, then ~/.config/containers/auth.json. Proxies come
  from HTTPS_PROXY, HTTP_PROXY and NO_PROXY (loopback never goes through one); trusted CAs
  from the system, SSL_CERT_FILE and SSL_CERT_DIR, and --ca-cert.";

/// How to reach registries and who to be there.
pub struct RegistryArgs {
    username: Option<String>,
    password: Option<String>,
    password_stdin: bool,
    /// Whether the password came as `-p`, where `ps` shows it to every user.
    password_in_arguments: bool,
    ca_certs: Vec<PathBuf>,
    skip_tls: bool,
    insecure: Vec<String>,
    /// `--timeout`, when given (by flag or environment).
    timeout: Option<u64>,
    retries: u32,
    mirrors: Vec<MirrorSpec>,
    mirrors_from_flags: bool,
}

impl RegistryArgs {
    /// The defaults, overridden by the environment.
    pub fn from_env(env: &Env) -> Result<RegistryArgs> {
        Ok(RegistryArgs {
            username: env.value("DOCKER_PUSHER_USERNAME"),
            password: env.value("DOCKER_PUSHER_PASSWORD"),
            password_stdin: false,
            password_in_arguments: false,
            ca_certs: Vec::new(),
            skip_tls: env.bool("DOCKER_PUSHER_SKIP_TLS")?.unwrap_or(false),
            insecure: Vec::new(),
            timeout: env.number("DOCKER_PUSHER_TIMEOUT")?,
            retries: env.number("DOCKER_PUSHER_RETRY_ATTEMPTS")?.unwrap_or(3),
            mirrors: (env
                .value("DOCKER_PUSHER_REGISTRY_MIRRORS")
                .unwrap_or_default())
            .split(',')
            .filter(|mirror| !mirror.trim().is_empty())
            .map(|mirror| MirrorSpec::parse(mirror, "DOCKER_PUSHER_REGISTRY_MIRRORS"))
            .collect::<Result<_>>()?,
            mirrors_from_flags: false,
        })
    }

    /// The options these flags describe; reads the password from standard input if asked.
    pub fn options(&self) -> Result<RegistryOptions> {
        let mut password = self.password.clone();
        if self.password_stdin {
            let mut text = String::new();
            (std::io::stdin().take(MAX_PASSWORD + 1))
                .read_to_string(&mut text)
                .map_err(|e| {
                    Error::Usage(format!("--password-stdin: cannot read standard input: {e}"))
                })?;
            if text.len() as u64 > MAX_PASSWORD {
                return Err(Error::Usage(format!(
                    "--password-stdin: more than {MAX_PASSWORD} bytes on standard input; a \
                     password or token is far shorter"
                )));
            }
            password = Some(text.trim_end_matches(['\r', '\n']).to_string());
        }
        if password.as_ref().is_some_and(String::is_empty) {
            // Refused before any request: an empty secret is a script whose variable was unset.
            let flag = match self.password_stdin {
                true => "--password-stdin: standard input held no password",
                false => "--password: the password is empty",
            };
            return Err(Error::Usage(format!(
                "{flag} (an unset variable?); give the password or token"
            )));
        }
        let credentials = match (&self.username, password) {
            (Some(username), Some(password)) => Some(Credentials::password(username, password)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(Error::Usage(
                    "--username needs --password or --password-stdin".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(Error::Usage(
                    "a password was given without --username".into(),
                ));
            }
        };
        Ok(RegistryOptions {
            http: HttpOptions {
                ca_certs: self.ca_certs.clone(),
                skip_tls: self.skip_tls,
                timeout: Duration::from_secs(self.timeout.unwrap_or(DEFAULT_TIMEOUT).max(1)),
            },
            helper_timeout: (self.timeout)
                .map_or(HELPER_TIMEOUT, |secs| Duration::from_secs(secs.max(1))),
            credentials,
            insecure: self.insecure.clone(),
            attempts: self.attempts(),
            pushbacks: Pushbacks::default(),
            mirrors: self.mirrors.clone(),
        })
    }

    /// Sets `--timeout` (the one-shot form's `-t`).
    pub fn set_timeout(&mut self, seconds: u64) {
        self.timeout = Some(seconds);
    }

    /// Tries for a request (or, in a row, for a blob) that fails in a way that may pass.
    pub fn attempts(&self) -> u32 {
        self.retries.saturating_add(1)
    }

    /// The user name given (by flag or environment).
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// Whether a user name was given (by flag or environment).
    pub fn has_username(&self) -> bool {
        self.username.is_some()
    }

    /// Whether a password was given (by flag, environment or `--password-stdin`).
    pub fn has_password(&self) -> bool {
        self.password.is_some() || self.password_stdin
    }

    /// Sets the credentials asked for on a terminal (`login` without them).
    pub fn set_credentials(&mut self, username: String, password: String) {
        (self.username, self.password) = (Some(username), Some(password));
    }

    /// Whether `--password-stdin` was given (standard input is taken).
    pub fn reads_password_from_stdin(&self) -> bool {
        self.password_stdin
    }

    /// What the user should be warned of: certificates going unchecked, a password where
    /// `ps` shows it.
    pub fn cautions(&self) -> Vec<&'static str> {
        let mut cautions = Vec::new();
        if self.skip_tls {
            cautions.push("--skip-tls: certificates are not checked");
        }
        if self.password_in_arguments {
            cautions.push(
                "--password on the command line is visible to every user of this machine (ps); \
                 use --password-stdin or DOCKER_PUSHER_PASSWORD",
            );
        }
        cautions
    }
}

impl FlagGroup for RegistryArgs {
    fn claim(&mut self, arg: &Arg<'_>, parser: &mut Parser) -> Result<bool> {
        match arg {
            Arg::Short('u') | Arg::Long("username") => {
                self.username = Some(value(parser, "--username")?)
            }
            Arg::Short('p') | Arg::Long("password") => {
                self.password = Some(secret(parser, "--password")?);
                self.password_in_arguments = true;
            }
            Arg::Long("password-stdin") => self.password_stdin = true,
            Arg::Long("ca-cert") => self
                .ca_certs
                .push(PathBuf::from(value(parser, "--ca-cert")?)),
            Arg::Long("skip-tls") => self.skip_tls = true,
            Arg::Long("insecure-registry") => {
                self.insecure.push(value(parser, "--insecure-registry")?)
            }
            Arg::Long("timeout") => self.timeout = Some(number(parser, "--timeout")?),
            Arg::Long("retry-attempts") => self.retries = number(parser, "--retry-attempts")?,
            Arg::Long("registry-mirror") => {
                let text = value(parser, "--registry-mirror")?;
                if !self.mirrors_from_flags {
                    // The flags replace the environment's list, as every flag overrides it.
                    self.mirrors.clear();
                    self.mirrors_from_flags = true;
                }
                self.mirrors
                    .push(MirrorSpec::parse(&text, "--registry-mirror")?)
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}
