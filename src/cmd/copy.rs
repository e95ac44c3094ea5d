//! `copy`: registry to registry.

use lexopt::{Arg, Parser};

use crate::args::{self, Globals, Invocation, UploadFlags};
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::registry::{Registry, RegistrySource};

use crate::run::output::print_help;
use crate::run::remote::target_reference;
use crate::run::upload::{Uploads, report_upload, write_digestfile};

const COMMAND: &str = "docker-image-pusher copy";

/// The synopsis and options.
pub const USAGE: &str = "\
Copy an image from one registry (or repository) to another, streaming each blob.

Usage: docker-image-pusher copy [OPTIONS] SOURCE TARGET

Arguments:
  SOURCE  [registry/]repository[:tag|@digest], or http[s]://registry/repository[:tag]
  TARGET  [registry/]repository[:tag], or http[s]://registry/repository[:tag]

Options:
      --platform OS/ARCH[/VARIANT]  only this image of a multi-platform index, as it is;
                                    several, comma-separated: an index of just those
                                    (rewritten, so a new digest)
      --all-platforms               the index whole, byte for byte, with every image it
                                    lists [default]
      --via-cache                   keep a copy in the cache on the way
      --digestfile FILE             write the manifest digest copied to FILE
  -n, --dry-run                     show what would be copied; send nothing";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = args::UPLOAD_GROUPS;

/// The long help.
pub const DETAILS: &str = "

A multi-platform index is copied whole by default, byte for byte: the target's tag names
the source's digest, so image@sha256:... pins hold there too. --platform narrows it to the
image for that platform, as it is (its own digest); several, comma-separated
(--platform linux/amd64,linux/arm64), to an index of just those, which is rewritten and so
has a digest of its own (a warning says so).

Each blob streams from the source registry to the target without touching the disk
(with --via-cache it is pulled into the cache first, then pushed from there). Blobs the
target has are skipped; within one registry they are mounted from the source repository,
not sent again. Foreign (non-distributable) layers, as Windows base images have, are not
moved: the manifest keeps naming them and their URLs, which are never fetched (with
--via-cache such an image is refused, exit 3). The credentials given (-u/-p, the
environment) are offered to both registries; Docker's config.json is consulted for each by
host.

Examples:
  docker-image-pusher copy docker.io/library/nginx:1.27 registry.example.com/mirror/nginx:1.27
  docker-image-pusher copy registry.example.com/team/app:v1 registry.example.com/prod/app:v1
  docker-image-pusher copy --platform linux/arm64 ghcr.io/org/tool:2 127.0.0.1:5000/tool:2-arm64";

/// What the command line of `copy` says, checked, before anything is opened.
pub struct CopyArgs {
    pub globals: Globals,
    pub flags: UploadFlags,
    /// The image copied, and the scheme a URL gave.
    pub source: (Option<&'static str>, Reference),
    /// Where it goes, and the scheme a URL gave.
    pub target: (Option<&'static str>, Reference),
    /// Through the cache (`--via-cache`), rather than straight from registry to registry.
    pub via_cache: bool,
}

impl CopyArgs {
    /// Reads the rest of the command line.
    pub fn parse(parser: &mut Parser, mut globals: Globals) -> Result<Invocation<CopyArgs>> {
        let mut flags = UploadFlags::from_env(&globals.env)?;
        let (mut source, mut target, mut via_cache) = (None, None, false);
        let groups: &mut [&mut dyn args::FlagGroup] = &mut [&mut globals, &mut flags];
        while let Some(flag) = args::next(parser, groups, COMMAND)? {
            match flag.as_arg() {
                Arg::Short('h') => return Ok(Invocation::Help { long: false }),
                Arg::Long("help") => return Ok(Invocation::Help { long: true }),
                Arg::Long("via-cache") => via_cache = true,
                Arg::Value(value) if source.is_none() => {
                    source = Some(args::utf8(value, "SOURCE")?)
                }
                Arg::Value(value) if target.is_none() => {
                    target = Some(args::utf8(value, "TARGET")?)
                }
                other => return Err(args::unexpected(other, COMMAND)),
            }
        }
        let (Some(source), Some(target)) = (source, target) else {
            return Err(Error::Usage(format!(
                "copy needs SOURCE and TARGET; see '{COMMAND} --help'"
            )));
        };
        Ok(Invocation::Run(CopyArgs {
            source: Reference::parse_url(&source)
                .map_err(|e| Error::Usage(format!("SOURCE: {e}")))?,
            target: target_reference(&target)?,
            globals,
            flags,
            via_cache,
        }))
    }
}

/// Runs `copy` on the rest of the command line.
pub fn run(parser: &mut Parser, globals: Globals) -> Result<()> {
    let copy = match CopyArgs::parse(parser, globals)? {
        Invocation::Help { long } => return print_help(USAGE, GROUPS, DETAILS, long),
        Invocation::Run(copy) => copy,
    };
    let ((source_scheme, source), (target_scheme, target)) = (copy.source, copy.target);
    let via_cache = copy.via_cache;
    let uploads = Uploads::new(&copy.globals, &copy.flags)?;
    // One registry for both ends when they are the same, so a mount's token covers both (and
    // no mirror: the blobs are there already).
    let same = source.registry() == target.registry()
        && target_scheme.is_none_or(|s| Some(s) == source_scheme);
    let (mut from, mut separate) = (None, None);
    let (remote, to): (RegistrySource<'_>, &Registry) = match same {
        true => {
            let from = &*from.insert(uploads.connect(source.registry(), source_scheme)?);
            (RegistrySource::new(from, &source)?, from)
        }
        false => {
            let remote = uploads.source((source_scheme, &source), &mut from)?;
            let to = &*separate.insert(uploads.connect(target.registry(), target_scheme)?);
            (remote, to)
        }
    };
    let board = uploads.run.board();
    let summary = uploads.copy((&remote, &source), via_cache, (to, &target), &board)?;
    write_digestfile(&copy.flags, &summary)?;
    report_upload(&uploads.run, ("copy", "copied"), &target, &summary, &board)
}
