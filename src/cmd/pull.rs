//! `pull`: registry to cache.

use lexopt::{Arg, Parser};

use crate::args::{
    self, Globals, Invocation, PROGRESS_HELP, PlatformArgs, REFERRERS_HELP, REGISTRY_HELP,
    ReferrerArgs, RegistryArgs, TRANSFER_HELP, TransferArgs,
};
use crate::error::{Error, Result};
use crate::manifest::Platforms;
use crate::progress::{count, human_bytes};
use crate::reference::Reference;
use crate::transfer::{Options, ReferrerPolicy, Stored};

use crate::args::SeedArgs;
use crate::run::context::RunContext;
use crate::run::output::print_help;
use crate::run::upload::referrers_said;

const COMMAND: &str = "docker-image-pusher pull";

/// The synopsis and options.
pub const USAGE: &str = "\
Copy an image from a registry into the cache.

Usage: docker-image-pusher pull [OPTIONS] IMAGE
       docker-image-pusher pull [OPTIONS] -r NAME -t TAG [--registry URL]

Arguments:
  IMAGE  [registry/]repository[:tag|@digest], or http[s]://registry/repository[:tag]

Options:
      --platform OS/ARCH[/VARIANT]  which image of a multi-platform index [default: this host's];
                                    several, comma-separated: an index of just those
                                    (rewritten, so a new digest)
      --all-platforms               keep the index and every image it lists
      --registry URL                registry for --repository [default: https://registry-1.docker.io]
  -r, --repository NAME             repository, with --reference
  -t, --reference TAG               tag or sha256: digest, with --repository
  -n, --dry-run                     show what would be downloaded; write nothing";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = &[REGISTRY_HELP, TRANSFER_HELP, REFERRERS_HELP, PROGRESS_HELP];

/// The long help.
pub const DETAILS: &str = "

Every blob is streamed into the cache with its size and sha256 checked on the way; blobs
already cached are not downloaded again. A manifest pulled by digest must match it.
The image's referrers (signatures, SBOMs, attestations: found through the Referrers API or
the fallback tag sha256-<hex>, and cosign's sha256-<hex>.sig/.att/.sbom tags) come too and
are recorded beside it, as a registry without the API keeps them, so push, save and bundle
take them on; --no-referrers leaves them.
Docker schema 1 images are refused, and so are images with a foreign (non-distributable)
layer, whose bytes the registry does not hold (exit 3, naming the layer; copy moves them
between registries). Without a scheme, HTTPS is used, falling back to
plain HTTP for loopback addresses and --insecure-registry hosts.

Credentials, first found wins: -u/--username with -p/--password or --password-stdin; then
DOCKER_PUSHER_USERNAME and DOCKER_PUSHER_PASSWORD; then Docker's config.json
($DOCKER_CONFIG/config.json, else ~/.docker/config.json): the credHelpers entry for the
registry, else the credsStore helper (docker-credential-NAME get), else its auths entry, as
'docker-image-pusher login' or 'docker login' left it. Anonymous otherwise.

Examples:
  docker-image-pusher pull nginx:1.27
  docker-image-pusher pull registry.example.com/team/app:v1 --platform linux/arm64
  docker-image-pusher pull 127.0.0.1:5000/app:v1";

/// What the command line of `pull` says, checked, before anything is opened.
pub struct PullArgs {
    pub globals: Globals,
    pub registry: RegistryArgs,
    pub transfer: TransferArgs,
    pub platforms: Platforms,
    /// Which referrers go with the image (none with `--no-referrers`).
    pub referrers: Option<ReferrerPolicy>,
    pub dry_run: bool,
    /// The image, and the scheme a URL gave.
    pub image: (Option<&'static str>, Reference),
    /// What to warn of before starting.
    pub caution: Option<&'static str>,
}

impl PullArgs {
    /// Reads the rest of the command line.
    pub fn parse(parser: &mut Parser, mut globals: Globals) -> Result<Invocation<PullArgs>> {
        let mut registry = RegistryArgs::from_env(&globals.env)?;
        let mut transfer = TransferArgs::from_env(&globals.env)?;
        let mut image = None;
        let mut platform = PlatformArgs::default();
        let mut dry_run = false;
        let mut seed_args = SeedArgs::default();
        let mut referrers = ReferrerArgs::default();
        while let Some(flag) = args::next(
            parser,
            &mut [
                &mut globals,
                &mut registry,
                &mut transfer,
                &mut platform,
                &mut seed_args,
                &mut referrers,
            ],
            COMMAND,
        )? {
            match flag.as_arg() {
                Arg::Short('h') => return Ok(Invocation::Help { long: false }),
                Arg::Long("help") => return Ok(Invocation::Help { long: true }),
                Arg::Short('n') | Arg::Long("dry-run") => dry_run = true,
                Arg::Short('r') => seed_args.set_repository(args::value(parser, "-r")?),
                Arg::Short('t') => seed_args.set_reference(args::value(parser, "-t")?),
                Arg::Value(value) if image.is_none() => image = Some(args::utf8(value, "IMAGE")?),
                other => return Err(args::unexpected(other, COMMAND)),
            }
        }
        let image = seed_args.choose(image, ("IMAGE", COMMAND), |image| {
            Reference::parse_url(image).map_err(|e| Error::Usage(format!("IMAGE: {e}")))
        })?;
        Ok(Invocation::Run(PullArgs {
            platforms: platform.choice(Platforms::Host)?,
            referrers: referrers.policy()?,
            caution: seed_args.caution(),
            globals,
            registry,
            transfer,
            dry_run,
            image,
        }))
    }
}

/// Runs `pull` on the rest of the command line.
pub fn run(parser: &mut Parser, globals: Globals) -> Result<()> {
    let pull = match PullArgs::parse(parser, globals)? {
        Invocation::Help { long } => return print_help(USAGE, GROUPS, DETAILS, long),
        Invocation::Run(pull) => pull,
    };
    let (scheme, reference) = &pull.image;
    let (platforms, dry_run) = (&pull.platforms, pull.dry_run);
    let run = RunContext::new(&pull.globals, &pull.transfer)?;
    let progress = run.progress;
    if let Some(caution) = pull.caution {
        progress.warn(caution);
    }
    let board = run.board();
    let registry_options = run.registry_options(&pull.registry)?;
    let options = Options {
        dry_run,
        referrers: pull.referrers.as_ref(),
        ..run.options(Some(&board), registry_options.attempts)
    };
    let summary =
        run.pull_into_cache(&registry_options, (*scheme, reference), platforms, options)?;
    let blobs = count(summary.blobs_copied, "blob");
    let size = human_bytes(summary.bytes_copied);
    let present = summary.blobs_present;
    let referrers = referrers_said(summary.referrers);
    let unchanged = (summary.outcomes.iter())
        .flat_map(|o| &o.stored)
        .all(|(_, stored)| *stored == Stored::Unchanged);
    let downloaded = summary.blobs_copied > 0;
    run.finish(("pull", &[reference.to_string()]), &summary, &board, |took| {
        match (dry_run, unchanged, downloaded) {
            (true, ..) => format!(
                "would pull {reference}: {blobs} to download ({size}), {present} already cached"
            ),
            (false, true, false) => format!(
                "already up to date: {reference}: nothing downloaded, {present} already cached{referrers}{took}"
            ),
            // Another command (a pull of the same image at once) stored it first.
            (false, true, true) => format!(
                "pulled {reference}: {blobs} downloaded ({size}), {present} already cached, \
                 though another command had stored it meanwhile{referrers}{took}"
            ),
            (false, false, _) => format!(
                "pulled {reference}: {blobs} downloaded ({size}), {present} already cached{referrers}{took}"
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Platform;

    fn parse(line: &[&str]) -> Result<Invocation<PullArgs>> {
        PullArgs::parse(
            &mut Parser::from_args(line.iter().copied()),
            Globals::defaults(),
        )
    }

    #[test]
    fn the_seed_short_flags_name_the_image() {
        let Ok(Invocation::Run(pull)) =
            parse(&["-r", "team/app", "-t", "v1", "--platform", "linux/arm64"])
        else {
            panic!("not parsed");
        };
        assert_eq!(pull.image.1.to_string(), "docker.io/team/app:v1");
        assert_eq!(
            pull.platforms,
            Platforms::One(Platform::parse("linux/arm64").unwrap())
        );
        assert!(!pull.dry_run && pull.caution.is_none());
    }

    #[test]
    fn an_image_and_the_seed_form_together_are_refused() {
        let error = parse(&["app:v1", "-r", "team/app"])
            .err()
            .map(|e| e.exit_code());
        assert_eq!(error, Some(2));
        let error = parse(&["app:v1", "--platform", "x", "--all-platforms"]).err();
        assert_eq!(error.map(|e| e.exit_code()), Some(2));
    }
}
