//! Registries as the command line names them: the REGISTRY of `login` and `logout`, a push
//! or copy TARGET, and a connection for the commands that only look (`tags`, `inspect`).

use crate::args::RegistryArgs;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::reference::{Reference, hide_credentials};
use crate::registry::{Registry, RegistryOptions};

/// The registry host the REGISTRY argument of `login`/`logout` (`command`) names
/// (`host[:port]` or a URL), with the scheme when one was given; a usage error without one.
pub fn registry_host(
    argument: Option<&str>,
    command: &str,
) -> Result<(Option<&'static str>, String)> {
    let text = argument
        .ok_or_else(|| Error::Usage(format!("no registry given; see '{command} --help'")))?;
    let (scheme, rest) = match (text.strip_prefix("https://"), text.strip_prefix("http://")) {
        (Some(rest), _) => (Some("https"), rest),
        (_, Some(rest)) => (Some("http"), rest),
        _ => (None, text),
    };
    let host = rest.split('/').next().unwrap_or_default();
    let probe = Reference::parse_url(&format!("https://{host}/probe")).map_err(|_| {
        let shown = hide_credentials(text);
        Error::Usage(format!("REGISTRY \"{shown}\" is not a host[:port]"))
    })?;
    Ok((scheme, probe.1.registry().to_string()))
}

/// A push or copy TARGET: a reference or URL naming a tag, not a digest.
pub fn target_reference(text: &str) -> Result<(Option<&'static str>, Reference)> {
    let (scheme, target) =
        Reference::parse_url(text).map_err(|e| Error::Usage(format!("TARGET: {e}")))?;
    if target.digest().is_some() {
        return Err(Error::Usage(format!(
            "TARGET {target}: push to a tag, not a digest"
        )));
    }
    Ok((scheme, target))
}

/// The options the registry flags describe, warning of what [`RegistryArgs::cautions`] names.
pub fn options(registry_args: &RegistryArgs, progress: Progress) -> Result<RegistryOptions> {
    for caution in registry_args.cautions() {
        progress.warn(caution);
    }
    registry_args.options()
}

/// Connects to the registry `host` as the registry flags say, for a command that moves no
/// blobs; returns the connection and the options it was made with.
pub fn connect(
    registry_args: &RegistryArgs,
    host: &str,
    scheme: Option<&str>,
    progress: Progress,
) -> Result<(Registry, RegistryOptions)> {
    let options = options(registry_args, progress)?;
    let registry = Registry::connect(host, scheme, &options, progress)?;
    Ok((registry, options))
}
