//! `bundle`: cached images, this program and a push script in one folder, ready to carry
//! across an air gap; with `--since`, only what an earlier bundle did not carry; with
//! `--split`, in parts that fit the medium.

mod elf;
mod fetch;
mod folder;
mod record;
mod texts;

use std::fs;
use std::path::{Path, PathBuf};

use lexopt::{Arg, Parser};

use crate::args::{
    self, FlagGroup, Globals, Invocation, PROGRESS_HELP, REFERRERS_HELP, REGISTRY_HELP,
    RegistryArgs, TransferArgs, WRITTEN_HELP, Written, WrittenArgs,
};
use crate::error::{Context, Error, Result};
use crate::progress::{Board, Progress, count, human_bytes};

use crate::run::archive::cached_images;
use crate::run::context::RunContext;
use crate::run::output::print_help;
use crate::run::upload::referrers_said;
use elf::{Program, check_program};
use fetch::fetch_missing;
use folder::{Contents, Filled, fill, make_partial};
use record::Earlier;

const COMMAND: &str = "docker-image-pusher bundle";

/// The synopsis and options.
pub const USAGE: &str = "\
Put images (cached, or fetched into the cache first), this program and a push script in
one folder, ready to carry.

Usage: docker-image-pusher bundle [OPTIONS] IMAGE... -o DIR

Arguments:
  IMAGE  a cached image: full or unambiguous short name, or image ID; a registry image
         the cache does not hold yet is fetched first, whole (every platform)

Options:
  -o, --output DIR   the folder to make (it must not exist; its parent must)
      --binary PATH  the program to put in [default: this one]; give the static build
                     (checked first: an ELF executable, said when it is for another
                     machine or dynamically linked)
      --since OLD    leave out the layers the bundle OLD carried (its folder or its
                     bundle.json): a delta for a registry that received OLD";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = &[WRITTEN_HELP, REFERRERS_HELP, REGISTRY_HELP, PROGRESS_HELP];

/// The long help.
pub const DETAILS: &str = "

The folder holds:
  images.tar           the images, as save writes them (docker load reads it too, unless
                       it is a delta); with --split, images.tar.000, .001, ...
  docker-image-pusher  the program
  push.sh              'push.sh [--check] REGISTRY[/PREFIX] [OPTIONS]' pushes every image
                       there, each under its own repository and tag, as sync --to does; the
                       options go to sync (-u USER --password-stdin, --ca-cert FILE, ...);
                       --check pushes nothing and says what would be pushed and what is
                       missing
  images.list          the list push.sh gives sync
  bundle.json          the images with their manifest digests, their referrers (each with
                       its subject, manifest, cosign tag and blobs), the blobs the archive
                       holds (with sizes) and those it relies on, the bundle it was made
                       --since, and when it was made
  README.txt           what the folder is, in words
  SHA256SUMS           for 'sha256sum -c SHA256SUMS' after the carry
The folder appears whole or not at all: it is made as a new, private (0700) DIR.partial,
then renamed. push.sh checks the program and itself against SHA256SUMS before running (the
images are checked blob by blob as they are pushed), and works in a private cache of its
own (mktemp -d, removed when it ends) unless DOCKER_PUSHER_CACHE_DIR names one. A dynamically linked program only runs where the same C
library is: bundle warns, and --binary takes the static build (scripts/build-static.sh).

