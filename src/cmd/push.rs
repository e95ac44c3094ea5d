//! `push`: cache or archive to registry, and the older one-shot form
//! `docker-image-pusher -r URL -f FILE -u USER -p PASS` that existing scripts use.

use std::path::Path;

use lexopt::{Arg, Parser};

use crate::archive::{ImageQuery, Input, is_archive_path};
use crate::args::{self, Flag, Globals, Invocation, UploadFlags};
use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::reference::Reference;

use crate::args::SeedArgs;
use crate::run::delta;
use crate::run::output::print_help;
use crate::run::remote::target_reference;
use crate::run::upload::{Uploads, looks_like_a_file, report_upload, write_digestfile};

const COMMAND: &str = "docker-image-pusher push";

/// The synopsis and options.
pub const USAGE: &str = "\
Copy an image from the cache, a docker save archive or an OCI layout folder to a registry.

Usage: docker-image-pusher push [OPTIONS] SOURCE TARGET
       docker-image-pusher push [OPTIONS] -s SOURCE -r NAME -t TAG [--registry URL]
       docker-image-pusher -r URL -f FILE [-u USER -p PASSWORD] [-t SECONDS] [OPTIONS]

Arguments:
  SOURCE  an archive file (plain or gzip, - for standard input), an OCI layout folder
          (DIR, or DIR:NAME for its image with the ref name NAME) or a cached image
  TARGET  [registry/]repository[:tag], or http[s]://registry/repository[:tag]

