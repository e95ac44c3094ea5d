//! The files of an archive and where their bytes are: found by indexing the headers of a
//! seekable tar file, spooled once, named by digest, from a tar stream, or read in place from
//! an OCI layout folder. Entry names and links are checked so that nothing can point outside
//! the archive.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::folder::Folder;
use super::headers::Watched;
use super::parts::Parts;

use crate::digest::{self, Addressed, Digest};
use crate::error::{Error, Result};
use crate::inert::inert;
use crate::manifest::MAX_MANIFEST_SIZE;

/// How many links may be followed to reach a file.
const MAX_LINK_HOPS: usize = 40;

/// Where a file's bytes are.
enum Location {
    /// At `offset` in the archive file, `size` bytes long.
    Span { offset: u64, size: u64 },
    /// In the spool directory, under the name of its digest.
    Spooled(Addressed),
}

/// Where an archive's bytes are read from.
enum Store {
    /// A seekable archive: spans are read from it.
    Archive(Container),
    /// The spool directory that spooled files are in.
    Spool(PathBuf),
    /// An OCI layout folder: each file is found when asked for, and read where it is.
    Folder(Folder),
}

/// A file found: listed when the archive was indexed or spooled, or opened in a folder (with
/// its size).
enum Found<'a> {
    Listed(&'a Location),
    InFolder(File, u64),
}

/// A seekable, uncompressed archive: one file, or the numbered parts of a split one.
#[derive(Clone, Debug)]
pub enum Container {
    File(PathBuf),
    Parts(Parts),
}

/// What a seekable archive is read through.
trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

impl Container {
    fn open(&self) -> io::Result<Box<dyn ReadSeek>> {
        Ok(match self {
            Container::File(path) => Box::new(File::open(path)?),
            Container::Parts(parts) => Box::new(parts.open()),
        })
    }
}

/// The regular files and links of one archive.
pub struct Entries {
    name: String,
    store: Store,
    files: HashMap<String, Location>,
    links: HashMap<String, String>,
}

impl Entries {
    /// Indexes the headers of a seekable, uncompressed tar (a file, or the parts of one)
    /// without reading file data.
    pub fn index(container: Container, name: &str) -> Result<Entries> {
        let mut reader = container.open().map_err(|e| bad_archive(name, e))?;
        let file_len = reader
            .seek(SeekFrom::End(0))
            .and_then(|len| reader.rewind().map(|()| len))
            .map_err(|e| bad_archive(name, e))?;
        let mut entries = Entries::new(name, Store::Archive(container));
        let mut archive = tar::Archive::new(Watched::new(reader, name));
        for entry in archive
            .entries_with_seek()
            .map_err(|e| bad_archive(name, e))?
        {
            let entry = entry.map_err(|e| bad_archive(name, e))?;
            let offset = entry.raw_file_position();
            let size = entry.size();
            if offset.saturating_add(size) > file_len {
                let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                return Err(Error::BadInput(format!(
                    "{name}: the archive is cut short: entry '{path}' needs {size} bytes at \
                     offset {offset}, but the file ends at {file_len}"
                )));
            }
            if let Some(path) = entries.record(&entry)? {
                entries.files.insert(path, Location::Span { offset, size });
            }
        }
        entries.check_not_empty()?;
        Ok(entries)
    }

    /// Reads a tar stream once, storing every regular file in `spool_dir` under its digest.
    pub fn spool(stream: impl Read, spool_dir: &Path, name: &str) -> Result<Entries> {
        let mut entries = Entries::new(name, Store::Spool(spool_dir.to_path_buf()));
        let mut archive = tar::Archive::new(Watched::new(stream, name));
        for entry in archive.entries().map_err(|e| bad_archive(name, e))? {
            let mut entry = entry.map_err(|e| bad_archive(name, e))?;
            if let Some(path) = entries.record(&entry)? {
                let mut checked = Checked {
                    inner: &mut entry,
                    name,
                };
                let stored = digest::write_addressed(spool_dir, &mut checked)?;
                entries.files.insert(path, Location::Spooled(stored));
            }
        }
        entries.check_not_empty()?;
        Ok(entries)
    }

    /// The files of the OCI layout folder at `root`, found when asked for (nothing is read
    /// before then).
    pub fn folder(root: &Path, name: &str) -> Result<Entries> {
        Ok(Entries::new(name, Store::Folder(Folder::new(root, name)?)))
    }

    fn new(name: &str, store: Store) -> Entries {
        Entries {
            name: name.to_string(),
            store,
            files: HashMap::new(),
            links: HashMap::new(),
        }
    }

