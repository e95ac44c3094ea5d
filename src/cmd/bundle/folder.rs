//! Writing a bundle's files into its folder: the archive (whole, or in parts), the program,
//! `push.sh`, `images.list`, `README.txt`, `bundle.json`, and `SHA256SUMS` over all of them.
//! Every file is hashed as it is written, never read back.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::archive::PartsWriter;
use crate::cache::CachedImage;
use crate::create;
use crate::digest::{Digest, HashingWriter};
use crate::error::{Context, Error, Result};
use crate::manifest::Descriptor;
use crate::progress::{Board, Progress};
use crate::transfer::{ReferrerPolicy, Source, Summary};
use crate::writeback::WriteBehind;

use super::record::{BundleRecord, Earlier, Held, RecordedImage};
use super::texts::{PUSH_SCRIPT, readme};
use crate::run::archive::{Archived, Taken, write_archive};
use crate::transfer::blobs_of;

/// What goes into a bundle.
pub struct Contents<'a> {
    pub images: &'a [CachedImage<'a>],
    /// The program to carry.
    pub binary: &'a Path,
    pub gzip: bool,
    /// The largest part of the archive, when it is split.
    pub split: Option<u64>,
    /// The bundle this one is made since: its layers are left out.
    pub earlier: Option<&'a Earlier>,
    /// Which referrers of the images go with them (none with `--no-referrers`).
    pub referrers: Option<&'a ReferrerPolicy>,
}

/// What was written: the copy into the archive, and the record of the bundle.
pub struct Filled {
    pub summary: Summary,
    pub record: BundleRecord,
}

/// The folder a bundle is filled in, as it was made: a folder that took its place meanwhile
/// (re-made by someone else, with links in it) is never finished as the bundle.
pub struct Made {
    dev: u64,
    ino: u64,
}

