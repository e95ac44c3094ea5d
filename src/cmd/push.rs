//! `push`: cache or archive to registry, and the older one-shot form
//! `docker-image-pusher -r URL -f FILE -u USER -p PASS` that existing scripts use.

use std::path::Path;

use lexopt::{Arg, Parser};

use crate::archive::{Archive, ArchiveImage, Input};
use crate::args::{self, Flag, Globals, REGISTRY_HELP, RegistryArgs, TRANSFER_HELP, TransferArgs};
use crate::error::{Error, Result};
use crate::progress::{Progress, count, human_bytes};
use crate::reference::Reference;
use crate::registry::{Compress, RegistryDestination, UploadPlan};
use crate::transfer::{self, Job, Options, Source, Summary};

use super::{connect, json_result, print_help, seed_reference, timing};

const COMMAND: &str = "docker-image-pusher push";
/// The gzip level used unless `--compress-level` says otherwise.
const DEFAULT_LEVEL: u32 = 6;
/// Layers larger than this are uploaded in chunks unless `--large-layer-threshold` says otherwise.
const DEFAULT_THRESHOLD: u64 = 1 << 30;
/// The chunk size unless `--chunk-size` says otherwise.
const DEFAULT_CHUNK: u64 = 50 << 20;

/// The synopsis and options.
pub const USAGE: &str = "\
Copy an image from the cache or from a docker save archive to a registry.

Usage: docker-image-pusher push [OPTIONS] SOURCE TARGET
       docker-image-pusher push [OPTIONS] --source SOURCE --repository NAME --reference TAG [--registry URL]
       docker-image-pusher -r URL -f FILE [-u USER -p PASSWORD] [OPTIONS]

Arguments:
  SOURCE  an archive file (plain or gzip, - for standard input) or a cached image
  TARGET  [registry/]repository[:tag], or http[s]://registry/repository[:tag]

