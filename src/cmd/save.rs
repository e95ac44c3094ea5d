//! `save`: cache to an archive that `docker load` accepts.

use std::collections::HashSet;
use std::fs;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use lexopt::{Arg, Parser};

use crate::archive::{
    ArchiveDestination, Omitted, Part, PartsWriter, Since, WrittenReferrer, part_limit, part_name,
};
use crate::args::{
    self, FlagGroup, Globals, PROGRESS_HELP, Parsed, REFERRERS_HELP, ReferrerArgs, TransferArgs,
};
use crate::atomic::{self, Replace};
use crate::cache::{Cache, CachedImage};
use crate::create;
use crate::digest::COPY_BUFFER;
use crate::error::{Context, Error, Result};
use crate::manifest::Platforms;
use crate::progress::{Board, Progress, count, human_bytes};
use crate::transfer::{self, Job, Options, ReferrerPolicy, Summary};
use crate::writeback::WriteBehind;

use super::context::RunContext;
use super::output::print_help;
use super::upload::referrers_said;

const COMMAND: &str = "docker-image-pusher save";

/// The synopsis and options.
pub const USAGE: &str = "\
Write cached images to one archive that docker load accepts.

Usage: docker-image-pusher save [OPTIONS] IMAGE... -o FILE

Arguments:
  IMAGE  a cached image: full or unambiguous short name, or image ID

Options:
  -o, --output FILE  the archive to write, in a folder that exists; - writes to
                     standard output";

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
FILE.NNN.partial). The images' cached referrers (signatures, SBOMs, attestations) go into the archive too: their manifests and blobs under blobs/sha256/,
listed not in manifest.json or index.json (so loaders see only the images) but in
docker-image-pusher-referrers.json, which extract and push read (--no-referrers leaves them).

Examples:
  docker-image-pusher save app:v1 -o app.tar
  docker-image-pusher save app:v1 worker:v1 --gzip -o images.tar.gz
  docker-image-pusher save app:v1 -o - | ssh edge-host docker load";

/// What the command line of `save` says, checked, before anything is opened.
pub struct SaveArgs {
    pub globals: Globals,
    /// Its progress flags (an archive is one stream: one blob at a time).
    pub transfer: TransferArgs,
    /// The images, the archive (`-`: standard output), `--gzip`, `--split`.
    pub written: WrittenArgs,
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
        let written = written.checked("archive given (-o FILE)", COMMAND)?;
        let output = &written.output;
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
        Ok(Parsed::Run(SaveArgs {
            globals,
            transfer,
            written,
        }))
    }
}

