//! `logout`: forget the credentials Docker's config.json (or an auth.json given with
//! `--auth-file`) keeps for a registry.

use std::path::PathBuf;

use lexopt::{Arg, Parser};

use crate::args::{self, Globals, Invocation};
use crate::error::Result;
use crate::registry::docker_config::Keys;
use crate::registry::{HELPER_TIMEOUT, auth_file};

use crate::run::output::print_help;
use crate::run::remote::registry_host;

const COMMAND: &str = "docker-image-pusher logout";

/// The synopsis and options.
pub const USAGE: &str = "\
Remove the credentials stored for a registry.

Usage: docker-image-pusher logout [OPTIONS] REGISTRY [--auth-file FILE]

Arguments:
  REGISTRY  host[:port], or http[s]://host[:port], as given to login

Options:
      --auth-file FILE  the auth.json of podman and skopeo to remove them from, not config.json";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = &[];

/// The long help.
pub const DETAILS: &str = "

Removes the registry's entry from $DOCKER_CONFIG/config.json (or ~/.docker/config.json), or
erases it from the credsStore helper when one is set. With --auth-file FILE, removes it from
FILE (an auth.json of podman and skopeo) instead, keeping the file's other entries. Warns when
another file still gives credentials for the registry, as pulls and pushes would use them.";

/// What the command line of `logout` says, checked, before anything is opened.
pub struct LogoutArgs {
    pub globals: Globals,
    /// The registry host whose credentials go.
    pub host: String,
    /// The file given with `--auth-file`, whose entry goes instead of config.json's.
    pub auth_file: Option<PathBuf>,
}

impl LogoutArgs {
    /// Reads the rest of the command line.
    pub fn parse(parser: &mut Parser, mut globals: Globals) -> Result<Invocation<LogoutArgs>> {
        let (mut target, mut auth_file) = (None, None);
        while let Some(flag) = args::next(parser, &mut [&mut globals], COMMAND)? {
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
        let (_, host) = registry_host(target.as_deref(), COMMAND)?;
        Ok(Invocation::Run(LogoutArgs {
            globals,
            host,
            auth_file,
        }))
    }
}

/// Runs `logout` on the rest of the command line.
pub fn run(parser: &mut Parser, globals: Globals) -> Result<()> {
    let LogoutArgs {
        globals,
        host,
        auth_file,
    } = match LogoutArgs::parse(parser, globals)? {
        Invocation::Help { long } => return print_help(USAGE, GROUPS, DETAILS, long),
        Invocation::Run(logout) => logout,
    };
    let file = auth_file::to_write(auth_file)?;
    let progress = globals.progress();
    if file.erase(&host, HELPER_TIMEOUT)? {
        progress.info(format_args!(
            "removed the credentials for {host} from {}",
            file.shown()
        ));
    } else {
        progress.info(format_args!(
            "no credentials were stored for {host} in {}",
            file.shown()
        ));
    }
    // Another file (podman's auth.json) may still give them: pulls would go on using them.
    let left = auth_file::Searched::from_env().lookup(&host, HELPER_TIMEOUT);
    if let Ok(Some(found)) = left {
        let remove = match found.file.keys {
            Keys::Docker => format!("{COMMAND} {host}"),
            Keys::Containers => format!("{COMMAND} {host} --auth-file {}", found.file.shown()),
        };
        progress.warn(format_args!(
            "{} still has credentials for {host}, which are used: remove them with '{remove}'",
            found.file.shown(),
        ));
    }
    Ok(())
}
