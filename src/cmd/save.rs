//! `save`: cache to an archive that `docker load` accepts, or (`--layout`) to an OCI image
//! layout folder, added to over several runs.

use std::io::IsTerminal;
use std::path::Path;

use lexopt::{Arg, Parser};

use crate::archive::{LayoutFolder, write_parts, write_whole};
use crate::args::{
    self, FlagGroup, Globals, Invocation, PROGRESS_HELP, REFERRERS_HELP, TransferArgs,
    WRITTEN_HELP, Written, WrittenArgs,
};
use crate::cache::CachedImage;
use crate::error::{Error, Result};
use crate::manifest::media_type;
use crate::progress::{Board, Progress, count, human_bytes};
use crate::run::archive::{Taken, cached_images, copy_cached, write_archive};
use crate::run::context::RunContext;
use crate::run::output::print_help;
use crate::run::upload::referrers_said;
use crate::transfer::{Source, Summary};

const COMMAND: &str = "docker-image-pusher save";

/// The synopsis and options.
pub const USAGE: &str = "\
Write cached images to one archive that docker load accepts, or to an OCI image
layout folder.

Usage: docker-image-pusher save [OPTIONS] IMAGE... -o FILE
       docker-image-pusher save [OPTIONS] IMAGE... --layout -o DIR

Arguments:
  IMAGE  a cached image: full or unambiguous short name, or image ID

Options:
  -o, --output FILE  the archive to write, in a folder that exists; - writes to
                     standard output; DIR/ (a trailing slash) means --layout
      --layout       write an OCI image layout folder DIR (made if missing, in a
                     folder that exists), or add the images to the layout there";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = &[WRITTEN_HELP, REFERRERS_HELP, PROGRESS_HELP];

/// The long help.
pub const DETAILS: &str = "

