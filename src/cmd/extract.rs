//! `extract`: archive to cache.

use lexopt::{Arg, Parser};

use crate::archive::{Archive, ImageQuery, Input};
use crate::args::{
    self, Globals, Invocation, PROGRESS_HELP, PlatformArgs, REFERRERS_HELP, ReferrerArgs,
    TRANSFER_HELP, TransferArgs,
};
use crate::error::{Error, Result};
use crate::manifest::Platforms;
use crate::progress::{Progress, count, human_bytes};
use crate::reference::Reference;
use crate::transfer::{self, ImageCopy, Options, ReferrerPolicy, Stored, Summary};

use crate::run::context::RunContext;
use crate::run::output::print_help;
use crate::run::upload::referrers_said;

const COMMAND: &str = "docker-image-pusher extract";

/// The synopsis and options.
pub const USAGE: &str = "\
Store the images of a docker save or OCI archive, or of an OCI layout folder, in the cache.

Usage: docker-image-pusher extract [OPTIONS] FILE

Arguments:
  FILE  the archive, plain or gzip-compressed; - reads standard input; an OCI layout
        folder (DIR, or DIR:NAME for its image with the ref name NAME)

Options:
  -f, --file FILE                   the archive, given as a flag
      --image NAME|ID               only this image of an archive that holds several: a
                                    name or OCI ref name, or sha256:ID (or an ID prefix)
                                    for an unnamed one
      --tag NAME:TAG                give the image this name too (one saved by ID has none)
      --platform OS/ARCH[/VARIANT]  which image of a multi-platform index [default: this
                                    host's, else the first in the archive];
                                    several, comma-separated: an index of just those
                                    (rewritten, so a new digest)
      --all-platforms               keep an index and every image it lists, when all are
                                    in the archive";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = &[TRANSFER_HELP, REFERRERS_HELP, PROGRESS_HELP];

/// The long help.
pub const DETAILS: &str = "

Reads what 'docker save' writes (the legacy layout and Docker 25+'s OCI layout),
'podman save' and 'skopeo copy ... docker-archive:/oci-archive:' write, and archives of
Docker's containerd image store, and OCI layout folders ('skopeo copy ... oci:DIR:NAME',
'oras cp --to-oci-layout', umoci), read in place: no link in a folder is followed. Every
layer is checked against its digest while it is copied; nothing is added to the cache
unless the whole archive is sound. An image that is already cached is not written again.

An archive with a multi-platform index (docker save of the containerd store, save of an
image pulled with --all-platforms) gives the image for --platform, by default this host's
(or the first one in the archive when it has none), unless --all-platforms keeps the index
whole.

Nothing here talks to a registry: of --concurrency dynamic's rules only throughput decides
(no registry pushes back, and reading an archive has no round trips), and --limit-rate caps
how fast the archive is read.

An image saved by ID has no name: without --tag it is cached under its image ID
(sha256:...), which list shows and other commands accept.

Examples:
  docker-image-pusher extract app.tar
  docker save app:v1 | gzip | docker-image-pusher extract -
  docker-image-pusher extract bundle.tar --image app/web:v2
  docker-image-pusher extract ./layout:v1
  docker-image-pusher extract by-id.tar --tag registry.example.com/team/app:v1";

/// What the command line of `extract` says, checked, before anything is opened.
pub struct ExtractArgs {
    pub globals: Globals,
    pub transfer: TransferArgs,
    pub platforms: Platforms,
    /// The archive.
    pub input: Input,
    /// Which images of it (`--image`; all without).
    pub image: Option<ImageQuery>,
    /// The name to give the image (`--tag`).
    pub tag: Option<Reference>,
    /// Which referrers go with the images (none with `--no-referrers`).
    pub referrers: Option<ReferrerPolicy>,
}

impl ExtractArgs {
    /// Reads the rest of the command line.
    pub fn parse(parser: &mut Parser, mut globals: Globals) -> Result<Invocation<ExtractArgs>> {
        let mut transfer = TransferArgs::from_env(&globals.env)?;
        let (mut file, mut image, mut tag) = (None, None, None);
        let mut platform = PlatformArgs::default();
        let mut referrers = ReferrerArgs::default();
        let groups: &mut [&mut dyn args::FlagGroup] =
            &mut [&mut globals, &mut transfer, &mut platform, &mut referrers];
        while let Some(flag) = args::next(parser, groups, COMMAND)? {
            match flag.as_arg() {
                Arg::Short('h') => return Ok(Invocation::Help { long: false }),
                Arg::Long("help") => return Ok(Invocation::Help { long: true }),
                Arg::Short('f') | Arg::Long("file") => {
                    one_file(&mut file, args::value(parser, "--file")?)?
                }
                Arg::Long("image") => image = Some(args::image_query(parser)?),
                Arg::Long("tag") => tag = Some(reference(parser, "--tag")?),
                Arg::Value(value) => one_file(&mut file, args::utf8(value, "FILE")?)?,
                other => return Err(args::unexpected(other, COMMAND)),
            }
        }
        let file =
            file.ok_or_else(|| Error::Usage(format!("no archive given; see '{COMMAND} --help'")))?;
        Ok(Invocation::Run(ExtractArgs {
            input: match file.as_str() {
                "-" => Input::Stdin,
                _ => Input::Path(file.into()),
            },
            platforms: platform.choice(Platforms::Host)?,
            referrers: referrers.policy()?,
            globals,
            transfer,
            image,
            tag,
        }))
    }
}

/// Runs `extract` on the rest of the command line.
pub fn run(parser: &mut Parser, globals: Globals) -> Result<()> {
    let ExtractArgs {
        globals,
        transfer,
        platforms,
        input,
        image,
        tag,
        referrers,
    } = match ExtractArgs::parse(parser, globals)? {
        Invocation::Help { long } => return print_help(USAGE, GROUPS, DETAILS, long),
        Invocation::Run(extract) => extract,
    };
    let run = RunContext::new(&globals, &transfer)?;
    let progress = run.progress;
    let board = run.board();
    let session = run.cache.begin()?;
    let archive = Archive::open(&input, session.staging_dir())?;
    let selected = archive.select(image.as_ref())?;
    if tag.is_some() && selected.len() > 1 {
        return Err(Error::Usage(format!(
            "--tag names one image, but {} holds {}; pick one with --image",
            input.describe(),
            selected.len()
        )));
    }
    let sources: Vec<_> = selected.iter().map(|image| archive.source(image)).collect();
    let copies: Vec<ImageCopy<'_>> = (selected.iter().zip(&sources))
        .map(|(image, source)| ImageCopy {
            platforms: &platforms,
            source,
            names: image.names.iter().chain(&tag).cloned().collect(),
        })
        .collect();
    let destination = session.destination(format!("archive:{}", input.describe()));
    let options = Options {
        referrers: referrers.as_ref(),
        ..run.options(Some(&board), 1)
    };
    let summary = transfer::copy(&copies, &destination, options, &progress)?;
    let names: Vec<String> = (selected.iter())
        .flat_map(|image| image.names.iter().map(Reference::to_string))
        .collect();
    if !run.json() {
        say_stored(&summary, &progress);
    }
    run.finish(("extract", &names), &summary, &board, |took| {
        format!(
            "extracted {} from {}: {} copied ({}), {} already in the cache{}{took}",
            count(summary.outcomes.len(), "image"),
            input.describe(),
            count(summary.blobs_copied, "blob"),
            human_bytes(summary.bytes_copied),
            summary.blobs_present,
            referrers_said(summary.referrers)
        )
    })
}

/// Records the archive, refusing a second one.
fn one_file(file: &mut Option<String>, given: String) -> Result<()> {
    if let Some(first) = file {
        return Err(Error::Usage(format!(
            "one archive at a time: got {first} and {given}; see '{COMMAND} --help'"
        )));
    }
    *file = Some(given);
    Ok(())
}

fn reference(parser: &mut Parser, flag: &str) -> Result<Reference> {
    Reference::parse(&args::value(parser, flag)?).map_err(|e| Error::Usage(format!("{flag}: {e}")))
}

/// Says what was stored under each name of each image.
fn say_stored(summary: &Summary, progress: &Progress) {
    for outcome in &summary.outcomes {
        let layers = count(outcome.layers, "layer");
        for (name, stored) in &outcome.stored {
            let what = match name {
                Some(name) => name.to_string(),
                None => {
                    let id = &outcome.id;
                    progress.warn(format_args!(
                        "the image has no name; it is cached as {id} (name it with --tag NAME:TAG)"
                    ));
                    id.to_string()
                }
            };
            let short = outcome.manifest.short();
            match stored {
                Stored::New => {
                    progress.info(format_args!("cached {what} ({layers}, manifest {short})"))
                }
                Stored::Updated => {
                    progress.info(format_args!("updated {what} ({layers}, manifest {short})"))
                }
                Stored::Unchanged => progress.info(format_args!(
                    "{what} is already cached (manifest {short}); nothing written"
                )),
            }
        }
    }
}
