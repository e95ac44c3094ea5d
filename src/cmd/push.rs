//! `push`: cache or archive to registry, and the older one-shot form
//! `docker-image-pusher -r URL -f FILE -u USER -p PASS` that existing scripts use.

use std::path::Path;

use lexopt::{Arg, Parser};

use crate::archive::Input;
use crate::args::{self, Flag, Globals, PROGRESS_HELP, REGISTRY_HELP, TRANSFER_HELP, UPLOAD_HELP};
use crate::error::{Error, Result};

use super::output::print_help;
use super::remote::target_reference;
use super::seed::SeedArgs;
use super::upload::{UploadFlags, Uploads, looks_like_a_file, report_upload};

const COMMAND: &str = "docker-image-pusher push";

/// The synopsis and options.
pub const USAGE: &str = "\
Copy an image from the cache or from a docker save archive to a registry.

Usage: docker-image-pusher push [OPTIONS] SOURCE TARGET
       docker-image-pusher push [OPTIONS] -s SOURCE -r NAME -t TAG [--registry URL]
       docker-image-pusher -r URL -f FILE [-u USER -p PASSWORD] [-t SECONDS] [OPTIONS]

Arguments:
  SOURCE  an archive file (plain or gzip, - for standard input) or a cached image
  TARGET  [registry/]repository[:tag], or http[s]://registry/repository[:tag]

