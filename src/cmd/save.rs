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
use crate::cache::CachedImage;
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
    let mut cached = images
        .iter()
        .map(|query| cache.image(query))
        .collect::<Result<Vec<_>>>()?;
    let mut seen = HashSet::new();
    cached.retain(|image| seen.insert(image.key.clone())); // each image once, however named

    let partial = (output != "-").then(|| PathBuf::from(format!("{output}.partial")));
    let written = write_to(&output, partial.as_deref(), gzip, &cached);
    let (blobs, bytes) = match (written, &partial) {
        (Err(error), Some(path)) => {
            let _ = fs::remove_file(path);
            return Err(error);
        }
        (Err(error), None) => return Err(error),
        (Ok(written), Some(path)) => {
            fs::rename(path, &output).context(|| format!("writing {output}"))?;
            written
        }
        (Ok(written), None) => written,
    };
    globals.progress().info(format_args!(
        "saved {} to {output}: {} ({})",
        count(cached.len(), "image"),
        count(blobs, "blob"),
        human_bytes(bytes)
    ));
    Ok(())
}

/// Writes the archive to `partial` (then renamed by the caller), or to stdout; returns how
/// many blobs and bytes of them went in.
fn write_to(
    output: &str,
    partial: Option<&Path>,
    gzip: bool,
    images: &[CachedImage<'_>],
) -> Result<(usize, u64)> {
    let sink: Box<dyn Write> = match partial {
        None => Box::new(std::io::stdout().lock()),
        Some(path) => {
            Box::new(File::create(path).context(|| format!("creating {}", path.display()))?)
        }
    };
    let mut sink = BufWriter::with_capacity(COPY_BUFFER, sink);
    let written = if gzip {
        let mut compressed = GzEncoder::new(&mut sink, Compression::default());
        let written = write(&mut compressed, images)?;
        compressed
            .finish()
            .map_err(|e| Error::io(format!("compressing {output}"), e))?;
        written
    } else {
        write(&mut sink, images)?
    };
    let file = sink
        .into_inner()
        .map_err(|e| Error::io(format!("writing {output}"), e.into_error()))?;
    drop(file);
    if let Some(path) = partial {
        File::open(path)
            .and_then(|f| f.sync_all())
            .context(|| format!("syncing {}", path.display()))?;
    }
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
