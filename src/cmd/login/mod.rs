//! `login`: check credentials against a registry and keep them where Docker does, or in the
//! auth.json file of podman and skopeo given with `--auth-file`.

mod prompt;

use std::io::IsTerminal;
use std::path::PathBuf;

use lexopt::{Arg, Parser};

use crate::args::{self, Globals, Invocation, REGISTRY_HELP, RegistryArgs};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::registry::{Credentials, Registry, Secret, auth_file};

use crate::run::output::print_help;
use crate::run::remote::{connect, registry_host};

const COMMAND: &str = "docker-image-pusher login";

/// The synopsis and options.
pub const USAGE: &str = "\
Check credentials against a registry and store them in config.json (or --auth-file FILE).

Usage: docker-image-pusher login [OPTIONS] REGISTRY [-u USER] [-p PASSWORD | --password-stdin]
                                 [--auth-file FILE]

Arguments:
  REGISTRY  host[:port], or http[s]://host[:port] (docker.io for Docker Hub)

Options (the registry options' credentials, which login needs):
  -u, --username USER               user name [env: DOCKER_PUSHER_USERNAME]
  -p, --password PASSWORD           password or token [env: DOCKER_PUSHER_PASSWORD]
      --password-stdin              read the password from standard input
      --auth-file FILE              store them in this auth.json of podman and skopeo instead";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = &[REGISTRY_HELP];

/// The long help.
pub const DETAILS: &str = "

The credentials go to $DOCKER_CONFIG/config.json (or ~/.docker/config.json), through its
credsStore helper when one is set, else base64-encoded (not encrypted) under \"auths\",
where pull and push (and docker) find them. With --auth-file FILE they go to FILE instead,
in the same format (podman's and skopeo's auth.json: give FILE to their --authfile), keeping
the file's other entries; a new file is readable by its owner only (0600, in a folder made
0700).

Where pull, push and the other commands look for credentials, in order: -u (or
DOCKER_PUSHER_USERNAME); Docker's config.json; then, only when config.json has nothing for
the registry, podman's and skopeo's auth.json: $REGISTRY_AUTH_FILE when set, else
$XDG_RUNTIME_DIR/containers/auth.json, then ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json.
An auth.json key names a registry (host[:port]); a key naming a namespace (host/team/app) is
not used. --verbose names the file the credentials came from.

When the registry uses a token server that grants refresh tokens (ACR and other OAuth2
registries do), login asks for one with the password and stores it as Docker does
(\"identitytoken\", or the user name <token> for a helper) instead of the password; later
commands exchange it for access tokens.

Example:
  echo \"$TOKEN\" | docker-image-pusher login harbor.example.com -u 'robot$ci' --password-stdin";

/// What the command line of `login` says, checked, before anything is opened.
pub struct LoginArgs {
    pub globals: Globals,
    /// The registry flags, whose credentials login checks and stores.
    pub registry: RegistryArgs,
    /// The registry host, and the scheme a URL gave.
    pub host: (Option<&'static str>, String),
    /// The file given with `--auth-file`, where the credentials go instead of config.json.
    pub auth_file: Option<PathBuf>,
}

impl LoginArgs {
    /// Reads the rest of the command line.
    pub fn parse(parser: &mut Parser, mut globals: Globals) -> Result<Invocation<LoginArgs>> {
        let mut registry = RegistryArgs::from_env(&globals.env)?;
        let (mut target, mut auth_file) = (None, None);
        while let Some(flag) = args::next(parser, &mut [&mut globals, &mut registry], COMMAND)? {
            match flag.as_arg() {
                Arg::Short('h') => return Ok(Invocation::Help { long: false }),
                Arg::Long("help") => return Ok(Invocation::Help { long: true }),
                Arg::Long("auth-file") => {
                    auth_file = Some(PathBuf::from(args::value(parser, "--auth-file")?))
                }
                Arg::Value(value) if target.is_none() => {
                    target = Some(args::utf8(value, "REGISTRY")?)
                }
                other => return Err(args::unexpected(other, COMMAND)),
            }
        }
        Ok(Invocation::Run(LoginArgs {
            globals,
            registry,
            host: registry_host(target.as_deref(), COMMAND)?,
            auth_file,
        }))
    }
}

/// Runs `login` on the rest of the command line.
pub fn run(parser: &mut Parser, globals: Globals) -> Result<()> {
    let LoginArgs {
        globals,
        registry: mut registry_args,
        host: (scheme, host),
        auth_file,
    } = match LoginArgs::parse(parser, globals)? {
        Invocation::Help { long } => return print_help(USAGE, GROUPS, DETAILS, long),
        Invocation::Run(login) => login,
    };
    let missing = || {
        Error::Usage(format!(
            "login needs -u USER and -p PASSWORD or --password-stdin; see '{COMMAND} --help'"
        ))
    };
    if !(registry_args.has_username() && registry_args.has_password()) {
        // On a terminal, asked for as docker login asks; a script must say them.
        if !std::io::stdin().is_terminal() {
            return Err(missing());
        }
        let username = match registry_args.username() {
            Some(username) => username.to_string(),
            None => prompt::ask(&format!("Username for {host}: "), false)?,
        };
        let password = prompt::ask("Password: ", true)?;
        registry_args.set_credentials(username, password);
    }
    let file = auth_file::to_write(auth_file)?;
    let progress = globals.progress();
    let (registry, options) = connect(&registry_args, &host, scheme, progress)?;
    let credentials = options.credentials.ok_or_else(missing)?;
    if !registry.asks_for_credentials() {
        progress.warn(format_args!(
            "{host} asked for no authentication: anyone may use it as it is; the credentials \
             are stored for when it does"
        ));
    }
    let (stored, what) = to_store(&registry, credentials, progress);
    let place = file.store(&host, &stored, options.helper_timeout)?;
    progress.info(format_args!(
        "login succeeded for {} at {host}; {what} stored in {place}",
        stored.username
    ));
    Ok(())
}

/// What is stored of `credentials`, which passed the check of `registry`, and what to call
/// it: an identity token when the registry's token server grants one, else the credentials.
fn to_store(
    registry: &Registry,
    credentials: Credentials,
    progress: Progress,
) -> (Credentials, &'static str) {
    // A token server that will not grant a refresh token leaves the password to be stored.
    let identity_token = registry.identity_token().unwrap_or_else(|e| {
        progress.detail(format_args!("no identity token: {e}"));
        None
    });
    match identity_token {
        Some(token) => (
            Credentials {
                username: credentials.username.clone(),
                secret: Secret::IdentityToken(token),
            },
            "an identity token from the registry (not the password)",
        ),
        None => (credentials, "credentials"),
    }
}