Options:
  -f, --file FILE                   the source, given as a flag
  -s, --source SOURCE               the same
  -r, --repository-url URL          the target, given as a flag (with -t: the repository NAME)
      --registry URL                registry for --repository [default: https://registry-1.docker.io]
      --repository NAME             repository, with --reference
  -t, --reference TAG               tag, with --repository; in the one-shot form (no command
                                    word), -t is --timeout SECONDS
      --image NAME|ID               which image of an archive that holds several: a name,
                                    or sha256:ID (or an ID prefix) for an unnamed one
      --platform OS/ARCH[/VARIANT]  which image of a multi-platform index [default: this host's]
                                    [default: this host's, else the first in the archive]
      --all-platforms               push an index and every image it lists
  -n, --dry-run                     show what would be uploaded; send nothing";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = &[UPLOAD_HELP, REGISTRY_HELP, TRANSFER_HELP, PROGRESS_HELP];

/// The long help.
pub const DETAILS: &str = "

Blobs go first (each checked with HEAD and skipped when present), the manifest last.
From an archive file, layers stream straight from the tar to the registry. A docker save
layer is an uncompressed tar: by default it is gzipped on the way, as docker push does
(level 2: twice as fast as 6 for about 7 % more bytes; on a slow link, try 6 or 9), and
its compressed digest is remembered in the cache so the next push of it is a HEAD.
With --compress none it is pushed as it is, under an OCI manifest. The config is never
changed, so the image ID stays the same.

Examples:
  docker-image-pusher push app.tar registry.example.com/team/app:v1
  docker-image-pusher push nginx:1.27 127.0.0.1:5000/mirror/nginx:1.27
  docker save app:v1 | docker-image-pusher push - registry.example.com/team/app:v1
  docker-image-pusher -r https://registry.example.com/team/app:v1 -f app.tar -u ci -p \"$TOKEN\"";

/// Runs `push` on the rest of the command line; `first` is a flag already read (the
/// one-shot form, recognised by the dispatcher).
pub fn run(parser: &mut Parser, mut globals: Globals, first: Option<Flag>) -> Result<()> {
    let mut flags = UploadFlags::from_env()?;
    let mut seed_args = SeedArgs::default();
    let (mut source, mut target, mut image) = (None, None, None);
    // `-r`: the repository name beside `-t`, the target URL otherwise; known at the end.
    let mut short_r = Vec::new();
    let one_shot = first.is_some();
    let mut pending = first;
    loop {
        let groups: &mut [&mut dyn args::FlagGroup] =
            &mut [&mut globals, &mut flags, &mut seed_args];
        let flag = match pending.take() {
            Some(flag) => match args::unclaimed(flag, parser, groups)? {
                Some(flag) => flag,
                None => continue,
            },
            None => match args::next(parser, groups, COMMAND)? {
                Some(flag) => flag,
                None => break,
            },
        };
        match flag.as_arg() {
            Arg::Short('h') => return print_help(USAGE, GROUPS, DETAILS, false),
            Arg::Long("help") => return print_help(USAGE, GROUPS, DETAILS, true),
            Arg::Short('f' | 's') | Arg::Long("file") | Arg::Long("source") => {
                one(&mut source, args::value(parser, "--file")?, "source")?
            }
            Arg::Short('t') if one_shot => flags.registry.set_timeout(args::number(parser, "-t")?),
            Arg::Short('t') => seed_args.set_reference(args::value(parser, "-t")?),
            Arg::Short('r') => short_r.push(args::value(parser, "-r")?),
            Arg::Long("repository-url") => one(
                &mut target,
                args::value(parser, "--repository-url")?,
                "target",
            )?,
            Arg::Long("image") => image = Some(args::image_query(parser)?),
            Arg::Value(value) if one_shot => return Err(stray_in_one_shot(&value)),
            Arg::Value(value) if source.is_none() => source = Some(args::utf8(value, "SOURCE")?),
            Arg::Value(value) if target.is_none() => target = Some(args::utf8(value, "TARGET")?),
            other => return Err(args::unexpected(other, COMMAND)),
        }
    }
    for value in short_r {
        match seed_args.has_reference() && !one_shot {
            true => seed_args.set_repository(value),
            false => one(&mut target, value, "target")?,
        }
    }
    let source =
        source.ok_or_else(|| Error::Usage(format!("no source given; see '{COMMAND} --help'")))?;
    let from_archive = source == "-" || Path::new(&source).is_file();
    if !from_archive {
        refuse_swapped(&source, target.as_deref())?;
    }
    let (scheme, target) = seed_args.choose(target, ("TARGET", COMMAND), target_reference)?;
    if let Some(caution) = seed_args.caution() {
        globals.progress().warn(caution);
    }
    if !from_archive {
        check_cached_source(&source, image.is_some())?;
    }

    // Everything local is checked before the network: the archive opened and its image
    // picked, or the cached image found.
    let uploads = Uploads::new(&globals, &flags)?;
    let board = uploads.run.board();
    let summary = if from_archive {
        let input = if source == "-" {
            Input::Stdin
        } else {
            Input::Path(source.clone().into())
        };
        let session = uploads.run.cache.begin()?;
        let archive = uploads.open_archive(&session, &input)?;
        let image = archive.select_one(image.as_ref())?;
        let registry = uploads.connect(target.registry(), scheme)?;
        uploads.upload(&archive.source(image), &registry, &target, &board)?
    } else {
        let cached = uploads.run.cache.image(&source).map_err(|e| match e {
            Error::NotFound(message) => {
                Error::NotFound(format!("{message}; nor is \"{source}\" a file"))
            }
            other => other,
        })?;
        let registry = uploads.connect(target.registry(), scheme)?;
        uploads.upload(&cached, &registry, &target, &board)?
    };
    report_upload(&uploads.run, ("push", "pushed"), &target, &summary, &board)
}

/// Refuses a SOURCE that is not a file with a TARGET that is: the two were swapped.
fn refuse_swapped(source: &str, target: Option<&str>) -> Result<()> {
    match target.filter(|target| Path::new(target).is_file()) {
        Some(target) => Err(Error::Usage(format!(
            "TARGET {target} is a file and SOURCE {source} is not: the archive comes first \
             (push {target} {source})"
        ))),
        None => Ok(()),
    }
}

/// Checks a SOURCE that is not a file before the network: a name that looks like a file is
/// one that is missing, and `--image` needs an archive.
fn check_cached_source(source: &str, image: bool) -> Result<()> {
    if looks_like_a_file(source) {
        return Err(Error::BadInput(format!("{source}: no such file")));
    }
    if image {
        return Err(Error::Usage(
            "--image picks an image of an archive; SOURCE is not a file".into(),
        ));
    }
    Ok(())
}

/// The error for a word among the one-shot form's flags: most likely a command whose options
/// were put before its name (`--max-concurrent 2 extract app.tar`).
fn stray_in_one_shot(value: &std::ffi::OsStr) -> Error {
    Error::Usage(format!(
        "unexpected \"{}\": a command's options go after its name \
         ('docker-image-pusher COMMAND [OPTIONS]'), and the one-shot form takes only flags \
         ('docker-image-pusher -r URL -f FILE [OPTIONS]')",
        value.to_string_lossy()
    ))
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
