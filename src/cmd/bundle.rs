//! `bundle`: cached images, this program and a push script in one folder, ready to carry
//! across an air gap.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use lexopt::{Arg, Parser};

use crate::args::{self, FlagGroup, Globals, PROGRESS_HELP, Parsed, TransferArgs};
use crate::cache::CachedImage;
use crate::digest::{Digest, HashingWriter};
use crate::error::{Context, Error, Result};
use crate::progress::{Board, Progress, count, human_bytes};
use crate::transfer::Summary;
use crate::writeback::WriteBehind;

use super::context::RunContext;
use super::output::print_help;
use super::save::{Written, cached_images, write_archive};

const COMMAND: &str = "docker-image-pusher bundle";

/// The synopsis and options.
pub const USAGE: &str = "\
Put cached images, this program and a push script in one folder, ready to carry.

Usage: docker-image-pusher bundle [OPTIONS] IMAGE... -o DIR

Arguments:
  IMAGE  a cached image: full or unambiguous short name, or image ID

Options:
  -o, --output DIR   the folder to make (it must not exist)
      --binary PATH  the program to put in [default: this one]; give the static build
      --gzip         compress the archive";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = &[PROGRESS_HELP];

/// The long help.
pub const DETAILS: &str = "

The folder holds:
  images.tar           the images, as save writes them (docker load reads it too)
  docker-image-pusher  the program
  push.sh              'push.sh REGISTRY[/PREFIX] [OPTIONS]' pushes every image there, each
                       under its own repository and tag, as sync --to does; the options go
                       to sync (-u USER --password-stdin, --ca-cert FILE, ...)
  images.list          the list push.sh gives sync
  SHA256SUMS           for 'sha256sum -c SHA256SUMS' after the carry
The folder appears whole or not at all: it is made as DIR.partial, then renamed. push.sh
checks the program and itself against SHA256SUMS before running (the images are checked
blob by blob as they are pushed). A dynamically linked program only runs where the same C
library is: bundle warns, and --binary takes the static build (scripts/build-static.sh).

Examples:
  docker-image-pusher bundle registry.example.com/team/app:v1 -o app-bundle --binary ./dip-static
  app-bundle/push.sh mirror.local:5000/edge -u ci --password-stdin < token   (the other side)";

/// What push.sh says: push every image of the bundle under REGISTRY[/PREFIX], with sync.
const PUSH_SCRIPT: &str = r#"#!/bin/sh
# Pushes the images of this bundle to REGISTRY[/PREFIX], each under its own repository and
# tag. Options after REGISTRY go to 'docker-image-pusher sync' (-u USER --password-stdin,
# --ca-cert FILE, --max-concurrent N, ...). Written by 'docker-image-pusher bundle'.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  echo "usage: $0 REGISTRY[/PREFIX] [OPTIONS]" >&2
  exit 2
fi
to=$1
shift
# The program and this script are checked before use; the images as they are pushed.
if command -v sha256sum >/dev/null 2>&1; then
  (cd "$here" && grep -v ' images\.tar' SHA256SUMS | sha256sum -c --quiet -)
fi
cache=${DOCKER_PUSHER_CACHE_DIR:-${TMPDIR:-/tmp}/docker-image-pusher-bundle}
exec "$here/docker-image-pusher" --cache-dir "$cache" sync --file "$here/images.list" --to "$to" "$@"
"#;

/// What the command line of `bundle` says, checked, before anything is opened.
pub struct BundleArgs {
    pub globals: Globals,
    /// Its progress flags (the archive is one stream: one blob at a time).
    pub transfer: TransferArgs,
    /// The cached images, as named.
    pub images: Vec<String>,
    /// The folder to make; it must not exist.
    pub output: PathBuf,
    /// The program to carry (`--binary`; this one without).
    pub binary: Option<PathBuf>,
    pub gzip: bool,
}

impl BundleArgs {
    /// Reads the rest of the command line.
    pub fn parse(parser: &mut Parser, mut globals: Globals) -> Result<Parsed<BundleArgs>> {
        let (mut written, mut binary) = (Written::default(), None);
        let mut transfer = TransferArgs::one_stream();
        let groups: &mut [&mut dyn FlagGroup] =
            &mut [&mut globals, &mut transfer.shown, &mut written];
        while let Some(flag) = args::next(parser, groups, COMMAND)? {
            match flag.as_arg() {
                Arg::Short('h') => return Ok(Parsed::Help { long: false }),
                Arg::Long("help") => return Ok(Parsed::Help { long: true }),
                Arg::Long("binary") => {
                    binary = Some(PathBuf::from(args::value(parser, "--binary")?))
                }
                other => return Err(args::unexpected(other, COMMAND)),
            }
        }
        let (images, output, gzip) = written.checked("folder given (-o DIR)", COMMAND)?;
        let output = PathBuf::from(output);
        if output.exists() {
            return Err(Error::Usage(format!(
                "{} exists; bundle makes a new folder",
                output.display()
            )));
        }
        Ok(Parsed::Run(BundleArgs {
            globals,
            transfer,
            images,
            output,
            binary,
            gzip,
        }))
    }
}

