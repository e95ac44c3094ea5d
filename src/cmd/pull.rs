//! `pull`: registry to cache.

use lexopt::{Arg, Parser};

use crate::args::{
    self, Globals, PROGRESS_HELP, PlatformArgs, REGISTRY_HELP, RegistryArgs, TRANSFER_HELP,
    TransferArgs,
};
use crate::error::{Error, Result};
use crate::progress::{count, human_bytes};
use crate::reference::Reference;
use crate::registry::RegistrySource;
use crate::transfer::{self, Job, Options, Stored};

use super::context::RunContext;
use super::output::print_help;
use super::seed::SeedArgs;

const COMMAND: &str = "docker-image-pusher pull";

/// The synopsis and options.
pub const USAGE: &str = "\
Copy an image from a registry into the cache.

Usage: docker-image-pusher pull [OPTIONS] IMAGE
       docker-image-pusher pull [OPTIONS] -r NAME -t TAG [--registry URL]

Arguments:
  IMAGE  [registry/]repository[:tag|@digest], or http[s]://registry/repository[:tag]

Options:
      --platform OS/ARCH[/VARIANT]  which image of a multi-platform index [default: this host's]
      --all-platforms               keep the index and every image it lists
      --registry URL                registry for --repository [default: https://registry-1.docker.io]
  -r, --repository NAME             repository, with --reference
  -t, --reference TAG               tag or sha256: digest, with --repository
  -n, --dry-run                     show what would be downloaded; write nothing";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = &[REGISTRY_HELP, TRANSFER_HELP, PROGRESS_HELP];

/// The long help.
pub const DETAILS: &str = "

Every blob is streamed into the cache with its size and sha256 checked on the way; blobs
already cached are not downloaded again. A manifest pulled by digest must match it.
Docker schema 1 images are refused. Without a scheme, HTTPS is used, falling back to
plain HTTP for loopback addresses and --insecure-registry hosts.

Credentials, first found wins: -u/--username with -p/--password or --password-stdin,
then DOCKER_PUSHER_USERNAME and DOCKER_PUSHER_PASSWORD.

Examples:
  docker-image-pusher pull nginx:1.27
  docker-image-pusher pull registry.example.com/team/app:v1 --platform linux/arm64
  docker-image-pusher pull 127.0.0.1:5000/app:v1";

/// Runs `pull` on the rest of the command line.
pub fn run(parser: &mut Parser, mut globals: Globals) -> Result<()> {
    let mut registry_args = RegistryArgs::from_env()?;
    let mut transfer_args = TransferArgs::from_env()?;
    let mut image = None;
    let mut platform_args = PlatformArgs::default();
    let mut dry_run = false;
    let mut seed_args = SeedArgs::default();
    while let Some(flag) = args::next(
        parser,
        &mut [
            &mut globals,
            &mut registry_args,
            &mut transfer_args,
            &mut platform_args,
            &mut seed_args,
        ],
        COMMAND,
    )? {
        match flag.as_arg() {
            Arg::Short('h') => return print_help(USAGE, GROUPS, DETAILS, false),
            Arg::Long("help") => return print_help(USAGE, GROUPS, DETAILS, true),
            Arg::Short('n') | Arg::Long("dry-run") => dry_run = true,
            Arg::Short('r') => seed_args.set_repository(args::value(parser, "-r")?),
            Arg::Short('t') => seed_args.set_reference(args::value(parser, "-t")?),
            Arg::Value(value) if image.is_none() => image = Some(args::utf8(value, "IMAGE")?),
            other => return Err(args::unexpected(other, COMMAND)),
        }
    }
    let (scheme, reference) = seed_args.choose(image, ("IMAGE", COMMAND), |image| {
        Reference::parse_url(image).map_err(|e| Error::Usage(format!("IMAGE: {e}")))
    })?;

    let platforms = platform_args.choice()?;
    let run = RunContext::new(&globals, &transfer_args)?;
    let progress = run.progress;
    if let Some(caution) = seed_args.caution() {
        progress.warn(caution);
    }
    let board = run.board();
    let registry_options = run.registry_options(&registry_args)?;
    let registry = run.connect(&registry_options, reference.registry(), scheme)?;
    let source = RegistrySource::new(&registry, &reference)?;
    let session = run.cache.begin()?;
    let destination = session.destination(format!("registry:{reference}"));
    let jobs = [Job {
        platforms: &platforms,
        source: &source,
        names: vec![reference.clone()],
    }];
    let options = Options {
        dry_run,
        ..run.options(Some(&board), registry_options.attempts)
    };
    let summary = transfer::copy(&jobs, &destination, options, &progress)?;
    let blobs = count(summary.blobs_copied, "blob");
    let size = human_bytes(summary.bytes_copied);
    let present = summary.blobs_present;
    let unchanged = (summary.outcomes.iter())
        .flat_map(|o| &o.stored)
        .all(|(_, stored)| *stored == Stored::Unchanged);
    run.finish(("pull", &[reference.to_string()]), &summary, &board, |took| {
        match (dry_run, unchanged) {
            (true, _) => format!(
                "would pull {reference}: {blobs} to download ({size}), {present} already cached"
            ),
            (false, true) => format!(
                "already up to date: {reference}: {blobs} downloaded ({size}), {present} already cached{took}"
            ),
            (false, false) => format!(
                "pulled {reference}: {blobs} downloaded ({size}), {present} already cached{took}"
            ),
        }
    })
}
