//! `delete`: remove a tag from a registry (the manifest too when no other tag names it), or a
//! manifest by digest with the tags naming it.

use lexopt::{Arg, Parser};

use crate::args::{self, Globals, Invocation, REGISTRY_HELP, RegistryArgs};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::reference::Reference;
use crate::registry::{MAX_TAGS_CHECKED, Registry};

use crate::run::output::print_help;
use crate::run::remote::connect;

const COMMAND: &str = "docker-image-pusher delete";

/// The synopsis and options.
pub const USAGE: &str = "\
Delete a tag, or a manifest by digest, from a registry.

Usage: docker-image-pusher delete [OPTIONS] IMAGE

Arguments:
  IMAGE  registry/repository:tag or registry/repository@sha256:..., or a URL

Options:
  -n, --dry-run  say what would be deleted (the manifest, or the tag alone) and which tags
                 name the manifest; delete nothing";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = &[REGISTRY_HELP];

/// The long help.
pub const DETAILS: &str = "

A tag is first resolved to the manifest digest it points at (HEAD), and the repository's
tags (the first 1000) are looked at to find which others name that manifest. When none does,
the manifest is deleted. When others do, the tag alone is deleted and they stay: the
registry API deletes manifests, not tags, so the tag is pointed at a small throwaway manifest
of its own (OCI's empty config, a unique annotation), which is then deleted by digest, as
'regctl tag delete' does (this needs push access; a registry that refuses to delete it gets
the tag pointed back). A digest is deleted with every tag naming it, and they are listed,
in a dry run too. An index's images stay until they are deleted themselves, and the
registry frees the blobs only when its garbage collection runs. A registry that does not
allow deleting answers 405 (Distribution with storage.delete.enabled false, the default);
the error says so (exit 5).

Examples:
  docker-image-pusher delete registry.example.com/team/app:v1 --dry-run
  docker-image-pusher delete registry.example.com/team/app@sha256:0123...";

/// What the command line of `delete` says, checked, before anything is opened.
pub struct DeleteArgs {
    pub globals: Globals,
    pub registry: RegistryArgs,
    /// The image, and the scheme a URL gave.
    pub image: (Option<&'static str>, Reference),
    pub dry_run: bool,
}

impl DeleteArgs {
    /// Reads the rest of the command line.
    pub fn parse(parser: &mut Parser, mut globals: Globals) -> Result<Invocation<DeleteArgs>> {
        let mut registry = RegistryArgs::from_env(&globals.env)?;
        let (mut image, mut dry_run) = (None, false);
        while let Some(flag) = args::next(parser, &mut [&mut globals, &mut registry], COMMAND)? {
            match flag.as_arg() {
                Arg::Short('h') => return Ok(Invocation::Help { long: false }),
                Arg::Long("help") => return Ok(Invocation::Help { long: true }),
                Arg::Short('n') | Arg::Long("dry-run") => dry_run = true,
                Arg::Value(value) if image.is_none() => image = Some(args::utf8(value, "IMAGE")?),
                other => return Err(args::unexpected(other, COMMAND)),
            }
        }
        let text =
            image.ok_or_else(|| Error::Usage(format!("no image given; see '{COMMAND} --help'")))?;
        let image = Reference::parse_url(&text).map_err(|e| Error::Usage(format!("IMAGE: {e}")))?;
        Ok(Invocation::Run(DeleteArgs {
            globals,
            registry,
            image,
            dry_run,
        }))
    }
}

/// Runs `delete` on the rest of the command line.
pub fn run(parser: &mut Parser, globals: Globals) -> Result<()> {
    let DeleteArgs {
        globals,
        registry: registry_args,
        image: (scheme, image),
        dry_run,
    } = match DeleteArgs::parse(parser, globals)? {
        Invocation::Help { long } => return print_help(USAGE, GROUPS, DETAILS, long),
        Invocation::Run(delete) => delete,
    };
    let progress = globals.progress();
    let (registry, _) = connect(&registry_args, image.registry(), scheme, progress)?;
    let repository = image.repository();
    let digest = match image.digest() {
        Some(digest) => digest.clone(),
        None => registry
            .manifest_digest(repository, &image.reference(), false)?
            .ok_or_else(|| Error::NotFound(format!("no image {image}")))?,
    };
    remove(&registry, &image, &digest, dry_run, &progress)
}

/// Deletes `image`, whose manifest is `digest`: a digest with the tags naming it, a tag alone
/// when others name its manifest, else with the manifest. With `dry_run`, only says so.
fn remove(
    registry: &Registry,
    image: &Reference,
    digest: &Digest,
    dry_run: bool,
    progress: &Progress,
) -> Result<()> {
    let repository = image.repository();
    let named = format!("{}/{repository}@{digest}", image.registry());
    let naming = registry.tags_naming(repository, digest)?;
    let unlooked = match naming.partial {
        true => format!(" (only the first {MAX_TAGS_CHECKED} tags were looked at)"),
        false => String::new(),
    };
    let verb = |done: &str| {
        if dry_run {
            format!("would {done}")
        } else {
            format!("{done}d")
        }
    };
    let tag = image.tag().filter(|_| image.digest().is_none());
    let others: Vec<&str> = (naming.tags.iter())
        .map(String::as_str)
        .filter(|other| Some(*other) != tag)
        .collect();
    let Some(tag) = tag.filter(|_| !others.is_empty() || naming.partial) else {
        if !dry_run {
            registry.delete_manifest(repository, digest)?;
        }
        let with = match (tag, others.is_empty()) {
            (Some(_), _) => format!("({image}, the only tag naming it)"),
            (None, true) => "(no tag names it)".to_string(),
            (None, false) => format!("and with it {}", listed(&others)),
        };
        progress.info(format_args!("{} {named} {with}{unlooked}", verb("delete")));
        return Ok(());
    };
    if !dry_run {
        registry.untag(repository, tag, digest)?;
    }
    let stays = match others.is_empty() {
        true => "stays".to_string(),
        false => format!("stays, named by {}", listed(&others)),
    };
    progress.info(format_args!(
        "{} tag {image} alone: {named} {stays}{unlooked}",
        verb("delete")
    ));
    Ok(())
}

/// `tag a` or `tags a, b, c`.
fn listed(tags: &[&str]) -> String {
    match tags {
        [one] => format!("tag {one}"),
        _ => format!("tags {}", tags.join(", ")),
    }
}
