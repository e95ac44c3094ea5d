//! `docker save` and OCI archives: read as a source of images (plain or gzip, from a file or a
//! stream, or an OCI layout folder), and written (`save`) so that `docker load` accepts them.

mod delta;
mod destination;
mod entries;
mod file;
mod folder;
mod headers;
mod layout;
mod layout_folder;
mod parts;
mod referrers;
mod select;
mod write;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Cursor, IsTerminal, Read, Seek};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, RawManifest};
use crate::transfer::{Found, Referrer, Source};

pub use delta::{Delta, Omitted, Since};
pub use destination::ArchiveDestination;
use entries::{Container, Entries};
pub use file::{write_parts, write_whole};
pub use layout::ArchiveImage;
pub use layout_folder::LayoutFolder;
pub use parts::{Part, PartsWriter, part_limit, part_name};
use referrers::Referrers;
pub use referrers::WrittenReferrer;
pub use select::ImageQuery;

/// Where an archive comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// A file (or anything with a path, such as a named pipe), an OCI layout folder, or one
    /// image of a folder as `DIR:NAME`.
    Path(PathBuf),
    /// Standard input.
    Stdin,
}

/// Whether `path` is an archive file, the parts of a split one (`path.000`, …), an OCI
/// layout folder, or one image of a folder (`DIR:NAME`).
pub fn is_archive_path(path: &Path) -> bool {
    path.is_file()
        || parts::Parts::find(path).is_some()
        || folder::is_layout(path)
        || folder::split_named(path).is_some()
}

impl Input {
    /// How the input is named in messages.
    pub fn describe(&self) -> String {
        match self {
            Input::Path(path) => path.display().to_string(),
            Input::Stdin => "standard input".to_string(),
        }
    }
}

/// An opened archive: its entries and the images they make up.
pub struct Archive {
    name: String,
    entries: Entries,
    images: Vec<ArchiveImage>,
    /// Where the blobs of a legacy archive are (an OCI layout's are at their layout path).
    paths: HashMap<Digest, String>,
    /// What a delta archive leaves out.
    delta: Option<Delta>,
    omitted: layout::Omissions,
    /// What it lists as referrers of its images.
    referrers: Referrers,
    /// The ref name `DIR:NAME` picks, for a layout folder named so.
    picked: Option<String>,
}

impl Archive {
    /// Opens an archive. A seekable plain tar file is indexed without reading its layers,
    /// and an OCI layout folder is read in place; anything else (gzip, a pipe, standard
    /// input) is read once, each file spooled into `spool_dir` under its digest.
    pub fn open(input: &Input, spool_dir: &Path) -> Result<Archive> {
        let name = input.describe();
        let mut picked = None;
        let entries = match input {
            Input::Stdin if io::stdin().is_terminal() => {
                return Err(Error::Usage(
                    "standard input is a terminal: pipe an archive in, or name a file".into(),
                ));
            }
            Input::Stdin => Entries::spool(sniff(io::stdin().lock(), &name)?, spool_dir, &name)?,
            Input::Path(path) => match folder::split_named(path) {
                Some((dir, ref_name)) => {
                    picked = Some(ref_name);
                    Entries::folder(&dir, &name)?
                }
                None => open_path(path, spool_dir, &name)?,
            },
        };
        let delta = Delta::read(&entries, &name)?;
        let omitted = delta.as_ref().map(Delta::sizes).unwrap_or_default();
        let layout = layout::read(&entries, &name, &omitted)?;
        let referrers = Referrers::read(&entries, &name)?;
        Ok(Archive {
            name,
            entries,
            images: layout.images,
            paths: layout.paths,
            delta,
            omitted,
            referrers,
            picked,
        })
    }

    /// How the archive is named in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the archive leaves out, when it is a delta (`bundle --since`).
    pub fn delta(&self) -> Option<&Delta> {
        self.delta.as_ref()
    }

    /// The images in the archive.
    pub fn images(&self) -> &[ArchiveImage] {
        &self.images
    }

    /// One image of this archive as a copy source.
    pub fn source<'a>(&'a self, image: &'a ArchiveImage) -> ArchiveSource<'a> {
        ArchiveSource {
            archive: self,
            image: Cow::Borrowed(image),
        }
    }
}