With --since OLD (an earlier bundle's folder or its bundle.json; a folder made before
bundles wrote bundle.json is read through its archive), the archive leaves out every layer
OLD held or relied on, and keeps every manifest and config. Such a delta archive is not for
docker load (README.txt says so). Its push.sh pushes to a registry that received OLD: before
any upload it checks with HEAD that every blob left out is there (in the image's repository,
or in one OLD's images went to, to be mounted from); when some are missing, it names them and
the bundle they came with, and exits 6 without pushing a manifest. Deltas chain: a bundle
--since a delta leaves out what that delta relied on too.

The images' cached referrers (signatures, SBOMs, attestations) go into the archive as save
writes them, and push.sh pushes them after their images (--no-referrers leaves them). A
delta leaves out the layers of referrers OLD carried too, so an image signed again since
brings only its new artifacts (its manifests and configs, always kept, are small); the
HEAD check before pushing covers the images' layers, not the referrers' (a referrer layer
missing there fails the push of that referrer).

Examples:
  docker-image-pusher bundle registry.example.com/team/app:v1 -o app-bundle --binary ./dip-static
  docker-image-pusher bundle app:v2 tool:v1 -o week-48 --since week-47 --split 4G
  app-bundle/push.sh mirror.local:5000/edge -u ci --password-stdin < token   (the other side)
  week-48/push.sh --check mirror.local:5000/edge";

/// What the command line of `bundle` says, checked, before anything is opened.
pub struct BundleArgs {
    pub globals: Globals,
    /// Its progress flags (the archive is one stream: one blob at a time).
    pub transfer: TransferArgs,
    /// How to reach the registries of images the cache does not hold yet.
    pub registry: RegistryArgs,
    /// The images, the folder (`-o`), `--gzip`, `--split`.
    pub written: WrittenArgs,
    /// The program to carry (`--binary`; this one without).
    pub binary: Option<PathBuf>,
    /// The bundle this one is made since (`--since`).
    pub since: Option<PathBuf>,
}

impl BundleArgs {
    /// Reads the rest of the command line.
    pub fn parse(parser: &mut Parser, mut globals: Globals) -> Result<Invocation<BundleArgs>> {
        let (mut written, mut binary, mut since) = (Written::default(), None, None);
        let mut transfer = TransferArgs::one_stream();
        let mut registry = RegistryArgs::from_env(&globals.env)?;
        let groups: &mut [&mut dyn FlagGroup] = &mut [
            &mut globals,
            &mut transfer.shown,
            &mut registry,
            &mut written,
        ];
        while let Some(flag) = args::next(parser, groups, COMMAND)? {
            match flag.as_arg() {
                Arg::Short('h') => return Ok(Invocation::Help { long: false }),
                Arg::Long("help") => return Ok(Invocation::Help { long: true }),
                Arg::Long("binary") => {
                    binary = Some(PathBuf::from(args::value(parser, "--binary")?))
                }
                Arg::Long("since") => since = Some(PathBuf::from(args::value(parser, "--since")?)),
                other => return Err(args::unexpected(other, COMMAND)),
            }
        }
        let written = written.checked("folder given (-o DIR)", COMMAND)?;
        let output = PathBuf::from(&written.output);
        if output.exists() {
            return Err(Error::Usage(format!(
                "{} exists; bundle makes a new folder",
                output.display()
            )));
        }
        Ok(Invocation::Run(BundleArgs {
            globals,
            transfer,
            registry,
            written,
            binary,
            since,
        }))
    }
}

/// Runs `bundle` on the rest of the command line.
pub fn run(parser: &mut Parser, globals: Globals) -> Result<()> {
    let BundleArgs {
        globals,
        transfer,
        registry,
        written,
        binary,
        since,
    } = match BundleArgs::parse(parser, globals)? {
        Invocation::Help { long } => return print_help(USAGE, GROUPS, DETAILS, long),
        Invocation::Run(bundle) => bundle,
    };
    let binary = match binary {
        Some(path) => path,
        None => std::env::current_exe().context(|| "finding this program")?,
    };
    let program = check_program(&binary)?;
    let run = RunContext::new(&globals, &transfer)?;
    let progress = run.progress;
    warn_of_program(progress, &binary, &program);
    let registry_options = run.registry_options(&registry)?;
    let referrers = written.referrers.as_ref();
    fetch_missing(&run, &registry_options, &written.images, referrers)?;
    let cached = cached_images(&run.cache, &written.images)?;
    let session = run.cache.begin()?;
    let earlier = (since.as_ref())
        .map(|path| Earlier::read(path, session.staging_dir()))
        .transpose()?;
    let board = run.board();
    let output = PathBuf::from(&written.output);
    let contents = Contents {
        images: &cached,
        binary: &binary,
        gzip: written.gzip,
        split: written.split,
        earlier: earlier.as_ref(),
        referrers: written.referrers.as_ref(),
    };
    let filled = fill_in_place(&output, &contents, (&board, &progress))?;
    if let Some(earlier) = &earlier
        && filled.record.relies_on.is_empty()
    {
        progress.warn(format_args!(
            "{} shares no layer with these images: the bundle is whole",
            earlier.since.given
        ));
    }
    let names: Vec<String> = cached.iter().map(|image| image.key.clone()).collect();
    let summary = &filled.summary;
    run.finish(("bundle", &names), summary, &board, |took| {
        bundled_line(
            &filled,
            cached.len(),
            &binary,
            &output,
            since.as_deref(),
            took,
        )
    })
}

/// The closing line: what went in, what was left out for `--since`, and what to run on the
/// other side.
fn bundled_line(
    filled: &Filled,
    images: usize,
    binary: &Path,
    output: &Path,
    since: Option<&Path>,
    took: &str,
) -> String {
    let (summary, record) = (&filled.summary, &filled.record);
    let relied = match record.relies_on.len() {
        0 => String::new(),
        n => format!(
            ", leaving out {} ({}) that {} carried",
            count(n, "layer"),
            human_bytes(record.relies_on.iter().map(|blob| blob.size).sum()),
            since.map_or(String::new(), |p| p.display().to_string())
        ),
    };
    let parts = match record.archive.len() {
        1 => String::new(),
        n => format!(", the archive in {n} parts"),
    };
    format!(
        "bundled {} ({}, {}{relied}{parts}{}) with {} in {}{took}; on the other side: {}/push.sh REGISTRY[/PREFIX]",
        count(images, "image"),
        count(summary.blobs_copied, "blob"),
        human_bytes(summary.bytes_copied),
        referrers_said(summary.referrers),
        binary.display(),
        output.display(),
        output.display()
    )
}

/// Says what the bundle's program will not do on every machine: run on another
/// architecture, or where the C library it was linked with is missing.
fn warn_of_program(progress: Progress, binary: &Path, program: &Program) {
    if program.is_foreign() {
        progress.warn(format_args!(
            "{} is a program for {}, not for this machine ({}): push.sh runs only on {}",
            binary.display(),
            program.machine,
            std::env::consts::ARCH,
            program.machine
        ));
    }
    if program.dynamic {
        progress.warn(format_args!(
            "{} is dynamically linked: it runs only where the same C library is; give the \
             static build with --binary",
            binary.display()
        ));
    }
}

/// Fills a new private `OUTPUT.partial` folder with the bundle and renames it to `output`
/// once whole; on any failure the partial folder (if still the one made) is removed.
fn fill_in_place(
    output: &Path,
    contents: &Contents<'_>,
    shown: (&Board, &Progress),
) -> Result<Filled> {
    let mut partial = output.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let made = make_partial(&partial)?;
    let filled = fill(&partial, contents, shown).and_then(|filled| {
        made.check(&partial)?;
        fs::rename(&partial, output).context(|| format!("renaming {}", partial.display()))?;
        Ok(filled)
    });
    filled.inspect_err(|_| {
        if made.check(&partial).is_ok() {
            let _ = fs::remove_dir_all(&partial);
        }
    })
}
