//! `save`: cache to an archive that `docker load` accepts.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use lexopt::{Arg, Parser};

use crate::archive::ArchiveDestination;
use crate::args::{self, FlagGroup, Globals, PROGRESS_HELP, Parsed, TransferArgs};
use crate::cache::{Cache, CachedImage};
use crate::digest::COPY_BUFFER;
use crate::error::{Context, Error, Result};
use crate::manifest::Platforms;
use crate::progress::{Board, Progress, count, human_bytes};
use crate::transfer::{self, Job, Options, Summary};
use crate::writeback::WriteBehind;

use super::context::RunContext;
use super::output::print_help;

const COMMAND: &str = "docker-image-pusher save";

/// The synopsis and options.
pub const USAGE: &str = "\
Write cached images to one archive that docker load accepts.

Usage: docker-image-pusher save [OPTIONS] IMAGE... -o FILE

Arguments:
  IMAGE  a cached image: full or unambiguous short name, or image ID

Options:
  -o, --output FILE  the archive to write; - writes to standard output
      --gzip         compress the archive";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = &[PROGRESS_HELP];

/// The long help.
pub const DETAILS: &str = "

The archive holds a legacy manifest.json (Config, RepoTags, Layers) and an OCI layout
(oci-layout, index.json with io.containerd.image.name and org.opencontainers.image.ref.name,
blobs/sha256/...): docker load (old and new), podman load, skopeo and extract all read it.
Each blob is written once, however many images share it, and keeps its bytes; everything
streams, so memory stays flat. An image cached with --all-platforms keeps its index (and
manifest.json lists this host's platform; extract --all-platforms takes it back whole).
Every blob is checked against its digest as it is written, and a file is written whole or
not at all (as FILE.partial, then renamed).

Examples:
  docker-image-pusher save app:v1 -o app.tar
  docker-image-pusher save app:v1 worker:v1 --gzip -o images.tar.gz
  docker-image-pusher save app:v1 -o - | ssh edge-host docker load";

/// What the command line of `save` says, checked, before anything is opened.
pub struct SaveArgs {
    pub globals: Globals,
    /// Its progress flags (an archive is one stream: one blob at a time).
    pub transfer: TransferArgs,
    /// The cached images, as named.
    pub images: Vec<String>,
    /// The archive to write; `-` is standard output.
    pub output: String,
    pub gzip: bool,
}

impl SaveArgs {
    /// Reads the rest of the command line.
    pub fn parse(parser: &mut Parser, mut globals: Globals) -> Result<Parsed<SaveArgs>> {
        let mut written = Written::default();
        let mut transfer = TransferArgs::one_stream();
        let groups: &mut [&mut dyn FlagGroup] =
            &mut [&mut globals, &mut transfer.shown, &mut written];
        // Every flag but the help is some group's: anything left ends the parse.
        if let Some(flag) = args::next(parser, groups, COMMAND)? {
            return match flag.as_arg() {
                Arg::Short('h') => Ok(Parsed::Help { long: false }),
                Arg::Long("help") => Ok(Parsed::Help { long: true }),
                other => Err(args::unexpected(other, COMMAND)),
            };
        }
        let (images, output, gzip) = written.checked("archive given (-o FILE)", COMMAND)?;
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
        Ok(Parsed::Run(SaveArgs {
            globals,
            transfer,
            images,
            output,
            gzip,
        }))
    }
}

/// Runs `save` on the rest of the command line.
pub fn run(parser: &mut Parser, globals: Globals) -> Result<()> {
    let SaveArgs {
        globals,
        transfer,
        images,
        output,
        gzip,
    } = match SaveArgs::parse(parser, globals)? {
        Parsed::Help { long } => return print_help(USAGE, GROUPS, DETAILS, long),
        Parsed::Run(save) => save,
    };
    let run = RunContext::new(&globals, &transfer)?;
    let cached = cached_images(&run.cache, &images)?;
    let board = run.board();
    let shown = (&board, &run.progress);
    let summary = match output.as_str() {
        "-" => write_archive(std::io::stdout(), gzip, &cached, shown)?.0,
        path => write_whole(Path::new(path), |file| {
            write_archive(file, gzip, &cached, shown).map(|(summary, _)| summary)
        })?,
    };
    let names: Vec<String> = cached.iter().map(|image| image.key.clone()).collect();
    run.finish(("save", &names), &summary, &board, |took| {
        format!(
            "saved {} to {output}: {} ({}){took}",
            count(cached.len(), "image"),
            count(summary.blobs_copied, "blob"),
            human_bytes(summary.bytes_copied),
        )
    })
}

/// What `save` and `bundle` both take: the cached images (the words), `-o/--output` (a file,
/// or for `bundle` a folder) and `--gzip`.
#[derive(Default)]
pub struct Written {
    images: Vec<String>,
    output: Option<String>,
    gzip: bool,
}

impl Written {
    /// The images, the output and `--gzip`; a usage error of `command` without an output
    /// (`missing` says what: `archive given (-o FILE)`) or without an image.
    pub fn checked(self, missing: &str, command: &str) -> Result<(Vec<String>, String, bool)> {
        let output = (self.output)
            .ok_or_else(|| Error::Usage(format!("no {missing}; see '{command} --help'")))?;
        if self.images.is_empty() {
            return Err(Error::Usage(format!(
                "no image given; see '{command} --help'"
            )));
        }
        Ok((self.images, output, self.gzip))
    }
}

impl FlagGroup for Written {
    fn claim(&mut self, arg: &Arg<'_>, parser: &mut Parser) -> Result<bool> {
        match arg {
            Arg::Short('o') | Arg::Long("output") => {
                self.output = Some(args::value(parser, "--output")?)
            }
            Arg::Long("gzip") => self.gzip = true,
            Arg::Value(value) => self.images.push(args::utf8(value.clone(), "IMAGE")?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The cached images `queries` name, each once however many names it is given by.
pub fn cached_images<'c>(cache: &'c Cache, queries: &[String]) -> Result<Vec<CachedImage<'c>>> {
    let mut cached = (queries.iter())
        .map(|query| cache.image(query))
        .collect::<Result<Vec<_>>>()?;
    let mut seen = HashSet::new();
    cached.retain(|image| seen.insert(image.key.clone()));
    Ok(cached)
}

/// Writes `path` whole or not at all: through `<path>.partial`, written back as it grows
/// ([`WriteBehind`]), synced, then renamed.
pub fn write_whole<T>(
    path: &Path,
    write: impl FnOnce(&mut WriteBehind<'_>) -> Result<T>,
) -> Result<T> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let written = File::create(&partial)
        .context(|| format!("creating {}", partial.display()))
        .and_then(|file| {
            let written = write(&mut WriteBehind::new(&file, 0))?;
            file.sync_all()
                .context(|| format!("syncing {}", partial.display()))?;
            Ok(written)
        })
        .and_then(|written| {
            fs::rename(&partial, path).context(|| format!("renaming {}", partial.display()))?;
            Ok(written)
        });
    if written.is_err() {
        let _ = fs::remove_file(&partial);
    }
    written
}

/// Writes the archive of `images` to `out`, gzip-compressed when `gzip`, through the copy
/// loop (one blob at a time: an archive is one stream), showing progress on `board`; returns
/// what the copy did, and `out`.
pub fn write_archive<W: Write + Send>(
    out: W,
    gzip: bool,
    images: &[CachedImage<'_>],
    (board, progress): (&Board, &Progress),
) -> Result<(Summary, W)> {
    let out = BufWriter::with_capacity(COPY_BUFFER, out);
    let (summary, out) = if gzip {
        let (summary, compressed) = copy_into(
            GzEncoder::new(out, Compression::default()),
            images,
            board,
            progress,
        )?;
        let out = compressed.finish().context(|| "compressing the archive")?;
        (summary, out)
    } else {
        copy_into(out, images, board, progress)?
    };
    let out = out
        .into_inner()
        .map_err(|e| Error::io("writing the archive", e.into_error()))?;
    Ok((summary, out))
}

/// Copies `images` into an archive written to `out`; returns what the copy did, and `out`.
fn copy_into<W: Write + Send>(
    out: W,
    images: &[CachedImage<'_>],
    board: &Board,
    progress: &Progress,
) -> Result<(Summary, W)> {
    let destination = ArchiveDestination::new(out);
    let jobs: Vec<Job<'_>> = (images.iter())
        .map(|image| Job {
            platforms: &Platforms::All,
            source: image,
            names: image.name().into_iter().collect(),
        })
        .collect();
    let options = Options {
        workers: 1,
        board: Some(board),
        ..Options::default()
    };
    let summary = transfer::copy(&jobs, &destination, options, progress)?;
    Ok((summary, destination.finish()?))
}