/// Makes `partial`, the folder the bundle is filled in: new and private (0700). What a failed
/// run of this user's left there is removed first; anything else there is refused.
pub fn make_partial(partial: &Path) -> Result<Made> {
    let shown = || partial.display().to_string();
    if fs::symlink_metadata(partial).is_ok() {
        create::remove_own_dir(partial).map_err(|e| match create::is_planted(&e) {
            true => Error::BadInput(format!("{}: {e}", shown())),
            false => Error::io(format!("removing {}", shown()), e),
        })?;
    }
    create::new_dir(partial, create::PRIVATE_DIR)
        .context(|| format!("creating {} (it must not exist)", shown()))?;
    let meta = fs::symlink_metadata(partial).context(|| format!("reading {}", shown()))?;
    Ok(Made {
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

impl Made {
    /// An error unless `partial` is still the folder that was made.
    pub fn check(&self, partial: &Path) -> Result<()> {
        match fs::symlink_metadata(partial) {
            Ok(meta) if meta.dev() == self.dev && meta.ino() == self.ino => Ok(()),
            _ => Err(Error::BadInput(format!(
                "{} was replaced while the bundle was written in it; nothing was finished",
                partial.display()
            ))),
        }
    }
}

/// Writes the bundle's files into `dir`, showing the archive's progress.
pub fn fill(dir: &Path, contents: &Contents<'_>, shown: (&Board, &Progress)) -> Result<Filled> {
    let archive = if contents.gzip {
        "images.tar.gz"
    } else {
        "images.tar"
    };
    let Listed {
        images,
        mut sizes,
        layers,
    } = listed(contents.images)?;
    let leave_out = (contents.earlier)
        .map(|earlier| (earlier.since.clone(), earlier.leaves_out(&layers)))
        .filter(|(_, omitted)| !omitted.is_empty());
    let since = leave_out.as_ref().map(|(since, _)| since.clone());
    let written = (contents.images, leave_out, contents.referrers);
    let (archived, sums) = write_images(dir, archive, contents, written, shown)?;
    let Archived {
        summary,
        left_out,
        referrers,
        ..
    } = archived;
    let referred = referrers.iter().flat_map(|referrer| &referrer.blobs);
    sizes.extend(referred.map(|blob| (blob.digest.clone(), blob.size)));
    for omitted in &left_out {
        sizes.remove(&omitted.digest);
    }
    let holds = (sizes.into_iter())
        .map(|(digest, size)| Held { digest, size })
        .collect();
    let archive_files: Vec<String> = sums.iter().map(|(_, name)| name.clone()).collect();
    let names: Vec<String> = images.iter().map(|image| image.name.clone()).collect();
    let record = BundleRecord::new(
        since,
        archive_files.clone(),
        (images, referrers),
        holds,
        left_out,
    );

    let texts = Texts {
        archive,
        archive_files: &archive_files,
        names: &names,
    };
    write_beside(dir, contents.binary, &record, texts, sums)?;
    Ok(Filled { summary, record })
}

/// What the bundle's images are made of, before anything is written.
struct Listed {
    /// Each image as the record lists it.
    images: Vec<RecordedImage>,
    /// The size of every blob they use.
    sizes: BTreeMap<Digest, u64>,
    /// Their layers and their referrers' layers: what a delta may leave out.
    layers: Vec<Descriptor>,
}

/// Lists what `images` are made of.
fn listed(images: &[CachedImage]) -> Result<Listed> {
    let mut listed = Listed {
        images: Vec::new(),
        sizes: BTreeMap::new(),
        layers: Vec::new(),
    };
    for image in images {
        let (configs, image_layers) = blobs_of(image)?;
        let blobs = configs.iter().chain(&image_layers);
        (listed.sizes).extend(blobs.clone().map(|blob| (blob.digest.clone(), blob.size)));
        listed.images.push(RecordedImage {
            name: image
                .name()
                .map_or_else(|| image.key.clone(), |n| n.to_string()),
            manifest: image.manifest()?.digest,
            blobs: blobs.map(|blob| blob.digest.clone()).collect(),
        });
        listed.layers.extend(image_layers);
        // A delta leaves out the layers of referrers an earlier bundle carried, too.
        listed.layers.extend(image.referrer_layers()?);
    }
    Ok(listed)
}

/// A file of the bundle with its digest, for SHA256SUMS.
type Sum = (Digest, String);

/// The names the bundle's texts give: its archive, the files it is in, and its images.
struct Texts<'a> {
    archive: &'a str,
    archive_files: &'a [String],
    names: &'a [String],
}

/// Writes the images' archive into `dir`: whole as `archive`, or in parts of the split's
/// size; what was archived, and the digest and name of each file written.
fn write_images(
    dir: &Path,
    archive: &str,
    contents: &Contents<'_>,
    written: Taken<'_>,
    shown: (&Board, &Progress),
) -> Result<(Archived<()>, Vec<Sum>)> {
    match contents.split {
        None => {
            let (archived, digest) = write_hashed(&dir.join(archive), 0o644, |out| {
                write_archive(out, contents.gzip, written, shown).and_then(|a| a.then(|_| Ok(())))
            })?;
            Ok((archived, vec![(digest, archive.to_string())]))
        }
        Some(limit) => {
            let mut parts = PartsWriter::new(dir, archive, "", limit);
            let archived = write_archive(&mut parts, contents.gzip, written, shown)?;
            let archived = archived.then(|_| Ok(()))?;
            let sums = (parts.finish()?.into_iter())
                .map(|part| (part.digest, part.name))
                .collect();
            Ok((archived, sums))
        }
    }
}

/// Writes what goes beside the archive: the program, push.sh, images.list, bundle.json,
/// README.txt, and SHA256SUMS of them all (`sums`: the archive's files already).
fn write_beside(
    dir: &Path,
    binary: &Path,
    record: &BundleRecord,
    Texts {
        archive,
        archive_files,
        names,
    }: Texts<'_>,
    mut sums: Vec<Sum>,
) -> Result<()> {
    let (_, program) = write_hashed(&dir.join("docker-image-pusher"), 0o755, |out| {
        let mut program = File::open(binary).context(|| format!("opening {}", binary.display()))?;
        io::copy(&mut program, out).context(|| format!("copying {}", binary.display()))
    })?;
    sums.push((program, "docker-image-pusher".into()));
    let json = serde_json::to_string_pretty(record)
        .map_err(|e| Error::io("encoding bundle.json", io::Error::other(e)))?;
    let notes = readme(archive_files, names, record.since.as_ref());
    let list = format!("{archive}\n");
    for (name, text, mode) in [
        ("push.sh", PUSH_SCRIPT, 0o755),
        ("images.list", list.as_str(), 0o644),
        ("bundle.json", json.as_str(), 0o644),
        ("README.txt", notes.as_str(), 0o644),
    ] {
        let (_, digest) = write_hashed(&dir.join(name), mode, |out| {
            out.write_all(text.as_bytes())
                .context(|| format!("writing {name}"))
        })?;
        sums.push((digest, name.into()));
    }
    let sums: String = (sums.iter())
        .map(|(digest, name)| format!("{}  {name}\n", digest.hex()))
        .collect();
    write_hashed(&dir.join("SHA256SUMS"), 0o644, |out| {
        out.write_all(sums.as_bytes())
            .context(|| "writing SHA256SUMS")
    })?;
    Ok(())
}

/// Writes the file `path` with `write`, hashing what goes in, gives it `mode` and syncs it;
/// returns what `write` returned and the file's digest.
fn write_hashed<T>(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut HashingWriter<WriteBehind<'_>>) -> Result<T>,
) -> Result<(T, Digest)> {
    let file = create::new_file(path, create::PRIVATE_FILE)
        .context(|| format!("creating {}", path.display()))?;
    let mut out = HashingWriter::new(WriteBehind::new(&file, 0));
    let written = write(&mut out)?;
    let (digest, _) = out.finish();
    file.set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| file.sync_all())
        .context(|| format!("writing {}", path.display()))?;
    Ok((written, digest))
}