Options:
  -f, --file FILE, --source SOURCE  the source, given as a flag
  -r, --repository-url URL          the target, given as a flag
      --registry URL                registry for --repository [default: https://registry-1.docker.io]
      --repository NAME             repository, with --reference
      --reference TAG               tag, with --repository
      --image NAME                  which image of an archive that holds several
      --compress gzip|none          how to push uncompressed layers [default: gzip]
      --compress-level 0-9          gzip level [default: 6]
      --large-layer-threshold SIZE  layers larger than this go in chunks [default: 1G]
                                    [env: DOCKER_PUSHER_LARGE_LAYER_THRESHOLD]
      --chunk-size SIZE             chunk size for large layers; a failure costs at most one
                                    [default: 50M]
      --force-upload                upload every blob, even those the registry has
      --skip-existing               skip blobs the registry has (the default)
                                    [env: DOCKER_PUSHER_SKIP_EXISTING]
  -n, --dry-run                     show what would be uploaded; send nothing";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = &[REGISTRY_HELP, TRANSFER_HELP];

/// The long help.
pub const DETAILS: &str = "

Blobs go first (each checked with HEAD and skipped when present), the manifest last.
From an archive file, layers stream straight from the tar to the registry. A docker save
layer is an uncompressed tar: by default it is gzipped on the way, as docker push does,
and its compressed digest is remembered in the cache so the next push of it is a HEAD.
With --compress none it is pushed as it is, under an OCI manifest. The config is never
changed, so the image ID stays the same.

Examples:
  docker-image-pusher push app.tar registry.example.com/team/app:v1
  docker-image-pusher push nginx:1.27 127.0.0.1:5000/mirror/nginx:1.27
  docker save app:v1 | docker-image-pusher push - registry.example.com/team/app:v1
  docker-image-pusher -r https://registry.example.com/team/app:v1 -f app.tar -u ci -p \"$TOKEN\"";

/// What the command line asked for.
struct PushArgs {
    source: Option<String>,
    target: Option<String>,
    image: Option<Reference>,
    compress: Compress,
    level: u32,
    force: bool,
    dry_run: bool,
    threshold: u64,
    chunk_size: u64,
    seed_registry: Option<String>,
    seed_repository: Option<String>,
    seed_reference: Option<String>,
}

/// Runs `push` on the rest of the command line; `first` is a flag already read (the
/// one-shot form, recognised by the dispatcher).
pub fn run(parser: &mut Parser, mut globals: Globals, first: Option<Flag>) -> Result<()> {
    let mut registry_args = RegistryArgs::from_env()?;
    let mut transfer_args = TransferArgs::from_env()?;
    let mut push = PushArgs {
        source: None,
        target: None,
        image: None,
        compress: Compress::Gzip(DEFAULT_LEVEL),
        level: DEFAULT_LEVEL,
        force: !args::env_bool("DOCKER_PUSHER_SKIP_EXISTING")?.unwrap_or(true),
        dry_run: false,
        threshold: args::env_size("DOCKER_PUSHER_LARGE_LAYER_THRESHOLD")?
            .unwrap_or(DEFAULT_THRESHOLD),
        chunk_size: DEFAULT_CHUNK,
        seed_registry: None,
        seed_repository: None,
        seed_reference: None,
    };
    let mut pending = match first {
        Some(flag) => args::unclaimed(
            flag,
            parser,
            &mut [&mut globals, &mut registry_args, &mut transfer_args],
        )?,
        None => None,
    };
    loop {
        let flag = match pending.take() {
            Some(flag) => flag,
            None => match args::next(
                parser,
                &mut [&mut globals, &mut registry_args, &mut transfer_args],
                COMMAND,
            )? {
                Some(flag) => flag,
                None => break,
            },
        };
        match flag.as_arg() {
            Arg::Short('h') => return print_help(USAGE, GROUPS, DETAILS, false),
            Arg::Long("help") => return print_help(USAGE, GROUPS, DETAILS, true),
            Arg::Short('f') | Arg::Long("file") | Arg::Long("source") => {
                one(&mut push.source, args::value(parser, "--file")?, "source")?
            }
            Arg::Short('r') | Arg::Long("repository-url") => one(
                &mut push.target,
                args::value(parser, "--repository-url")?,
                "target",
            )?,
            Arg::Long("registry") => push.seed_registry = Some(args::value(parser, "--registry")?),
            Arg::Long("repository") => {
                push.seed_repository = Some(args::value(parser, "--repository")?)
            }
            Arg::Long("reference") => {
                push.seed_reference = Some(args::value(parser, "--reference")?)
            }
            Arg::Long("image") => {
                let text = args::value(parser, "--image")?;
                push.image = Some(
                    Reference::parse(&text).map_err(|e| Error::Usage(format!("--image: {e}")))?,
                );
            }
            Arg::Long("compress") => {
                push.compress = match args::value(parser, "--compress")?.as_str() {
                    "gzip" => Compress::Gzip(push.level),
                    "none" => Compress::None,
                    other => {
                        return Err(Error::Usage(format!(
                            "--compress {other:?}: expected gzip or none"
                        )));
                    }
                }
            }
            Arg::Long("compress-level") => {
                push.level = args::number(parser, "--compress-level")?;
                if push.level > 9 {
                    return Err(Error::Usage(format!(
                        "--compress-level {}: expected 0 to 9",
                        push.level
                    )));
                }
            }
            Arg::Long("large-layer-threshold") => {
                push.threshold = args::size(parser, "--large-layer-threshold")?
            }
            Arg::Long("chunk-size") => {
                push.chunk_size = args::size(parser, "--chunk-size")?;
                if push.chunk_size == 0 {
                    return Err(Error::Usage("--chunk-size must be more than 0".into()));
                }
            }
            Arg::Long("force-upload") => push.force = true,
            Arg::Long("skip-existing") => push.force = false,
            Arg::Short('n') | Arg::Long("dry-run") => push.dry_run = true,
            Arg::Value(value) if push.source.is_none() => {
                push.source = Some(args::utf8(value, "SOURCE")?)
            }
            Arg::Value(value) if push.target.is_none() => {
                push.target = Some(args::utf8(value, "TARGET")?)
            }
            other => return Err(args::unexpected(other, COMMAND)),
        }
    }
    if let Compress::Gzip(_) = push.compress {
        push.compress = Compress::Gzip(push.level);
    }
    execute(push, &globals, &registry_args, &transfer_args)
}

/// Records the source or target, refusing a second one.
fn one(slot: &mut Option<String>, given: String, what: &str) -> Result<()> {
    if let Some(first) = slot {
        return Err(Error::Usage(format!(
            "one {what} at a time: got {first} and {given}; see '{COMMAND} --help'"
        )));
    }
    *slot = Some(given);
    Ok(())
}

fn execute(
    push: PushArgs,
    globals: &Globals,
    registry_args: &RegistryArgs,
    transfer_args: &TransferArgs,
) -> Result<()> {
    let source = push
        .source
        .ok_or_else(|| Error::Usage(format!("no source given; see '{COMMAND} --help'")))?;
    let (scheme, target) = match (push.target, push.seed_repository) {
        (Some(target), None) => {
            Reference::parse_url(&target).map_err(|e| Error::Usage(format!("TARGET: {e}")))?
        }
        (None, Some(repository)) => seed_reference(
            push.seed_registry.as_deref(),
            &repository,
            push.seed_reference.as_deref(),
        )?,
        (Some(_), Some(_)) => {
            return Err(Error::Usage(format!(
                "give TARGET or --repository, not both; see '{COMMAND} --help'"
            )));
        }
        (None, None) => {
            return Err(Error::Usage(format!(
                "no target given; see '{COMMAND} --help'"
            )));
        }
    };
    if target.digest().is_some() {
        return Err(Error::Usage(format!(
            "TARGET {target}: push to a tag, not a digest"
        )));
    }
    let progress = globals.progress();
    let limit = transfer_args.rate_limit();
    let board = transfer_args.board(globals.verbosity);
    let governor = transfer_args.governor()?;
    let cache = globals.cache();
    let (registry, options) = connect(registry_args, target.registry(), scheme, progress)?;
    let plan = UploadPlan {
        threshold: push.threshold,
        chunk_size: push.chunk_size,
        attempts: options.attempts,
    };
    let destination = RegistryDestination::new(&registry, &target, push.compress, plan);
    let transfer_options = Options {
        workers: transfer_args.workers(),
        limit: limit.as_ref(),
        board: Some(&board),
        governor: governor.as_ref(),
        force: push.force,
        dry_run: push.dry_run,
        attempts: options.attempts,
        memo: Some(&cache),
    };
    let names = vec![target.clone()];

    let summary = if source == "-" || Path::new(&source).is_file() {
        let input = if source == "-" {
            Input::Stdin
        } else {
            Input::Path(source.clone().into())
        };
        let session = cache.begin()?;
        let archive = Archive::open(&input, session.staging_dir())?;
        let image = pick(&archive, push.image.as_ref(), &input)?;
        let archive_source = archive.source(image);
        copy_one(
            &archive_source,
            names,
            &destination,
            transfer_options,
            &progress,
        )?
    } else {
        if push.image.is_some() {
            return Err(Error::Usage(
                "--image picks an image of an archive; SOURCE is not a file".into(),
            ));
        }
        let cached = cache.image(&source).map_err(|e| match e {
            Error::NotFound(message) => {
                Error::NotFound(format!("{message}; nor is \"{source}\" a file"))
            }
            other => other,
        })?;
        copy_one(&cached, names, &destination, transfer_options, &progress)?
    };
    if transfer_args.json() {
        json_result("push", &[target.to_string()], &summary, &board);
        return Ok(());
    }
    let took = timing(&summary, &board);
    let blobs = count(summary.blobs_copied, "blob");
    let size = human_bytes(summary.bytes_copied);
    let (present, mounted) = (summary.blobs_present, summary.blobs_mounted);
    match summary.outcomes.first() {
        None => progress.info(format_args!(
            "would push {target}: {blobs} to upload ({size}), {mounted} to mount, {present} already there"
        )),
        Some(outcome) => progress.info(format_args!(
            "pushed {target} (manifest {}): {blobs} uploaded ({size}), {mounted} mounted, {present} already there{took}",
            outcome.manifest
        )),
    }
    Ok(())
}

fn copy_one(
    source: &dyn Source,
    names: Vec<Reference>,
    destination: &RegistryDestination<'_>,
    options: Options<'_>,
    progress: &Progress,
) -> Result<Summary> {
    transfer::copy(&[Job { source, names }], destination, options, progress)
}

/// The one image of the archive to push: the only one, or the one `--image` names.
fn pick<'a>(
    archive: &'a Archive,
    wanted: Option<&Reference>,
    input: &Input,
) -> Result<&'a ArchiveImage> {
    let images = archive.images();
    let found: Vec<&ArchiveImage> = match wanted {
        Some(wanted) => images
            .iter()
            .filter(|image| image.names.contains(wanted))
            .collect(),
        None => images.iter().collect(),
    };
    let names = || {
        let names: Vec<String> = images
            .iter()
            .flat_map(|i| i.names.iter().map(Reference::to_string))
            .collect();
        names.join(", ")
    };
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::NotFound(format!(
            "{}: no image {} in it; it holds {}",
            input.describe(),
            wanted.map(Reference::to_string).unwrap_or_default(),
            names()
        ))),
        _ => Err(Error::Usage(format!(
            "{} holds {} images ({}); pick one with --image",
            input.describe(),
            found.len(),
            names()
        ))),
    }
}