/// Runs `save` on the rest of the command line.
pub fn run(parser: &mut Parser, globals: Globals) -> Result<()> {
    let SaveArgs {
        globals,
        transfer,
        written,
    } = match SaveArgs::parse(parser, globals)? {
        Parsed::Help { long } => return print_help(USAGE, GROUPS, DETAILS, long),
        Parsed::Run(save) => save,
    };
    let run = RunContext::new(&globals, &transfer)?;
    let cached = cached_images(&run.cache, &written.images)?;
    let board = run.board();
    let shown = (&board, &run.progress);
    let (output, gzip) = (&written.output, written.gzip);
    let taken = (&cached[..], None, written.referrers.as_ref());
    let summary = match (output.as_str(), written.split) {
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

/// What `save` and `bundle` both take: the cached images (the words), `-o/--output` (a file,
/// or for `bundle` a folder), `--gzip` and `--split SIZE`.
#[derive(Default)]
pub struct Written {
    images: Vec<String>,
    output: Option<String>,
    gzip: bool,
    split: Option<u64>,
    referrers: ReferrerArgs,
}

/// What [`Written::checked`] gives: everything `save` and `bundle` write.
pub struct WrittenArgs {
    /// The cached images, as named.
    pub images: Vec<String>,
    /// The archive (`-`: standard output) or the folder.
    pub output: String,
    pub gzip: bool,
    /// The largest part the archive may be written in (`--split`), if it is split.
    pub split: Option<u64>,
    /// Which referrers of the images go into it (none with `--no-referrers`).
    pub referrers: Option<ReferrerPolicy>,
}

/// The help of `--gzip` and `--split`.
pub const WRITTEN_HELP: &str = "\
Archive options:
      --gzip                   compress the archive
      --split SIZE             write the archive as numbered parts of at most SIZE each
                               (700M; 4G means the 4 GiB - 1 byte FAT32 holds); they
                               concatenate to the archive, and extract, push and sync read
                               them as it";

impl Written {
    /// What was given; a usage error of `command` without an output (`missing` says what:
    /// `archive given (-o FILE)`) or without an image.
    pub fn checked(self, missing: &str, command: &str) -> Result<WrittenArgs> {
        let output = (self.output)
            .ok_or_else(|| Error::Usage(format!("no {missing}; see '{command} --help'")))?;
        if self.images.is_empty() {
            return Err(Error::Usage(format!(
                "no image given; see '{command} --help'"
            )));
        }
        if output != "-" {
            existing_parent(&output)?;
        }
        Ok(WrittenArgs {
            images: self.images,
            output,
            gzip: self.gzip,
            split: self.split.map(part_limit),
            referrers: self.referrers.policy()?,
        })
    }
}

impl FlagGroup for Written {
    fn claim(&mut self, arg: &Arg<'_>, parser: &mut Parser) -> Result<bool> {
        match arg {
            Arg::Short('o') | Arg::Long("output") => {
                self.output = Some(args::value(parser, "--output")?)
            }
            Arg::Long("gzip") => self.gzip = true,
            Arg::Long("split") => self.split = Some(args::size(parser, "--split")?),
            Arg::Value(value) => self.images.push(args::utf8(value.clone(), "IMAGE")?),
            _ => return self.referrers.claim(arg, parser),
        }
        Ok(true)
    }
}

/// A usage error unless the folder `-o PATH` goes in exists: neither save nor bundle makes
/// missing folders, so a mistyped path is named rather than created.
fn existing_parent(output: &str) -> Result<()> {
    let parent = (Path::new(output).parent())
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match fs::metadata(parent) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Error::Usage(format!(
            "-o {output}: {} is not a folder",
            parent.display()
        ))),
        Err(_) => Err(Error::Usage(format!(
            "-o {output}: the folder {} does not exist; create it first (save and bundle \
             make no missing folders)",
            parent.display()
        ))),
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

/// Writes `path` whole or not at all: through a new temporary file beside it, written back
/// as it grows ([`WriteBehind`]), synced, then renamed.
pub fn write_whole<T>(
    path: &Path,
    write: impl FnOnce(&mut WriteBehind<'_>) -> Result<T>,
) -> Result<T> {
    let shown = path.display().to_string();
    atomic::replace(
        Replace::beside(path, create::ORDINARY_FILE, &shown),
        |file| write(&mut WriteBehind::new(file, 0)),
    )
}

/// Writes `path` as numbered parts of at most `limit` bytes (`path.000`, …) with `write`,
/// whole or not at all: each part as `.partial` until all are written, then renamed; `path`
/// itself, and parts an earlier, longer write left past the new last one, are removed (they
/// would be read as part of the archive). Returns what `write` returned and the parts.
pub fn write_parts<T>(
    path: &Path,
    limit: u64,
    write: impl FnOnce(&mut PartsWriter) -> Result<T>,
) -> Result<(T, Vec<Part>)> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = (path.file_name())
        .ok_or_else(|| Error::Usage(format!("-o {}: not a file name", path.display())))?
        .to_string_lossy()
        .into_owned();
    let partial = |name: &str| dir.join(format!("{name}.partial"));
    // What is not renamed yet goes, from part `from` on, however the write failed.
    let remove_partials = |from: usize| {
        for index in from.. {
            if fs::remove_file(partial(&part_name(&base, index))).is_err() {
                break;
            }
        }
    };
    let mut parts = PartsWriter::new(dir, &base, ".partial", limit);
    let written = write(&mut parts).and_then(|written| Ok((written, parts.finish()?)));
    let (written, parts) = written.inspect_err(|_| remove_partials(0))?;
    for (index, part) in parts.iter().enumerate() {
        fs::rename(partial(&part.name), dir.join(&part.name))
            .context(|| format!("renaming {}", partial(&part.name).display()))
            .inspect_err(|_| remove_partials(index))?;
    }
    let _ = fs::remove_file(path);
    for index in parts.len().. {
        if fs::remove_file(dir.join(part_name(&base, index))).is_err() {
            break;
        }
    }
    Ok((written, parts))
}

/// What a delta archive leaves out (`bundle --since`): the earlier bundle and its blobs.
pub type LeaveOut = Option<(Since, Vec<Omitted>)>;

/// What an archive takes: the images, what a delta leaves out, and which referrers of the
/// images go with them.
pub type Taken<'a> = (&'a [CachedImage<'a>], LeaveOut, Option<&'a ReferrerPolicy>);

/// What writing an archive did: the copy, the blobs a delta left out that the images use,
/// the referrers written with them, and the output.
pub struct Archived<W> {
    pub summary: Summary,
    pub left_out: Vec<Omitted>,
    pub referrers: Vec<WrittenReferrer>,
    pub out: W,
}

/// Writes the archive of `images` to `out`, gzip-compressed when `gzip`, through the copy
/// loop (one blob at a time: an archive is one stream), showing progress on `board`; a delta
/// when `leave_out` says what to leave out; the referrers the policy takes go with them.
pub fn write_archive<W: Write + Send>(
    out: W,
    gzip: bool,
    taken: Taken<'_>,
    shown: (&Board, &Progress),
) -> Result<Archived<W>> {
    let out = BufWriter::with_capacity(COPY_BUFFER, out);
    let archived = if gzip {
        let compressing = GzEncoder::new(out, Compression::default());
        copy_into(compressing, taken, shown)?
            .then(|out| out.finish().context(|| "compressing the archive"))?
    } else {
        copy_into(out, taken, shown)?
    };
    archived.then(|out| {
        (out.into_inner()).map_err(|e| Error::io("writing the archive", e.into_error()))
    })
}

impl<W> Archived<W> {
    /// The same, with the output as `finish` leaves it.
    pub fn then<V>(self, finish: impl FnOnce(W) -> Result<V>) -> Result<Archived<V>> {
        Ok(Archived {
            summary: self.summary,
            left_out: self.left_out,
            referrers: self.referrers,
            out: finish(self.out)?,
        })
    }
}

/// Copies `images` into an archive written to `out`.
fn copy_into<W: Write + Send>(
    out: W,
    (images, leave_out, referrers): Taken<'_>,
    (board, progress): (&Board, &Progress),
) -> Result<Archived<W>> {
    let destination = match leave_out {
        Some((since, omitted)) => ArchiveDestination::new(out).leaving_out(since, omitted),
        None => ArchiveDestination::new(out),
    };
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
        referrers,
        ..Options::default()
    };
    let summary = transfer::copy(&jobs, &destination, options, progress)?;
    Ok(Archived {
        summary,
        left_out: destination.left_out(),
        referrers: destination.referrers()?,
        out: destination.finish()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn scratch(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dip-save-{label}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = (fs::read_dir(dir).unwrap())
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn parts_replace_a_whole_file_and_longer_parts_of_before() {
        let dir = scratch("replace");
        let path = dir.join("app.tar");
        fs::write(&path, b"old whole archive").unwrap();
        for index in 0..5 {
            fs::write(dir.join(part_name("app.tar", index)), b"old part").unwrap();
        }
        let (_, parts) = write_parts(&path, 10, |out| {
            out.write_all(&[7u8; 15]).context(|| "writing")
        })
        .unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(names(&dir), ["app.tar.000", "app.tar.001"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn links_in_the_way_are_removed_never_followed() {
        let dir = scratch("links");
        let outside = scratch("links-outside");
        let keep = outside.join("precious");
        fs::write(&keep, b"not the archive's").unwrap();
        let path = dir.join("app.tar");
        for name in ["app.tar", "app.tar.000.partial", "app.tar.002"] {
            std::os::unix::fs::symlink(&keep, dir.join(name)).unwrap();
        }
        fs::write(dir.join("app.tar.001"), b"old part").unwrap();
        write_parts(&path, 10, |out| {
            out.write_all(&[7u8; 15]).context(|| "writing")
        })
        .unwrap();
        assert_eq!(names(&dir), ["app.tar.000", "app.tar.001"]);
        assert_eq!(fs::read(dir.join("app.tar.000")).unwrap(), [7u8; 10]);
        assert_eq!(fs::read(&keep).unwrap(), b"not the archive's");
        fs::remove_dir_all(&dir).unwrap();
        fs::remove_dir_all(&outside).unwrap();
    }

    #[test]
    fn a_failed_rename_leaves_no_partial_part() {
        let dir = scratch("rename");
        let path = dir.join("app.tar");
        fs::create_dir_all(dir.join("app.tar.001/in the way")).unwrap();
        let failed = write_parts(&path, 10, |out| {
            out.write_all(&[7u8; 25]).context(|| "writing")
        });
        assert!(failed.is_err());
        assert_eq!(names(&dir), ["app.tar.000", "app.tar.001"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_no_part() {
        let dir = scratch("failed");
        let path = dir.join("app.tar");
        let failed = write_parts(&path, 10, |out| {
            out.write_all(&[7u8; 25]).context(|| "writing")?;
            Err::<(), _>(Error::BadInput("the source broke".into()))
        });
        assert!(failed.is_err());
        assert!(names(&dir).is_empty(), "{:?}", names(&dir));
        fs::remove_dir_all(&dir).unwrap();
    }
}
