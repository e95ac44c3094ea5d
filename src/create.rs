//! The one place files and folders are created. Every file is created new (`O_CREAT|O_EXCL`)
//! and never through a link (`O_NOFOLLOW`); a temporary one gets an unpredictable name, so
//! nobody can plant a link where it will be; a folder is made new, failing when something is
//! already there. Modes are given by the caller (private things 0600 and 0700); the umask can
//! only take bits away.

use std::collections::hash_map::RandomState;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A file only its owner reads and writes.
pub const PRIVATE_FILE: u32 = 0o600;
/// A folder only its owner enters.
pub const PRIVATE_DIR: u32 = 0o700;
/// An ordinary file: what the umask leaves of 0666.
pub const ORDINARY_FILE: u32 = 0o666;
/// A file of a cache: never readable by others; by the group where the umask lets it (the
/// members of a group-shared cache read each other's blobs).
pub const SHAREABLE_FILE: u32 = 0o660;
/// A folder of a cache, as [`SHAREABLE_FILE`].
pub const SHAREABLE_DIR: u32 = 0o770;

/// Never open through a symbolic link; with it, a FIFO or device planted in a file's place
/// cannot hold the open (the libc constants are the ones for the target's architecture).
const NO_LINK_NO_WAIT: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK;

/// Creates the file `path`, which must not exist (not even as a link), for writing.
pub fn new_file(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(NO_LINK_NO_WAIT)
        .open(path)
}

/// Creates a new file for writing in `dir`, named `.<stem>.<random>`; returns it and its path.
pub fn new_temporary(dir: &Path, stem: &str, mode: u32) -> io::Result<(File, PathBuf)> {
    loop {
        let path = dir.join(format!(".{stem}.{:016x}", unpredictable()));
        match new_file(&path, mode) {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Creates a file in `dir` that has no name, for reading and writing by this process alone
/// (`O_TMPFILE`; where the file system lacks it, a new unpredictably named file removed at
/// once): gone when closed, whatever ends the process.
pub fn unnamed_file(dir: &Path) -> io::Result<File> {
    let mut open = OpenOptions::new();
    open.read(true).write(true).mode(PRIVATE_FILE);
    #[cfg(target_os = "linux")]
    let unnamed = (open.clone())
        .custom_flags(libc::O_TMPFILE | libc::O_EXCL)
        .open(dir);
    #[cfg(not(target_os = "linux"))]
    let unnamed: io::Result<File> = Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
    match unnamed {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR)) => loop {
            let path = dir.join(format!(".unnamed.{:016x}", unpredictable()));
            match open
                .create_new(true)
                .custom_flags(NO_LINK_NO_WAIT)
                .open(&path)
            {
                Ok(file) => return fs::remove_file(&path).map(|()| file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        },
        other => other,
    }
}

/// Makes the folder `path` (its parent must exist); fails when anything is already there.
pub fn new_dir(path: &Path, mode: u32) -> io::Result<()> {
    DirBuilder::new().mode(mode).create(path)
}

/// Makes a new folder in `dir` named `<stem>-<random>`; returns its path.
pub fn new_temporary_dir(dir: &Path, stem: &str, mode: u32) -> io::Result<PathBuf> {
    loop {
        let path = dir.join(format!("{stem}-{:016x}", unpredictable()));
        match new_dir(&path, mode) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Makes the folder `path` and any missing parents, each with `mode`; an existing folder is
/// kept as it is (for the program's own folders inside a trusted one).
pub fn dirs(path: &Path, mode: u32) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(mode).create(path)
}

/// Opens the regular file `path` for reading and appending, creating it when missing: a lock
/// or a partial file the program keeps across runs. A link or anything but a regular file in
/// its place is refused.
pub fn own_file(path: &Path, mode: u32) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(mode)
        .custom_flags(NO_LINK_NO_WAIT)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => not_followed(),
            _ => e,
        })?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// The error for a symbolic link found where the program keeps its own file.
fn not_followed() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "a symbolic link is there; it is never followed (remove it)",
    )
}

/// Whether `error` says a link or a strange file stood where the program keeps its own file:
/// a sign of tampering, reported as bad input.
pub fn is_planted(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::InvalidInput || error.raw_os_error() == Some(libc::ELOOP)
}

/// 64 bits nobody else can guess: SipHash keyed from the OS's randomness (std seeds each
/// process's `RandomState` keys with getrandom), over a counter so no two calls repeat.
fn unpredictable() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

/// Why a folder cannot be trusted with what is read and written in it: others could plant
/// files there, or swap what is in it for links.
#[derive(Debug, PartialEq, Eq)]
pub enum Untrusted {
    /// Every user can write it (sticky or not).
    EveryoneWrites,
    /// Another user owns it, and it is not shared through a group (setgid, group-writable).
    AnotherOwns,
}

/// Whether a folder of `mode` owned by `owner` is one to refuse, and why.
pub fn untrusted_folder(mode: u32, owner: u32) -> Option<Untrusted> {
    const SETGID: u32 = 0o2000;
    if mode & 0o002 != 0 {
        return Some(Untrusted::EveryoneWrites);
    }
    let group_shared = mode & SETGID != 0 && mode & 0o020 != 0;
    (owner != current_uid() && !group_shared).then_some(Untrusted::AnotherOwns)
}

/// The effective user id: the owner of what this process creates (geteuid cannot fail).
pub fn current_uid() -> u32 {
    // SAFETY: geteuid takes no argument, touches no memory and always succeeds.
    unsafe { libc::geteuid() }
}

/// Removes `path` when it is a folder of this user's (not a link), so it can be made new.
pub fn remove_own_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_dir() || meta.uid() != current_uid() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is there and is not a folder of this user's; remove it",
        ));
    }
    fs::remove_dir_all(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch;
    use std::io::Write;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn a_link_in_the_way_is_never_written_through() {
        let dir = scratch::dir("create-link");
        let precious = dir.join("precious");
        fs::write(&precious, b"keep").unwrap();
        let planted = dir.join("planted");
        symlink(&precious, &planted).unwrap();
        assert!(new_file(&planted, PRIVATE_FILE).is_err());
        let error = own_file(&planted, PRIVATE_FILE).unwrap_err();
        assert!(is_planted(&error), "{error}");
        let missing = dir.join("missing");
        symlink(dir.join("made-there"), dir.join("dangling")).unwrap();
        assert!(own_file(&dir.join("dangling"), PRIVATE_FILE).is_err());
        assert!(!missing.exists() && !dir.join("made-there").exists());
        assert_eq!(fs::read(&precious).unwrap(), b"keep");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temporaries_are_new_private_and_never_named_alike() {
        let dir = scratch::dir("create-temporary");
        let (mut one, first) = new_temporary(&dir, "index.json", PRIVATE_FILE).unwrap();
        let (_, second) = new_temporary(&dir, "index.json", PRIVATE_FILE).unwrap();
        assert_ne!(first, second);
        one.write_all(b"x").unwrap();
        let mode = fs::metadata(&first).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let made = new_temporary_dir(&dir, "run", PRIVATE_DIR).unwrap();
        assert!(
            new_dir(&made, PRIVATE_DIR).is_err(),
            "made new or not at all"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unnamed_file_is_read_back_and_leaves_no_name() {
        use std::io::{Read, Seek};
        let dir = scratch::dir("create-unnamed");
        let mut file = unnamed_file(&dir).unwrap();
        file.write_all(b"rows").unwrap();
        file.rewind().unwrap();
        let mut back = String::new();
        file.read_to_string(&mut back).unwrap();
        assert_eq!(back, "rows");
        assert!(scratch::names(&dir).is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