The archive holds a legacy manifest.json (Config, RepoTags, Layers) and an OCI layout
(oci-layout, index.json with io.containerd.image.name and org.opencontainers.image.ref.name,
blobs/sha256/...): docker load (old and new), podman load, skopeo and extract all read it.
Each blob is written once, however many images share it, and keeps its bytes; everything
streams, so memory stays flat. An image cached with --all-platforms keeps its index (and
manifest.json lists this host's platform; extract --all-platforms takes it back whole).
Every blob is checked against its digest as it is written, and a file is written whole or
not at all (as a new temporary file beside it, then renamed; a split archive's parts as
FILE.NNN.partial). The images' cached referrers (signatures, SBOMs, attestations) go into
the archive too: their manifests and blobs under blobs/sha256/, listed not in manifest.json
or index.json (so loaders see only the images) but in docker-image-pusher-referrers.json,
which extract and push read (--no-referrers leaves them).

With --layout (or -o DIR/) the same layout is written as a folder: oci-layout, index.json
naming each image by its full name (io.containerd.image.name, and the ref name skopeo
reads: oci:DIR:example.com/app:v1), blobs/sha256/<hex>, and the referrers listing; skopeo
and umoci read it, as any reader of OCI layouts (they take OCI manifests only: an image in
Docker's format keeps its bytes and digest, so they skip it). A layout already there is
added to, as skopeo copy ... oci:DIR:NAME does: its entries stay, but one of the same name
is replaced; a blob it holds is never written again (it must be a file of the right size,
a manifest the same bytes); each new blob is checked as it is written into a temporary
file, then renamed, and index.json is replaced whole, last; a second run adding to the
folder meanwhile waits for the first. A folder that is neither empty nor a layout is
refused.

Examples:
  docker-image-pusher save app:v1 -o app.tar
  docker-image-pusher save app:v1 worker:v1 --gzip -o images.tar.gz
  docker-image-pusher save app:v1 -o - | ssh edge-host docker load
  docker-image-pusher save app:v1 worker:v1 --layout -o images/";

/// What the command line of `save` says, checked, before anything is opened.
pub struct SaveArgs {
    pub globals: Globals,
    /// Its progress flags (an archive is one stream: one blob at a time).
    pub transfer: TransferArgs,
    /// The images, the archive (`-`: standard output), `--gzip`, `--split`.
    pub written: WrittenArgs,
    /// Whether the output is an OCI image layout folder (`--layout`, or `-o DIR/`).
    pub layout: bool,
}

/// `--layout`: the output is an OCI image layout folder.
#[derive(Default)]
struct LayoutFlag(bool);

impl FlagGroup for LayoutFlag {
    fn claim(&mut self, arg: &Arg<'_>, _parser: &mut Parser) -> Result<bool> {
        self.0 |= *arg == Arg::Long("layout");
        Ok(*arg == Arg::Long("layout"))
    }
}

impl SaveArgs {
    /// Reads the rest of the command line.
    pub fn parse(parser: &mut Parser, mut globals: Globals) -> Result<Invocation<SaveArgs>> {
        let mut written = Written::default();
        let mut transfer = TransferArgs::one_stream();
        let mut layout = LayoutFlag::default();
        let groups: &mut [&mut dyn FlagGroup] =
            &mut [&mut globals, &mut transfer.shown, &mut written, &mut layout];
        // Every flag but the help is some group's: anything left ends the parse.
        if let Some(flag) = args::next(parser, groups, COMMAND)? {
            return match flag.as_arg() {
                Arg::Short('h') => Ok(Invocation::Help { long: false }),
                Arg::Long("help") => Ok(Invocation::Help { long: true }),
                other => Err(args::unexpected(other, COMMAND)),
            };
        }
        let written = written.checked("archive given (-o FILE)", COMMAND)?;
        let output = &written.output;
        let layout = layout.0 || (output != "-" && output.ends_with('/'));
        if layout && output == "-" {
            return Err(Error::Usage(
                "--layout writes a folder of files: give -o DIR, not -o -".into(),
            ));
        }
        if layout && (written.gzip || written.split.is_some()) {
            return Err(Error::Usage(
                "--gzip and --split are for an archive; a layout folder is neither".into(),
            ));
        }
        if !layout && output != "-" && written.split.is_none() && Path::new(output).is_dir() {
            return Err(Error::Usage(format!(
                "-o {output}: a folder, where an archive is a file; give --layout (or -o \
                 {output}/) to write an OCI image layout folder there"
            )));
        }
        if output == "-" && written.split.is_some() {
            return Err(Error::Usage(
                "--split writes numbered files; give -o FILE, not -o -".into(),
            ));
        }
        if output == "-" && std::io::stdout().is_terminal() {
            return Err(Error::Usage(
                "refusing to write an archive to a terminal; redirect standard output or give -o FILE"
                    .into(),
            ));
        }
        if output == "-" && transfer.json() {
            return Err(Error::Usage(
                "--json prints on standard output, where -o - writes the archive: give -o FILE"
                    .into(),
            ));
        }
        Ok(Invocation::Run(SaveArgs {
            globals,
            transfer,
            written,
            layout,
        }))
    }
}

/// Runs `save` on the rest of the command line.
pub fn run(parser: &mut Parser, globals: Globals) -> Result<()> {
    let SaveArgs {
        globals,
        transfer,
        written,
        layout,
    } = match SaveArgs::parse(parser, globals)? {
        Invocation::Help { long } => return print_help(USAGE, GROUPS, DETAILS, long),
        Invocation::Run(save) => save,
    };
    let run = RunContext::new(&globals, &transfer)?;
    let cached = cached_images(&run.cache, &written.images)?;
    let board = run.board();
    let shown = (&board, &run.progress);
    let (output, gzip) = (&written.output, written.gzip);
    let taken = (&cached[..], None, written.referrers.as_ref());
    let summary = match (output.as_str(), written.split) {
        (dir, _) if layout => write_layout(Path::new(dir), taken, shown)?,
        ("-", _) => write_archive(std::io::stdout(), gzip, taken, shown)?.summary,
        (path, None) => write_whole(Path::new(path), |file| {
            write_archive(file, gzip, taken, shown).map(|archived| archived.summary)
        })?,
        (path, Some(limit)) => {
            let (summary, parts) = write_parts(Path::new(path), limit, |out| {
                write_archive(out, gzip, taken, shown).map(|archived| archived.summary)
            })?;
            run.progress.info(format_args!(
                "{path} is written as {}: {}",
                count(parts.len(), "part"),
                (parts.iter())
                    .map(|part| part.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            summary
        }
    };
    let names: Vec<String> = cached.iter().map(|image| image.key.clone()).collect();
    run.finish(("save", &names), &summary, &board, |took| {
        format!(
            "saved {} to {output}: {} ({}){}{took}",
            count(cached.len(), "image"),
            count(summary.blobs_copied, "blob"),
            human_bytes(summary.bytes_copied),
            referrers_said(summary.referrers),
        )
    })
}

/// Copies the images (and the referrers the policy takes) into the layout folder `dir`,
/// adding them to what it holds, through the copy loop, showing progress on `board`.
fn write_layout(
    dir: &Path,
    (images, _, referrers): Taken<'_>,
    (board, progress): (&Board, &Progress),
) -> Result<Summary> {
    let folder = LayoutFolder::open(dir, progress)?;
    warn_of_docker_manifests(images, progress)?;
    let summary = copy_cached(images, &folder, referrers, (board, progress))?;
    folder.finish()?;
    Ok(summary)
}

/// Warns of images whose manifest is in Docker's format (as `docker save` and Docker's pushes
/// make them): the folder keeps their bytes and digests, as crane and regctl do, but skopeo's
/// `oci:` and umoci look only for OCI media types and do not see them.
fn warn_of_docker_manifests(images: &[CachedImage<'_>], progress: &Progress) -> Result<()> {
    for image in images {
        let manifest = image.manifest()?;
        if [media_type::DOCKER_MANIFEST, media_type::DOCKER_LIST].contains(&&*manifest.media_type) {
            progress.warn(format_args!(
                "{}: its manifest is Docker's format, kept as it is (digest {}): crane and \
                 regctl read it from the folder, skopeo's oci: and umoci skip it",
                image.key, manifest.digest
            ));
        }
    }
    Ok(())
}
