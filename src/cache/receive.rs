//! Receiving one blob into a session: through a partial file, `tmp/partial/<hex>`, that
//! survives a failed attempt and a killed run, so the next attempt or the next run asks its
//! source only for what is missing. Resuming reads the partial bytes once more to restore the
//! hash; a fresh blob is hashed in the one pass that writes it. A partial file is not synced
//! when whole: the commit makes every staged blob durable at once before `blobs/` names it,
//! and kept bytes that turn out not to be the blob's (a power cut can leave a partial file's
//! tail unwritten) are fetched again, once, from the start.

use std::fs::{self, File, TryLockError};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::create::{self, SHAREABLE_DIR, SHAREABLE_FILE};
use crate::digest::{self, Digest, Hasher};
use crate::error::{Context, Error, Result};
use crate::manifest::Descriptor;
use crate::transfer::Open;
use crate::writeback::WriteBehind;

use super::Session;

impl Session<'_> {
    /// Receives `blob` into the staging directory, checked against its digest and size.
    pub(super) fn receive(&self, blob: &Descriptor, open: &mut Open<'_>) -> Result<()> {
        let dir = self.cache.partial_dir();
        create::dirs(&dir, SHAREABLE_DIR).context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(blob.digest.hex());
        // Never through a link: a partial file is the cache's own, never a file elsewhere.
        let file = create::own_file(&path, SHAREABLE_FILE)
            .context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            // Another process is receiving the same blob: take a private copy instead.
            Err(TryLockError::WouldBlock) => return self.receive_fresh(blob, &mut *open(0)?),
            Err(TryLockError::Error(e)) => {
                return Err(Error::io(format!("locking {}", path.display()), e));
            }
        }
        let held = file
            .metadata()
            .context(|| format!("reading {}", path.display()))?;
        let named = fs::symlink_metadata(&path);
        if !named.is_ok_and(|named| named.dev() == held.dev() && named.ino() == held.ino()) {
            // Another process received the blob and moved this file on before the lock was
            // ours: what the path names now is not what is locked.
            return self.receive_fresh(blob, &mut *open(0)?);
        }
        let (have, hasher) = resumed(&file, held.len(), blob, &path)?;
        let received = match fill(&file, &path, blob, (have, hasher), open) {
            // Bytes kept from an earlier run are not the blob's (a power cut can leave a
            // partial file's tail unwritten): start again from nothing, once, rather than
            // blame the source for them.
            Err(error) if have > 0 && error.exit_code() == 3 => {
                file.set_len(0)
                    .context(|| format!("emptying {}", path.display()))?;
                fill(&file, &path, blob, (0, Hasher::default()), open)
            }
            received => received,
        };
        if let Err(error) = received {
            // A source that lied about the blob leaves nothing worth resuming from.
            if error.exit_code() == 3 {
                let _ = fs::remove_file(&path);
            }
            return Err(error);
        }
        let staged = self.staged_path(&blob.digest);
        fs::rename(&path, &staged)
            .context(|| format!("moving {} to {}", path.display(), staged.display()))
    }

    /// Receives `blob` in one go into the staging directory, with no partial file.
    fn receive_fresh(&self, blob: &Descriptor, data: &mut dyn Read) -> Result<()> {
        let stored = digest::write_addressed(&self.staging, data)?;
        check(blob, &stored.digest, stored.size)
    }
}

/// Fills the partial file `file` (at `path`), which holds the first `have` bytes of
/// `blob` hashed into `hasher`, with the rest from `open`, and checks the whole. The bytes
/// are not synced here: the commit makes every staged blob durable at once before the
/// cache names it.
fn fill(
    file: &File,
    path: &Path,
    blob: &Descriptor,
    (have, mut hasher): (u64, Hasher),
    open: &mut Open<'_>,
) -> Result<()> {
    // A partial file that is already whole (salvaged from a killed run) needs no request.
    if have < blob.size {
        let mut data = open(have)?;
        let mut writing = WriteBehind::new(file, have);
        digest::append_hashed(&mut *data, &mut writing, path, &mut hasher)?;
    }
    let size = hasher.len();
    check(blob, &hasher.finish(), size)
}

/// The error for bytes that are not the blob they were sent as.
fn check(blob: &Descriptor, digest: &Digest, size: u64) -> Result<()> {
    if digest == &blob.digest && size == blob.size {
        return Ok(());
    }
    Err(Error::BadInput(format!(
        "received {size} bytes hashing to {digest}, expected {} bytes hashing to {}",
        blob.size, blob.digest
    )))
}

/// How much of `blob` the locked partial file at `path` (`held` bytes long) already holds,
/// hashed: nothing when it holds more than the blob's size (emptied, as nothing in it can be
/// trusted).
fn resumed(file: &File, held: u64, blob: &Descriptor, path: &Path) -> Result<(u64, Hasher)> {
    let mut hasher = Hasher::default();
    if held > blob.size {
        file.set_len(0)
            .context(|| format!("emptying {}", path.display()))?;
        return Ok((0, hasher));
    }
    if held > 0 {
        let mut prefix = File::open(path)
            .context(|| format!("reading {}", path.display()))?
            .take(held);
        digest::append_hashed(&mut prefix, &mut io::sink(), path, &mut hasher)?;
    }
    Ok((held, hasher))
}