Options:
  -f, --file FILE                   the source, given as a flag
  -s, --source SOURCE               the same
  -r, --repository-url URL          the target, given as a flag (with -t: the repository NAME)
      --registry URL                registry for --repository [default: https://registry-1.docker.io]
      --repository NAME             repository, with --reference
  -t, --reference TAG               tag, with --repository; in the one-shot form (no command
                                    word), -t is --timeout SECONDS
      --image NAME|ID               which image of an archive that holds several: a name
                                    or OCI ref name, or sha256:ID (or an ID prefix) for an
                                    unnamed one
      --platform OS/ARCH[/VARIANT]  only this image of a multi-platform index, as it is;
                                    several, comma-separated: an index of just those
                                    (rewritten, so a new digest)
      --all-platforms               an index whole, byte for byte, with every image it
                                    lists [default]
      --digestfile FILE             write the manifest digest pushed to FILE
  -n, --dry-run                     show what would be uploaded; send nothing";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = args::UPLOAD_GROUPS;

/// The long help.
pub const DETAILS: &str = "

A bare SOURCE that is both a file here and a cached image is refused: ./NAME picks the
file, the image's full name or ID (sha256:...) the cached one; -f FILE is always a file.

A multi-platform index (a cached image pulled with --all-platforms, an archive that holds
every image its index lists) is pushed whole by default, byte for byte; --platform narrows
it to one image. An archive that holds only part of its index, as docker save writes it,
pushes what it holds (this host's image, else the first), and says so.

Blobs go first (each checked with HEAD and skipped when present), the manifest last.
From an archive file, layers stream straight from the tar to the registry; from a layout
folder, straight from its blobs (no link in it is followed). A docker save
layer is an uncompressed tar: by default it is gzipped on the way, as docker push does
(level 2: twice as fast as 6 for about 7 % more bytes; on a slow link, try 6 or 9), and
its compressed digest is remembered in the cache so the next push of it is a HEAD
(and, to a registry without it, one PUT carrying that digest: a round trip less).
A layer the registry holds in a form made at another level keeps it, and the push says
so; --force-upload compresses it again at --compress-level.
With --compress none it is pushed as it is, under an OCI manifest. The config is never
changed, so the image ID stays the same.

Examples:
  docker-image-pusher push app.tar registry.example.com/team/app:v1
  docker-image-pusher push nginx:1.27 127.0.0.1:5000/mirror/nginx:1.27
  docker save app:v1 | docker-image-pusher push - registry.example.com/team/app:v1
  docker-image-pusher -r https://registry.example.com/team/app:v1 -f app.tar -u ci -p \"$TOKEN\"";

/// What the command line of `push` says, checked, before anything is opened.
pub struct PushArgs {
    pub globals: Globals,
    pub flags: UploadFlags,
    /// An archive (`-`: standard input), or else a cached image.
    pub source: Source,
    /// Where to push, and the scheme a URL gave.
    pub target: (Option<&'static str>, Reference),
    /// Which image of a multi-image archive (`--image`).
    pub image: Option<ImageQuery>,
    /// What to warn of before starting.
    pub caution: Option<&'static str>,
    /// Whether SOURCE, a file, was given as a bare name (not `-f FILE`, not `./` or `/`), so
    /// that a cached image may have that name too.
    pub bare_file: bool,
}

/// What is pushed.
#[derive(Debug, PartialEq)]
pub enum Source {
    /// An archive: a file, or standard input.
    Archive(Input),
    /// An image of the cache, by name or ID.
    Cached(String),
}

impl PushArgs {
    /// Reads the rest of the command line; `first` is a flag already read (the one-shot
    /// form, recognised by the dispatcher).
    pub fn parse(
        parser: &mut Parser,
        mut globals: Globals,
        first: Option<Flag>,
    ) -> Result<Invocation<PushArgs>> {
        let mut flags = UploadFlags::from_env(&globals.env)?;
        let mut seed_args = SeedArgs::default();
        let mut given = Given {
            one_shot: first.is_some(),
            ..Given::default()
        };
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
                Arg::Short('h') => return Ok(Invocation::Help { long: false }),
                Arg::Long("help") => return Ok(Invocation::Help { long: true }),
                Arg::Short('f' | 's') | Arg::Long("file") | Arg::Long("source") => {
                    given.named_file |=
                        matches!(flag.as_arg(), Arg::Short('f') | Arg::Long("file"));
                    one(&mut given.source, args::value(parser, "--file")?, "source")?
                }
                Arg::Short('t') if given.one_shot => {
                    flags.registry.set_timeout(args::number(parser, "-t")?)
                }
                Arg::Short('t') => seed_args.set_reference(args::value(parser, "-t")?),
                Arg::Short('r') => given.short_r.push(args::value(parser, "-r")?),
                Arg::Long("repository-url") => one(
                    &mut given.target,
                    args::value(parser, "--repository-url")?,
                    "target",
                )?,
                Arg::Long("image") => given.image = Some(args::image_query(parser)?),
                Arg::Value(value) if given.one_shot => return Err(stray_in_one_shot(&value)),
                Arg::Value(value) if given.source.is_none() => {
                    given.source = Some(args::utf8(value, "SOURCE")?)
                }
                Arg::Value(value) if given.target.is_none() => {
                    given.target = Some(args::utf8(value, "TARGET")?)
                }
                other => return Err(args::unexpected(other, COMMAND)),
            }
        }
        given
            .checked(globals, flags, seed_args)
            .map(Invocation::Run)
    }
}

/// What `push`'s command line gave, before it is checked.
#[derive(Default)]
struct Given {
    source: Option<String>,
    target: Option<String>,
    image: Option<ImageQuery>,
    /// Whether the source came as `-f`/`--file`.
    named_file: bool,
    /// `-r`: the repository name beside `-t`, the target URL otherwise; known at the end.
    short_r: Vec<String>,
    /// The one-shot form (no command word): `-t` is the timeout there.
    one_shot: bool,
}

impl Given {
    /// The push these arguments ask for: the source an archive (or layout folder) when one is
    /// there by that name, else a cached image; a mistake in the command line is told before
    /// a file that is not there.
    fn checked(
        mut self,
        globals: Globals,
        flags: UploadFlags,
        mut seed_args: SeedArgs,
    ) -> Result<PushArgs> {
        for value in self.short_r {
            match seed_args.has_reference() && !self.one_shot {
                true => seed_args.set_repository(value),
                false => one(&mut self.target, value, "target")?,
            }
        }
        let source = (self.source)
            .ok_or_else(|| Error::Usage(format!("no source given; see '{COMMAND} --help'")))?;
        let from_archive = source == "-" || is_archive_path(Path::new(&source));
        let bare_file = from_archive && !self.named_file && !source.starts_with(['-', '/', '.']);
        if !from_archive {
            refuse_swapped(&source, self.target.as_deref())?;
        }
        let target = seed_args.choose(self.target, ("TARGET", COMMAND), target_reference)?;
        let source = match source.as_str() {
            "-" => Source::Archive(Input::Stdin),
            path if from_archive => Source::Archive(Input::Path(path.into())),
            _ => {
                check_cached_source(&source, self.image.is_some())?;
                Source::Cached(source)
            }
        };
        Ok(PushArgs {
            target,
            caution: seed_args.caution(),
            globals,
            flags,
            source,
            image: self.image,
            bare_file,
        })
    }
}

/// Runs `push` on the rest of the command line (see [`PushArgs::parse`]).
pub fn run(parser: &mut Parser, globals: Globals, first: Option<Flag>) -> Result<()> {
    let push = match PushArgs::parse(parser, globals, first)? {
        Invocation::Help { long } => return print_help(USAGE, GROUPS, DETAILS, long),
        Invocation::Run(push) => push,
    };
    let (scheme, target) = &push.target;
    if let Some(caution) = push.caution {
        push.globals.progress().warn(caution);
    }
    // Everything local is checked before the network: the archive opened and its image
    // picked, or the cached image found.
    let uploads = Uploads::new(&push.globals, &push.flags)?;
    let board = uploads.run.board();
    let summary = match &push.source {
        Source::Archive(input) => {
            if let (Input::Path(path), true) = (input, push.bare_file) {
                refuse_file_and_image(&uploads.run.cache, path)?;
            }
            let session = uploads.run.cache.begin()?;
            let archive = uploads.open_archive(&session, input)?;
            let image = archive.select_one(push.image.as_ref())?;
            let registry = uploads.connect(target.registry(), *scheme)?;
            let pushes = [(image, target.clone(), &registry)];
            delta::check(&uploads, &archive, &pushes, &|earlier| Ok(earlier.clone()))?;
            uploads.upload(&archive.source(image), &registry, target, &board)?
        }
        Source::Cached(name) => {
            let cached = uploads.run.cache.image(name).map_err(|e| match e {
                Error::NotFound(message) => {
                    Error::NotFound(format!("{message}; nor is \"{name}\" a file"))
                }
                other => other,
            })?;
            let registry = uploads.connect(target.registry(), *scheme)?;
            uploads.upload(&cached, &registry, target, &board)?
        }
    };
    write_digestfile(&push.flags, &summary)?;
    report_upload(&uploads.run, ("push", "pushed"), target, &summary, &board)
}

/// Refuses a bare SOURCE that names both a file (or layout folder) here and an image of the
/// cache: either may be meant, and a file planted in a shared folder under an image's name must
/// not be pushed in its place.
fn refuse_file_and_image(cache: &Cache, path: &Path) -> Result<()> {
    let text = path.display().to_string();
    let Ok(cached) = cache.image(&text) else {
        return Ok(());
    };
    let by_name = match cached.key == text {
        true => String::new(),
        false => format!("{}, or ", cached.key),
    };
    Err(Error::Usage(format!(
        "SOURCE {text} is both a file (or layout folder) here and the cached image {}: write \
         ./{text} for the file, or {by_name}the image's ID (sha256:..., as the list command \
         shows it) for the cached image",
        cached.key
    )))
}

/// Refuses a SOURCE that is not an archive with a TARGET that is (a file or a layout folder):
/// the two were swapped.
fn refuse_swapped(source: &str, target: Option<&str>) -> Result<()> {
    match target.filter(|target| is_archive_path(Path::new(target))) {
        Some(target) => Err(Error::Usage(format!(
            "TARGET {target} is an archive and SOURCE {source} is not: the archive comes first \
             (push {target} {source})"
        ))),
        None => Ok(()),
    }
}

/// Checks a SOURCE that is not a file before the network: a name that looks like a file is
/// one that is missing, and `--image` needs an archive.
fn check_cached_source(source: &str, image: bool) -> Result<()> {
    if looks_like_a_file(source) {
        return Err(Error::NotFound(format!("{source}: no such file")));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `push` arguments (`first`: the one-shot form's first flag, already read).
    fn parse(line: &[&str], first: Option<Flag>) -> Result<PushArgs> {
        let mut parser = Parser::from_args(line.iter().copied());
        match PushArgs::parse(&mut parser, Globals::defaults(), first)? {
            Invocation::Run(push) => Ok(push),
            Invocation::Help { .. } => panic!("help asked for"),
        }
    }

    #[test]
    fn a_cached_image_and_a_target_parse_into_plain_fields() {
        let push = parse(&["app:v1", "registry.example.com/team/app:v2"], None).unwrap();
        assert_eq!(push.source, Source::Cached("app:v1".into()));
        assert_eq!(
            push.target.1.to_string(),
            "registry.example.com/team/app:v2"
        );
        assert_eq!(push.target.0, None);
        assert!(push.caution.is_none());
    }

    #[test]
    fn a_seed_flag_beside_target_is_refused_naming_both() {
        for (line, flags) in [
            (
                &["app.tar", "r.example.com/team/newrepo", "-t", "v11"][..],
                "--reference (-t)",
            ),
            (
                &["app.tar", "r.example.com/team/app", "--repository", "x"][..],
                "--repository",
            ),
        ] {
            let said = parse(line, None)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                said.contains(&format!("give TARGET or {flags}, not both")),
                "{line:?}: {said}"
            );
        }
    }

    #[test]
    fn the_one_shot_form_reads_its_short_flags() {
        let line = [
            "https://registry.example.com/team/app:v1",
            "-f",
            "-",
            "-t",
            "30",
        ];
        let push = parse(&line, Some(Flag::Short('r'))).unwrap();
        assert_eq!(push.source, Source::Archive(Input::Stdin));
        assert_eq!(push.target.0, Some("https"));
        assert_eq!(
            push.target.1.to_string(),
            "registry.example.com/team/app:v1"
        );
    }

    #[test]
    fn the_seed_flags_name_the_target_and_warn_of_latest() {
        let line = [
            "-",
            "--registry",
            "registry.example.com",
            "--repository",
            "team/app",
        ];
        let push = parse(&line, None).unwrap();
        assert_eq!(
            push.target.1.to_string(),
            "registry.example.com/team/app:latest"
        );
        assert!(push.caution.is_some());
    }

    #[test]
    fn help_and_mistakes_are_told_apart() {
        let mut parser = Parser::from_args(["app:v1", "--help"]);
        let help = PushArgs::parse(&mut parser, Globals::defaults(), None).unwrap();
        assert!(matches!(help, Invocation::Help { long: true }));
        let error = parse(&["missing.tar", "registry.example.com/app:v1"], None).err();
        assert_eq!(error.map(|e| e.exit_code()), Some(6), "a missing file");
        let error = parse(&["app:v1", "x", "y"], None).err();
        assert_eq!(error.map(|e| e.exit_code()), Some(2), "a third word");
        let error = parse(&["app:v1", "registry.example.com/app@sha256:00"], None).err();
        assert_eq!(error.map(|e| e.exit_code()), Some(2), "a digest target");
    }
}
