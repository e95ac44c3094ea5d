//! Whether a cache folder can be trusted, checked before anything in it is read or written:
//! a folder others can write (sticky or not), or one owned by another user that is not shared
//! through a group (setgid and group-writable), could hold whatever they planted there. A new
//! cache is made private (0700).

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;

use crate::create::{self, PRIVATE_DIR, Untrusted};
use crate::error::{Error, Result};

use super::Cache;

impl Cache {
    /// An error when the cache folder exists and cannot be trusted (exit 3).
    pub(super) fn check_trusted(&self) -> Result<()> {
        match fs::metadata(&self.root) {
            Ok(meta) => refuse_untrusted(&self.shown(), meta.mode(), meta.uid()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("reading {}", self.shown()), e)),
        }
    }

    /// Makes the cache folder when it is missing (private, its parents as the umask says),
    /// or checks that the one there can be trusted. Whether this call made it.
    pub(super) fn make_root(&self) -> Result<bool> {
        let root = &self.root;
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        match create::new_dir(root, PRIVATE_DIR) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.check_trusted().map(|()| false)
            }
            Err(e) => Err(Error::io(format!("creating {}", self.shown()), e)),
        }
    }
}

/// The refusal of a cache folder with `mode` owned by `owner`, if it is one to refuse.
fn refuse_untrusted(shown: &str, mode: u32, owner: u32) -> Result<()> {
    let permissions = mode & 0o7777;
    match create::untrusted_folder(mode, owner) {
        None => Ok(()),
        Some(Untrusted::EveryoneWrites) => Err(Error::BadInput(format!(
            "the cache {shown} is writable by every user (mode {permissions:04o}): anyone could \
             plant files in it; refusing to use it (make it private with chmod 700, or give \
             --cache-dir a folder of your own)"
        ))),
        Some(Untrusted::AnotherOwns) => Err(Error::BadInput(format!(
            "the cache {shown} belongs to another user (uid {owner}) and is not shared through \
             a group (setgid and group-writable, mode {permissions:04o}); refusing to use it \
             (give --cache-dir a folder of your own, or have its owner share it: chmod 2770)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_others_can_write_or_own_are_refused() {
        let me = create::current_uid();
        let other = me.wrapping_add(1);
        assert!(refuse_untrusted("c", 0o40700, me).is_ok());
        assert!(refuse_untrusted("c", 0o40755, me).is_ok());
        assert!(
            refuse_untrusted("c", 0o42770, other).is_ok(),
            "group-shared"
        );
        for (mode, owner) in [
            (0o40777, me),
            (0o41777, me),
            (0o42777, other),
            (0o40770, other),
            (0o40755, other),
        ] {
            let error = refuse_untrusted("c", mode, owner).unwrap_err();
            assert_eq!(error.exit_code(), 3, "{mode:o} {owner}: {error}");
        }
    }
}