/// Opens the archive at `path`, or the parts of a split one (`path.000`, …) when `path` is
/// not there.
fn open_path(path: &Path, spool_dir: &Path, name: &str) -> Result<Entries> {
    if let Some(parts) = parts::Parts::find(path) {
        let mut whole = parts.open();
        let mut magic = [0; 2];
        let n = read_up_to(&mut whole, &mut magic, name)?;
        if !is_gzip(&magic[..n]) {
            return Entries::index(Container::Parts(parts), name);
        }
        return Entries::spool(sniff(parts.open(), name)?, spool_dir, name);
    }
    let open_error = |e: io::Error| match e.kind() {
        io::ErrorKind::NotFound => Error::NotFound(format!("{name}: no such file")),
        _ => Error::io(format!("opening {name}"), e),
    };
    let mut file = File::open(path).map_err(open_error)?;
    let metadata = file.metadata().map_err(open_error)?;
    if metadata.is_dir() {
        return Entries::folder(path, name);
    }
    let is_regular = metadata.is_file();
    if is_regular {
        let mut magic = [0; 2];
        let n = read_up_to(&mut file, &mut magic, name)?;
        if !is_gzip(&magic[..n]) {
            return Entries::index(Container::File(path.to_path_buf()), name);
        }
        file.rewind()
            .map_err(|e| Error::io(format!("reading {name}"), e))?;
    }
    Entries::spool(sniff(file, name)?, spool_dir, name)
}

/// Wraps a stream in a gzip decoder when its first bytes say it is gzip.
fn sniff<'a>(mut stream: impl Read + 'a, name: &str) -> Result<Box<dyn Read + 'a>> {
    let mut magic = [0; 2];
    let n = read_up_to(&mut stream, &mut magic, name)?;
    let whole = Cursor::new(magic[..n].to_vec()).chain(stream);
    Ok(if is_gzip(&magic[..n]) {
        Box::new(MultiGzDecoder::new(BufReader::with_capacity(
            crate::digest::COPY_BUFFER,
            whole,
        )))
    } else {
        Box::new(whole)
    })
}

fn is_gzip(magic: &[u8]) -> bool {
    magic == [0x1f, 0x8b]
}

fn read_up_to(stream: &mut impl Read, buffer: &mut [u8], name: &str) -> Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match stream.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(format!("reading {name}"), e)),
        }
    }
    Ok(filled)
}

/// One image of an archive, as a copy source.
pub struct ArchiveSource<'a> {
    archive: &'a Archive,
    /// One the archive lists, or a referrer of one (named beside it).
    image: Cow<'a, ArchiveImage>,
}

impl ArchiveSource<'_> {
    /// Reads a manifest of the archive, checked against `descriptor`.
    fn read_manifest(&self, descriptor: &Descriptor) -> Result<RawManifest> {
        let archive = self.archive;
        layout::read_manifest(
            &archive.entries,
            &archive.name,
            descriptor,
            &archive.omitted,
        )
    }
}

impl Source for ArchiveSource<'_> {
    fn manifest(&self) -> Result<RawManifest> {
        Ok(self.image.manifest.clone())
    }

    fn open_blob(&self, blob: &Descriptor, offset: u64) -> Result<Box<dyn Read + Send + '_>> {
        if self.archive.omitted.contains_key(&blob.digest) {
            return Err(Error::NotFound(format!(
                "{}: {} is left out of this delta archive: it came with an earlier bundle, \
                 and the registry does not have it",
                self.archive.name, blob.digest
            )));
        }
        let path = (self.archive.paths.get(&blob.digest).cloned())
            .unwrap_or_else(|| blob.digest.layout_path());
        self.archive.entries.open(&path, offset)
    }

    fn describe(&self) -> String {
        self.archive.name.clone()
    }

    fn saved_layers(&self) -> bool {
        true
    }

    fn child_manifest(&self, entry: &Descriptor) -> Result<RawManifest> {
        self.read_manifest(entry)
    }

    /// What the archive's referrers entry lists for `subject`; nothing for an image without
    /// a name (as in the cache, whose referrers are kept beside the names).
    fn referrers(&self, subject: &Descriptor) -> Result<Found> {
        match self.image.names.is_empty() {
            true => Ok(Found::default()),
            false => (self.archive.referrers).of(&self.image.names, subject, |index| {
                self.read_manifest(index)
            }),
        }
    }

    fn referrer(&self, referrer: &Referrer) -> Result<Box<dyn Source + '_>> {
        let names = &self.image.names;
        let descriptor = (self.archive.referrers.descriptor(names, referrer)).ok_or_else(|| {
            Error::BadInput(format!(
                "{}: its referrer {referrer:?} is not in it",
                self.archive.name
            ))
        })?;
        let names = match referrer {
            Referrer::Listed(entry) => (names.iter())
                .map(|name| name.with_digest(entry.digest.clone()))
                .collect(),
            Referrer::Tagged(tag) => names
                .iter()
                .filter_map(|name| name.with_tag(tag).ok())
                .collect(),
        };
        let image = ArchiveImage {
            names,
            ref_names: Vec::new(),
            manifest: self.read_manifest(&descriptor)?,
        };
        Ok(Box::new(ArchiveSource {
            archive: self.archive,
            image: Cow::Owned(image),
        }))
    }

    fn holds(&self, entry: &Descriptor) -> bool {
        layout::holds(&self.archive.entries, entry, 0, &self.archive.omitted)
    }
}