    /// Records one entry: its name is checked and a link's target resolved. Returns the
    /// entry's path when it is a regular file, whose location the caller then inserts.
    fn record<R: Read>(&mut self, entry: &tar::Entry<'_, R>) -> Result<Option<String>> {
        let path = entry_path(&self.name, entry)?;
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::Regular | EntryType::Continuous) {
            return Ok(Some(path));
        }
        if kind == EntryType::Symlink || kind == EntryType::Link {
            let target = entry.link_name_bytes().unwrap_or_default();
            let target = String::from_utf8_lossy(&target);
            let base = if kind == EntryType::Symlink {
                parent(&path)
            } else {
                ""
            };
            let resolved = resolve_relative(base, &target).map_err(|why| {
                Error::BadInput(format!(
                    "{}: link '{}' -> '{}' {why}",
                    self.name,
                    inert(&path),
                    inert(&target)
                ))
            })?;
            self.links.insert(path, resolved);
        }
        Ok(None)
    }

    fn check_not_empty(&self) -> Result<()> {
        if self.files.is_empty() && self.links.is_empty() {
            return Err(Error::BadInput(format!(
                "{}: the file is empty or not a tar archive",
                self.name
            )));
        }
        Ok(())
    }

    /// Whether the archive holds `path` (a file, or a link to one). In a folder, a link is
    /// there all the same, so that reading it says why it is refused.
    pub fn contains(&self, path: &str) -> bool {
        match &self.store {
            Store::Folder(folder) => {
                resolve_relative("", path).is_ok_and(|path| !matches!(folder.open(&path), Ok(None)))
            }
            _ => self.locate(path).is_ok(),
        }
    }

    /// The size in bytes of the file at `path`.
    pub fn size(&self, path: &str) -> Result<u64> {
        Ok(match self.locate(path)? {
            Found::Listed(Location::Span { size, .. }) => *size,
            Found::Listed(Location::Spooled(stored)) => stored.size,
            Found::InFolder(_, size) => size,
        })
    }

    /// Checks that the file at `path` has the expected digest, when that is already known
    /// (spooled entries); a file read from a seekable archive or a folder is checked as it is
    /// copied.
    pub fn verify(&self, path: &str, expected: &Digest) -> Result<()> {
        match self.locate(path)? {
            Found::Listed(Location::Spooled(stored)) if &stored.digest != expected => {
                Err(Error::BadInput(format!(
                    "{}: '{path}' hashes to {}, but the manifest says {expected}",
                    self.name, stored.digest
                )))
            }
            _ => Ok(()),
        }
    }

    /// A reader of the bytes of the file at `path`, from byte `skip` on.
    pub fn open(&self, path: &str, skip: u64) -> Result<Box<dyn Read + Send>> {
        let location = self.locate(path)?;
        let reader: Box<dyn Read + Send> = match (location, &self.store) {
            (Found::Listed(Location::Span { offset, size }), Store::Archive(container)) => {
                let mut file = container.open().map_err(|e| bad_archive(&self.name, e))?;
                file.seek(SeekFrom::Start(offset + skip.min(*size)))
                    .map_err(|e| bad_archive(&self.name, e))?;
                Box::new(file.take(size.saturating_sub(skip)))
            }
            (Found::Listed(Location::Spooled(stored)), Store::Spool(dir)) => {
                let spooled = dir.join(stored.digest.hex());
                let mut file = File::open(&spooled)
                    .map_err(|e| Error::io(format!("opening {}", spooled.display()), e))?;
                file.seek(SeekFrom::Start(skip))
                    .map_err(|e| Error::io(format!("reading {}", spooled.display()), e))?;
                Box::new(file)
            }
            (Found::InFolder(mut file, size), _) => {
                file.seek(SeekFrom::Start(skip.min(size)))
                    .map_err(|e| Error::io(format!("reading {}", self.name), e))?;
                Box::new(file.take(size.saturating_sub(skip)))
            }
            _ => {
                return Err(Error::io(
                    format!("reading {}", self.name),
                    io::Error::other("an entry is not where its kind of archive keeps it"),
                ));
            }
        };
        Ok(Box::new(Checked {
            inner: reader,
            name: self.name.clone(),
        }))
    }

    /// The whole file at `path`, which must be a manifest-sized file (configs, manifests,
    /// `index.json`).
    pub fn read_small(&self, path: &str) -> Result<Vec<u8>> {
        let size = self.size(path)?;
        if size > MAX_MANIFEST_SIZE {
            return Err(Error::BadInput(format!(
                "{}: '{path}' is {size} bytes, more than the {MAX_MANIFEST_SIZE} allowed for \
                 manifests and configs",
                self.name
            )));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        // One byte past the size found tells a file that grew since (in a folder) from one
        // that is whole, without reading more than that.
        (self.open(path, 0)?.take(size + 1))
            .read_to_end(&mut bytes)
            .map_err(|e| {
                Error::from_io(format!("reading '{}' from {}", inert(path), self.name), e)
            })?;
        if bytes.len() as u64 != size {
            let changed = match bytes.len() as u64 > size {
                true => "grew while it was read",
                false => "is cut short",
            };
            return Err(Error::BadInput(format!(
                "{}: '{}' {changed}",
                self.name,
                inert(path)
            )));
        }
        Ok(bytes)
    }

    /// Follows links from `path` to a file (in a folder, none is followed).
    fn locate(&self, path: &str) -> Result<Found<'_>> {
        let mut current = resolve_relative("", path).map_err(|why| {
            Error::BadInput(format!("{}: path '{}' {why}", self.name, inert(path)))
        })?;
        let missing = |place: &str| {
            Error::BadInput(format!(
                "{}: '{}' is not in the {place}",
                self.name,
                inert(path)
            ))
        };
        if let Store::Folder(folder) = &self.store {
            let (file, size) = folder.open(&current)?.ok_or_else(|| missing("folder"))?;
            return Ok(Found::InFolder(file, size));
        }
        for _ in 0..MAX_LINK_HOPS {
            if let Some(location) = self.files.get(&current) {
                return Ok(Found::Listed(location));
            }
            match self.links.get(&current) {
                Some(target) => current = target.clone(),
                None => return Err(missing("archive")),
            }
        }
        Err(Error::BadInput(format!(
            "{}: '{}' is a loop of links",
            self.name,
            inert(path)
        )))
    }
}

