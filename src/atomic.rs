//! The one way a file is replaced whole: written into a new, unpredictably named temporary
//! file (made by [`crate::create::new_temporary`], so never through a planted link), synced,
//! then renamed over the target, so a reader sees the old content or the new, never a part.
//! On any failure the temporary file is removed; nothing is left behind.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use crate::create;
use crate::error::{Error, Result};

/// What [`replace`] writes, and how.
pub struct Replace<'a> {
    /// The file replaced.
    pub path: &'a Path,
    /// The folder the temporary file is made in, on the same file system as `path`; `None`
    /// for the folder of `path` itself.
    pub temp_dir: Option<&'a Path>,
    /// The mode the file is created with (the umask can only take bits away).
    pub mode: u32,
    /// Sync the file before the rename and its folder after; `false` leaves making it durable
    /// to a later [`crate::writeback::sync_file_system`] over a whole batch.
    pub sync: bool,
    /// How `path` is named in errors (`--digestfile FILE`, say).
    pub shown: &'a str,
}

impl<'a> Replace<'a> {
    /// Replaces `path` through a temporary file beside it, synced, named `path` in errors.
    pub fn beside(path: &'a Path, mode: u32, shown: &'a str) -> Replace<'a> {
        Replace {
            path,
            temp_dir: None,
            mode,
            sync: true,
            shown,
        }
    }
}

/// Replaces the file `to.path` with what `write` puts into the new temporary file; returns
/// what `write` returned. A failure of `write` is returned as it is; one of creating,
/// syncing or renaming says which file. Either way the temporary file is gone.
pub fn replace<T>(to: Replace<'_>, write: impl FnOnce(&mut File) -> Result<T>) -> Result<T> {
    let failed = |e: io::Error| Error::io(format!("writing {}", to.shown), e);
    let name = (to.path.file_name())
        .ok_or_else(|| Error::Usage(format!("{}: not a file name", to.shown)))?
        .to_string_lossy();
    let folder = (to.path.parent())
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = to.temp_dir.unwrap_or(folder);
    let (mut file, temporary) = create::new_temporary(dir, &name, to.mode).map_err(failed)?;
    let written = write(&mut file).and_then(|written| {
        let sync = || match to.sync {
            true => file.sync_all(),
            false => Ok(()),
        };
        sync().map_err(failed)?;
        drop(file);
        fs::rename(&temporary, to.path).map_err(failed)?;
        Ok(written)
    });
    let written = written.inspect_err(|_| {
        let _ = fs::remove_file(&temporary);
    })?;
    if to.sync {
        // The rename is done: what fails now leaves the new content in place, not yet durable.
        File::open(folder)
            .and_then(|dir| dir.sync_all())
            .map_err(failed)?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Context;
    use crate::scratch;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_file_is_replaced_whole_with_its_mode_and_nothing_else_is_left() {
        let dir = scratch::dir("atomic-whole");
        let path = dir.join("config.json");
        fs::write(&path, "old and longer than the new").unwrap();
        let to = Replace::beside(&path, create::PRIVATE_FILE, "config.json");
        let answer = replace(to, |file| {
            file.write_all(b"new").map(|()| 42).context(|| "writing")
        })
        .unwrap();
        assert_eq!(answer, 42);
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(scratch::names(&dir), ["config.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failure_anywhere_keeps_the_old_file_and_leaves_no_temporary_one() {
        let dir = scratch::dir("atomic-failure");
        let path = dir.join("digests");
        fs::write(&path, "old").unwrap();
        let to = Replace::beside(&path, create::ORDINARY_FILE, "digests");
        let error = replace(to, |file| -> Result<()> {
            file.write_all(b"half").context(|| "writing")?;
            Err(Error::BadInput("cut off".into()))
        })
        .unwrap_err();
        assert_eq!(error.to_string(), "cut off");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(scratch::names(&dir), ["digests"]);

        // The rename fails: a folder that is not empty stands where the file goes.
        let taken = dir.join("taken");
        fs::create_dir_all(taken.join("inside")).unwrap();
        let to = Replace::beside(&taken, create::ORDINARY_FILE, "taken");
        let error = replace(to, |file| file.write_all(b"new").context(|| "writing")).unwrap_err();
        assert!(error.to_string().starts_with("writing taken"), "{error}");
        assert_eq!(scratch::names(&dir), ["digests", "taken"]);

        // The temporary file goes to another folder of the same file system when asked.
        let elsewhere = dir.join("tmp");
        fs::create_dir(&elsewhere).unwrap();
        let to = Replace {
            temp_dir: Some(&elsewhere),
            sync: false,
            ..Replace::beside(&path, create::ORDINARY_FILE, "digests")
        };
        replace(to, |file| file.write_all(b"via tmp").context(|| "writing")).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"via tmp");
        assert!(scratch::names(&elsewhere).is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