/// Runs `bundle` on the rest of the command line.
pub fn run(parser: &mut Parser, globals: Globals) -> Result<()> {
    let BundleArgs {
        globals,
        transfer,
        images,
        output,
        binary,
        gzip,
    } = match BundleArgs::parse(parser, globals)? {
        Parsed::Help { long } => return print_help(USAGE, GROUPS, DETAILS, long),
        Parsed::Run(bundle) => bundle,
    };
    let binary = match binary {
        Some(path) => path,
        None => std::env::current_exe().context(|| "finding this program")?,
    };
    let run = RunContext::new(&globals, &transfer)?;
    let progress = run.progress;
    if is_dynamically_linked(&binary) {
        progress.warn(format_args!(
            "{} is dynamically linked: it runs only where the same C library is; give the \
             static build with --binary",
            binary.display()
        ));
    }
    let cached = cached_images(&run.cache, &images)?;
    let board = run.board();

    let mut partial = output.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let _ = fs::remove_dir_all(&partial); // what a failed run left
    let filled = fs::create_dir_all(&partial)
        .context(|| format!("creating {}", partial.display()))
        .and_then(|()| fill(&partial, &binary, gzip, &cached, (&board, &progress)))
        .and_then(|written| {
            fs::rename(&partial, &output).context(|| format!("renaming {}", partial.display()))?;
            Ok(written)
        });
    let summary = filled.inspect_err(|_| {
        let _ = fs::remove_dir_all(&partial);
    })?;
    let names: Vec<String> = cached.iter().map(|image| image.key.clone()).collect();
    run.finish(("bundle", &names), &summary, &board, |took| {
        format!(
            "bundled {} ({}, {}) with {} in {}{took}; on the other side: {}/push.sh REGISTRY[/PREFIX]",
            count(cached.len(), "image"),
            count(summary.blobs_copied, "blob"),
            human_bytes(summary.bytes_copied),
            binary.display(),
            output.display(),
            output.display()
        )
    })
}

/// Writes the bundle's files into `dir`, showing the archive's progress; returns what
/// copying the images into it did.
fn fill(
    dir: &Path,
    binary: &Path,
    gzip: bool,
    images: &[CachedImage<'_>],
    shown: (&Board, &Progress),
) -> Result<Summary> {
    let archive = if gzip { "images.tar.gz" } else { "images.tar" };
    let (written, archive_digest) = write_hashed(&dir.join(archive), 0o644, |out| {
        write_archive(out, gzip, images, shown).map(|(summary, _)| summary)
    })?;
    let (_, program_digest) = write_hashed(&dir.join("docker-image-pusher"), 0o755, |out| {
        let mut program = File::open(binary).context(|| format!("opening {}", binary.display()))?;
        io::copy(&mut program, out).context(|| format!("copying {}", binary.display()))
    })?;
    let list = format!("{archive}\n");
    let mut sums = vec![
        (archive_digest, archive),
        (program_digest, "docker-image-pusher"),
    ];
    for (name, text, mode) in [
        ("push.sh", PUSH_SCRIPT, 0o755),
        ("images.list", list.as_str(), 0o644),
    ] {
        let (_, digest) = write_hashed(&dir.join(name), mode, |out| {
            out.write_all(text.as_bytes())
                .context(|| format!("writing {name}"))
        })?;
        sums.push((digest, name));
    }
    let sums: String = (sums.iter())
        .map(|(digest, name)| format!("{}  {name}\n", digest.hex()))
        .collect();
    write_hashed(&dir.join("SHA256SUMS"), 0o644, |out| {
        out.write_all(sums.as_bytes())
            .context(|| "writing SHA256SUMS")
    })?;
    Ok(written)
}

/// Writes the file `path` with `write`, hashing what goes in, gives it `mode` and syncs it;
/// returns what `write` returned and the file's digest.
fn write_hashed<T>(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut HashingWriter<WriteBehind<'_>>) -> Result<T>,
) -> Result<(T, Digest)> {
    let file = File::create(path).context(|| format!("creating {}", path.display()))?;
    let mut out = HashingWriter::new(WriteBehind::new(&file, 0));
    let written = write(&mut out)?;
    let (digest, _) = out.finish();
    file.set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| file.sync_all())
        .context(|| format!("writing {}", path.display()))?;
    Ok((written, digest))
}

/// Whether `path` is an ELF program that asks for a dynamic loader (a `PT_INTERP` header);
/// false for a static one, and for anything it cannot read as 64-bit little-endian ELF
/// with its program headers in the first 64 KiB.
fn is_dynamically_linked(path: &Path) -> bool {
    const PT_INTERP: u32 = 3;
    const ELF_HEAD: u64 = 64 * 1024;
    // The ELF header and the program headers sit at the start; the rest is not read.
    let mut bytes = Vec::new();
    let read = File::open(path).and_then(|file| file.take(ELF_HEAD).read_to_end(&mut bytes));
    if read.is_err() {
        return false;
    }
    let field = |at: usize, len: usize| -> Option<u64> {
        let slice = bytes.get(at..at + len)?;
        Some(
            slice
                .iter()
                .rev()
                .fold(0, |value, &byte| value << 8 | u64::from(byte)),
        )
    };
    if bytes.get(..6) != Some(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(offset), Some(size), Some(count)) = (field(0x20, 8), field(0x36, 2), field(0x38, 2))
    else {
        return false;
    };
    (0..count).any(|i| field((offset + i * size) as usize, 4) == Some(u64::from(PT_INTERP)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_a_dynamic_program_from_anything_else() {
        let this = std::env::current_exe().unwrap();
        // Test binaries are linked against the C library of the machine that builds them.
        assert!(is_dynamically_linked(&this));
        assert!(!is_dynamically_linked(Path::new("Cargo.toml")));
        assert!(!is_dynamically_linked(Path::new("/nonexistent")));
    }
}