/// The entry's name, normalised, refusing absolute paths and `..`.
fn entry_path<R: Read>(name: &str, entry: &tar::Entry<'_, R>) -> Result<String> {
    let raw = entry.path_bytes();
    let raw = std::str::from_utf8(&raw)
        .map_err(|_| Error::BadInput(format!("{name}: an entry name is not UTF-8")))?;
    let refuse = |why: &str| Error::BadInput(format!("{name}: entry '{}' {why}", inert(raw)));
    if raw.starts_with('/') {
        return Err(refuse("has an absolute path"));
    }
    if raw.split('/').any(|part| part == "..") {
        return Err(refuse("escapes the archive with '..'"));
    }
    resolve_relative("", raw).map_err(|why| refuse(&why))
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(parent, _)| parent)
}

/// Resolves `target` against the directory `base`, staying inside the archive.
fn resolve_relative(base: &str, target: &str) -> Result<String, String> {
    if target.starts_with('/') {
        return Err("points outside the archive (absolute path)".into());
    }
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("points outside the archive".into());
                }
            }
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

/// Reports read errors as bad input in the named archive, so that a cut-short archive exits 3.
struct Checked<R, N> {
    inner: R,
    name: N,
}

impl<R: Read, N: AsRef<str>> Read for Checked<R, N> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buffer).map_err(|e| {
            if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
                e
            } else {
                bad_archive(self.name.as_ref(), e).into_io()
            }
        })
    }
}

/// An error reading the archive `name`, as bad input. The tar crate reports truncation and
/// corrupt headers in several wordings (one quoting the corrupt bytes); each becomes one
/// plain sentence.
fn bad_archive(name: &str, error: io::Error) -> Error {
    if error.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        return Error::from_io(name, error);
    }
    let text = error.to_string();
    let truncated = error.kind() == io::ErrorKind::UnexpectedEof
        || text.contains("unexpected EOF")
        || text.contains("failed to read entire block");
    if truncated {
        return Error::BadInput(format!(
            "{name}: the archive is cut short (unexpected end of file)"
        ));
    }
    if error.kind() == io::ErrorKind::NotFound {
        return Error::NotFound(format!("{name}: no such file"));
    }
    if text.contains("cksum") || text.contains("checksum") || text.contains("numeric field") {
        return Error::BadInput(format!(
            "{name}: not a valid tar archive (a header is corrupt)"
        ));
    }
    Error::BadInput(format!("{name}: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_targets_resolve_inside_the_archive() {
        assert_eq!(
            resolve_relative("b", "../a/layer.tar").unwrap(),
            "a/layer.tar"
        );
        assert_eq!(resolve_relative("", "./x/./y").unwrap(), "x/y");
        assert_eq!(resolve_relative("a/b", "../../c").unwrap(), "c");
    }

    #[test]
    fn targets_that_leave_the_archive_are_refused() {
        assert!(resolve_relative("a", "../../etc/passwd").is_err());
        assert!(resolve_relative("", "../x").is_err());
        assert!(resolve_relative("a", "/etc/passwd").is_err());
    }

    #[test]
    fn parent_of_a_top_level_entry_is_the_root() {
        assert_eq!(parent("layer.tar"), "");
        assert_eq!(parent("a/b/layer.tar"), "a/b");
    }
}
