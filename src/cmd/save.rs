//! `save`: cache to an archive that `docker load` accepts.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use lexopt::{Arg, Parser};

use crate::archive::{ArchiveWriter, LegacyEntry};
use crate::args::{self, Globals};
use crate::cache::{Cache, CachedImage};
use crate::digest::COPY_BUFFER;
use crate::error::{Context, Error, Result};
use crate::manifest::{self, Parsed, Platform, RawManifest};
use crate::progress::{count, human_bytes};
use crate::reference::Reference;
use crate::transfer::Source;

use super::print_help;

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
pub const GROUPS: &[&str] = &[];

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

/// Runs `save` on the rest of the command line.
pub fn run(parser: &mut Parser, mut globals: Globals) -> Result<()> {
    let (mut images, mut output, mut gzip) = (Vec::new(), None, false);
    while let Some(flag) = args::next(parser, &mut [&mut globals], COMMAND)? {
        match flag.as_arg() {
            Arg::Short('h') => return print_help(USAGE, GROUPS, DETAILS, false),
            Arg::Long("help") => return print_help(USAGE, GROUPS, DETAILS, true),
            Arg::Short('o') | Arg::Long("output") => {
                output = Some(args::value(parser, "--output")?)
            }
            Arg::Long("gzip") => gzip = true,
            Arg::Value(value) => images.push(args::utf8(value, "IMAGE")?),
            other => return Err(args::unexpected(other, COMMAND)),
        }
    }
    let output = output.ok_or_else(|| {
        Error::Usage(format!(
            "no archive given (-o FILE); see '{COMMAND} --help'"
        ))
    })?;
    if images.is_empty() {
        return Err(Error::Usage(format!(
            "no image given; see '{COMMAND} --help'"
        )));
    }
    if output == "-" && std::io::stdout().is_terminal() {
        return Err(Error::Usage(
            "refusing to write an archive to a terminal; redirect standard output or give -o FILE"
                .into(),
        ));
    }
    let cache = globals.cache();
    let cached = cached_images(&cache, &images)?;
    let (blobs, bytes) = match output.as_str() {
        "-" => write_archive(
            &mut std::io::stdout().lock(),
            gzip,
            &cached,
            "standard output",
        )?,
        path => write_whole(Path::new(path), |file| {
            write_archive(file, gzip, &cached, path)
        })?,
    };
    globals.progress().info(format_args!(
        "saved {} to {output}: {} ({})",
        count(cached.len(), "image"),
        count(blobs, "blob"),
        human_bytes(bytes)
    ));
    Ok(())
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

/// Writes `path` whole or not at all: through `<path>.partial`, synced, then renamed.
pub fn write_whole<T>(path: &Path, write: impl FnOnce(&mut File) -> Result<T>) -> Result<T> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let written = File::create(&partial)
        .context(|| format!("creating {}", partial.display()))
        .and_then(|mut file| {
            let written = write(&mut file)?;
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

/// Writes the archive of `images` to `out` (named `name` in errors), gzip-compressed when
/// `gzip`; returns how many blobs, and bytes of them, went in.
pub fn write_archive(
    out: &mut dyn Write,
    gzip: bool,
    images: &[CachedImage<'_>],
    name: &str,
) -> Result<(usize, u64)> {
    let mut out = BufWriter::with_capacity(COPY_BUFFER, out);
    let written = if gzip {
        let mut compressed = GzEncoder::new(&mut out, Compression::default());
        let written = write(&mut compressed, images)?;
        compressed
            .finish()
            .map_err(|e| Error::io(format!("compressing {name}"), e))?;
        written
    } else {
        write(&mut out, images)?
    };
    out.flush()
        .map_err(|e| Error::io(format!("writing {name}"), e))?;
    Ok(written)
}

/// Writes every image into an archive on `out`; returns how many blobs and bytes went in.
fn write(out: &mut dyn Write, images: &[CachedImage<'_>]) -> Result<(usize, u64)> {
    let mut archive = ArchiveWriter::new(out);
    for image in images {
        let name = Reference::parse(&image.key).ok();
        let manifest = image.manifest()?;
        add(&mut archive, image, &manifest, name.as_ref(), true)?;
        let full = name.as_ref().map(Reference::to_string);
        archive.name(
            &manifest,
            full.as_deref(),
            name.as_ref().and_then(Reference::tag),
        );
    }
    let written = archive.written();
    archive.finish()?;
    Ok(written)
}

/// Adds one manifest and all it names: an image's blobs (listed in `manifest.json` when
/// `listed`), or every image of an index (only this host's platform listed there, as
/// `docker load` takes one image per name).
fn add(
    archive: &mut ArchiveWriter<impl Write>,
    source: &dyn Source,
    manifest: &RawManifest,
    name: Option<&Reference>,
    listed: bool,
) -> Result<()> {
    let bad = |e: String| Error::BadInput(format!("{}: {e}", source.describe()));
    match manifest::parse(&manifest.bytes).map_err(bad)? {
        Parsed::Image(image) => {
            for blob in std::iter::once(&image.config).chain(&image.layers) {
                archive.blob(&blob.digest, blob.size, &mut *source.open_blob(blob, 0)?)?;
            }
            if listed {
                archive.legacy(LegacyEntry {
                    config: image.config.digest.clone(),
                    repo_tags: name.and_then(Reference::familiar).into_iter().collect(),
                    layers: image
                        .layers
                        .iter()
                        .map(|layer| layer.digest.clone())
                        .collect(),
                });
            }
        }
        Parsed::Index(index) => {
            let host = Platform::host();
            let chosen = (index.entries().iter())
                .position(|entry| entry.platform.as_ref().is_some_and(|p| host.accepts(p)))
                .unwrap_or(0);
            for (i, entry) in index.entries().iter().enumerate() {
                let child = source.child_manifest(entry)?;
                add(archive, source, &child, name, listed && i == chosen)?;
            }
        }
    }
    archive.manifest(manifest)
}
