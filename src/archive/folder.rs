//! An OCI image layout folder (`skopeo copy … oci:DIR`, `oras cp --to-oci-layout`, umoci, crane,
//! regctl `ocidir://`) read as an archive: its files are read in place, never copied first, and
//! never through a link: a symbolic link anywhere under the folder is refused, so nothing
//! outside it is read. That is checked on the file opened, by where the kernel says it is
//! (`/proc/self/fd`), so a folder on the way swapped for a link while it is read is caught too.
//! `DIR:NAME` names one image of it by its ref name, as skopeo's `oci:DIR:NAME` does.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::inert::inert;

/// The file every OCI layout holds at its top, which tells it from any other folder.
const LAYOUT_MARKER: &str = "oci-layout";

/// Opens files without following a link in the last component, nor waiting on a pipe.
const NO_LINK_NO_WAIT: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK;

/// A layout folder, by its path as given (a link to the folder itself is the user's word).
#[derive(Debug)]
pub struct Folder {
    /// Where it is, every link on the way to it resolved: every file read is below it.
    root: PathBuf,
    /// How it is named in messages.
    name: String,
}

impl Folder {
    /// The layout folder at `root`: a folder with an `oci-layout` file.
    pub fn new(root: &Path, name: &str) -> Result<Folder> {
        let not_layout = || {
            Error::BadInput(format!(
                "{name} is a folder, but not an OCI layout: it has no {LAYOUT_MARKER} file"
            ))
        };
        let folder = Folder {
            root: root.canonicalize().map_err(|_| not_layout())?,
            name: name.to_string(),
        };
        match folder.open(LAYOUT_MARKER)? {
            Some(_) => Ok(folder),
            None => Err(not_layout()),
        }
    }

    /// The regular file at `path` (relative, already normalised: no `..`) with its size, or
    /// none when it is not there. A symbolic link on the way, or a file that is not a regular
    /// one, is refused (exit 3).
    pub fn open(&self, path: &str) -> Result<Option<(File, u64)>> {
        let refuse = |why: &str| {
            Error::BadInput(format!(
                "{}: '{}' {why}; no link is followed in a layout folder",
                self.name,
                inert(path)
            ))
        };
        // Links on the way are followed here, and refused below, once the file is open.
        let below = self.root.join(path);
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(NO_LINK_NO_WAIT)
            .open(&below);
        let file = match opened {
            Ok(file) => file,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(refuse("is a symbolic link"));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(self.error(path, e)),
        };
        // Where the file opened is: below the folder, or reached through a link.
        let real = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .map_err(|e| self.error(path, e))?;
        if real != below {
            return Err(refuse("goes through a symbolic link"));
        }
        let meta = file.metadata().map_err(|e| self.error(path, e))?;
        if !meta.is_file() {
            return Err(Error::BadInput(format!(
                "{}: '{}' is not a regular file",
                self.name,
                inert(path)
            )));
        }
        Ok(Some((file, meta.len())))
    }

    fn error(&self, path: &str, e: io::Error) -> Error {
        Error::io(format!("reading '{}' in {}", inert(path), self.name), e)
    }
}

/// Whether `path` is an OCI layout folder (one with an `oci-layout` file).
pub fn is_layout(path: &Path) -> bool {
    path.join(LAYOUT_MARKER).is_file()
}

/// `DIR:NAME` split into the layout folder and the ref name, when `path` itself is not there
/// and some `:` in it ends the path of a layout folder: the first such, as skopeo reads
/// `oci:DIR:NAME` (so NAME may hold a `:`, as `app:v1` does), falling back to a later one for
/// a folder whose own name holds a `:`.
pub fn split_named(path: &Path) -> Option<(PathBuf, String)> {
    if path.symlink_metadata().is_ok() {
        return None;
    }
    let text = path.to_str()?;
    (text.match_indices(':'))
        .map(|(at, _)| (&text[..at], &text[at + 1..]))
        .find(|(dir, name)| !dir.is_empty() && !name.is_empty() && is_layout(Path::new(dir)))
        .map(|(dir, name)| (PathBuf::from(dir), name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn files_are_found_in_place_and_links_refused() {
        let dir = crate::scratch::dir("archive-folder-open");
        fs::write(dir.join(LAYOUT_MARKER), b"{}").unwrap();
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("blobs/sha256/aa"), b"abc").unwrap();
        symlink(dir.join("blobs/sha256/aa"), dir.join("blobs/sha256/bb")).unwrap();
        symlink("sha256", dir.join("blobs/linked")).unwrap();
        let folder = Folder::new(&dir, "f").unwrap();
        assert_eq!(
            folder.open("blobs/sha256/aa").unwrap().map(|f| f.1),
            Some(3)
        );
        assert!(folder.open("blobs/sha256/cc").unwrap().is_none());
        assert!(folder.open("oci-layout/x").unwrap().is_none());
        assert!(folder.open("blobs/sha256/bb").is_err(), "a link");
        assert!(folder.open("blobs/linked/aa").is_err(), "through a link");
        assert!(folder.open("blobs").is_err(), "a folder is no file");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dir_name_splits_at_the_first_colon_that_ends_a_layout() {
        let dir = crate::scratch::dir("archive-folder-split");
        let layout = dir.join("a:b");
        fs::create_dir_all(&layout).unwrap();
        fs::write(layout.join(LAYOUT_MARKER), b"{}").unwrap();
        let named = |text: &str| split_named(Path::new(&format!("{}/{text}", dir.display())));
        assert_eq!(named("a:b:app:v1"), Some((layout.clone(), "app:v1".into())));
        assert_eq!(named("a:b"), None, "the folder itself is there");
        assert_eq!(named("a:b:"), None, "no name");
        assert_eq!(named("c:app"), None, "no such folder");
        assert!(!is_layout(&dir) && is_layout(&layout));
        fs::remove_dir_all(&dir).unwrap();
    }
}
