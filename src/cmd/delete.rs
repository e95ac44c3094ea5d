//! `delete`: remove an image's manifest from a registry, by tag or by digest.

use lexopt::{Arg, Parser};

use crate::args::{self, Globals, REGISTRY_HELP, RegistryArgs};
use crate::error::{Error, Result};
use crate::reference::Reference;

use super::output::print_help;
use super::remote::connect;

const COMMAND: &str = "docker-image-pusher delete";

/// The synopsis and options.
pub const USAGE: &str = "\
Delete an image's manifest from a registry.

Usage: docker-image-pusher delete [OPTIONS] IMAGE

Arguments:
  IMAGE  registry/repository:tag or registry/repository@sha256:..., or a URL

Options:
  -n, --dry-run  say which manifest would be deleted; delete nothing";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = &[REGISTRY_HELP];

/// The long help.
pub const DETAILS: &str = "

A tag is first resolved to the manifest digest it points at (HEAD), and that manifest is
deleted, as the registry API works: every other tag pointing at the same manifest goes too,
and an index's images stay until they are deleted themselves. The registry frees the blobs
only when its garbage collection runs. A registry that does not allow deleting answers 405
(Distribution with storage.delete.enabled false, the default); the error says so (exit 5).

Examples:
  docker-image-pusher delete registry.example.com/team/app:v1 --dry-run
  docker-image-pusher delete registry.example.com/team/app@sha256:0123...";

/// Runs `delete` on the rest of the command line.
pub fn run(parser: &mut Parser, mut globals: Globals) -> Result<()> {
    let mut registry_args = RegistryArgs::from_env()?;
    let (mut image, mut dry_run) = (None, false);
    while let Some(flag) = args::next(parser, &mut [&mut globals, &mut registry_args], COMMAND)? {
        match flag.as_arg() {
            Arg::Short('h') => return print_help(USAGE, GROUPS, DETAILS, false),
            Arg::Long("help") => return print_help(USAGE, GROUPS, DETAILS, true),
            Arg::Short('n') | Arg::Long("dry-run") => dry_run = true,
            Arg::Value(value) if image.is_none() => image = Some(args::utf8(value, "IMAGE")?),
            other => return Err(args::unexpected(other, COMMAND)),
        }
    }
    let text =
        image.ok_or_else(|| Error::Usage(format!("no image given; see '{COMMAND} --help'")))?;
    let (scheme, image) =
        Reference::parse_url(&text).map_err(|e| Error::Usage(format!("IMAGE: {e}")))?;
    let progress = globals.progress();
    let (registry, _) = connect(&registry_args, image.registry(), scheme, progress)?;
    let repository = image.repository();
    let digest = match image.digest() {
        Some(digest) => digest.clone(),
        None => registry
            .manifest_digest(repository, &image.reference(), false)?
            .ok_or_else(|| Error::NotFound(format!("no image {image}")))?,
    };
    let named = format!("{}/{repository}@{digest}", image.registry());
    if dry_run {
        progress.info(format_args!("would delete {named} ({image})"));
        return Ok(());
    }
    registry.delete_manifest(repository, &digest)?;
    progress.info(format_args!("deleted {named} ({image})"));
    Ok(())
}
