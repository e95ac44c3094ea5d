//! `memo.json`: what the cache remembers about blobs it may not hold. For each uncompressed
//! layer pushed compressed, the compressed blob's descriptor, so the next push of that layer is
//! a `HEAD`, not a recompression (and where it is missing, one `PUT` with the digest up front);
//! with the gzip level it was made at, so a push at another level can say it keeps the form
//! the registry has; for each blob, the repositories (`registry/repository`) known to hold it, so a push to a
//! sibling repository can mount it instead of uploading it (a copy between registries learns
//! these too, where the cache exists: the next run's copy to another repository of that
//! registry mounts what the last one uploaded).
//!
//! A memo entry is a hint that decides a skip or a mount, so only a memo this user wrote is
//! believed: a `memo.json` that is a link, belongs to another user (a member of a group-shared
//! cache, say) or that others can write is read as empty, and replaced by this user's at the
//! next save. It is written readable by its owner only.
//!
//! A run reads the file once, when it first needs it, keeps what it learns in memory, and
//! writes it once at the end of each copy, merged under `index.lock` with what other processes
//! wrote meanwhile. `clean` drops what is about blobs the cache no longer holds.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::create::{self, PRIVATE_FILE, SHAREABLE_DIR};
use crate::digest::Digest;
use crate::error::{Context, Error, Result};
use crate::manifest::Descriptor;
use crate::reference::RepositoryName;
use crate::transfer::BlobMemo;

use super::{Cache, INDEX_BUSY, INDEX_LOCK, index, open_lock};

/// The file's content.
#[derive(Default, Serialize, Deserialize)]
struct Memo {
    #[serde(default)]
    compressed: BTreeMap<Digest, Descriptor>,
    /// The gzip level each compressed form was made at, by its digest (none for a form
    /// remembered before levels were).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    levels: BTreeMap<Digest, u32>,
    #[serde(default)]
    holders: BTreeMap<Digest, BTreeSet<String>>,
}

impl Memo {
    /// Adds what `other` knows; whether anything was new.
    fn merge(&mut self, other: &Memo) -> bool {
        let mut changed = false;
        for (uncompressed, compressed) in &other.compressed {
            changed |= self
                .compressed
                .insert(uncompressed.clone(), compressed.clone())
                .as_ref()
                != Some(compressed);
        }
        for (form, level) in &other.levels {
            changed |= self.levels.insert(form.clone(), *level) != Some(*level);
        }
        for (digest, holders) in &other.holders {
            let known = self.holders.entry(digest.clone()).or_default();
            for holder in holders {
                changed |= known.insert(holder.clone());
            }
        }
        changed
    }

    /// Forgets what it says about the blobs `gone`: their compressed forms, and who holds
    /// them or those forms. Whether anything went.
    fn forget(&mut self, gone: &BTreeSet<Digest>) -> bool {
        let before = (self.compressed.len(), self.holders.len());
        let forms: BTreeSet<Digest> = (gone.iter())
            .filter_map(|digest| self.compressed.remove(digest))
            .map(|form| form.digest)
            .collect();
        self.holders
            .retain(|digest, _| !gone.contains(digest) && !forms.contains(digest));
        self.levels.retain(|form, _| !forms.contains(form));
        before != (self.compressed.len(), self.holders.len())
    }
}

/// The memo as one run uses it: read once, added to in memory, written by [`BlobMemo::save`].
pub struct MemoStore {
    cache: Cache,
    /// The file as read, with what this run learned; `None` until first needed.
    known: Mutex<Option<Memo>>,
    /// What this run learned and has not written yet.
    learned: Mutex<Memo>,
}

impl Cache {
    fn memo_path(&self) -> std::path::PathBuf {
        self.root.join("memo.json")
    }

    /// The memo of this cache, for one run; an error when the cache cannot be trusted.
    pub fn memo(&self) -> Result<MemoStore> {
        self.check_trusted()?;
        Ok(MemoStore {
            cache: Cache::new(self.root.clone()).with_progress(self.progress),
            known: Mutex::new(None),
            learned: Mutex::new(Memo::default()),
        })
    }

    /// The memo as it is; one that is unreadable, or not this user's own, is treated as empty
    /// (it only saves work).
    fn read_memo(&self) -> Memo {
        let mut bytes = Vec::new();
        open_own(&self.memo_path())
            .and_then(|mut file| file.read_to_end(&mut bytes))
            .ok()
            .and_then(|_| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Changes the memo file; the caller holds `index.lock`.
    fn update_memo_locked(&self, change: impl FnOnce(&mut Memo) -> bool) -> Result<()> {
        let mut memo = self.read_memo();
        if !change(&mut memo) {
            return Ok(());
        }
        create::dirs(&self.tmp_dir(), SHAREABLE_DIR)
            .context(|| format!("creating {}", self.tmp_dir().display()))?;
        let bytes = serde_json::to_vec_pretty(&memo)
            .map_err(|e| Error::io("encoding memo.json", io::Error::other(e)))?;
        let path = self.memo_path();
        index::write_atomically(&path, &bytes, &self.tmp_dir(), PRIVATE_FILE)
    }

    /// Drops what the memo says about the blobs `gone` (removed from the cache); the caller
    /// holds `index.lock`.
    pub(super) fn forget_in_memo_locked(&self, gone: &BTreeSet<Digest>) -> Result<()> {
        if gone.is_empty() || !self.memo_path().exists() {
            return Ok(());
        }
        self.update_memo_locked(|memo| memo.forget(gone))
    }
}

impl MemoStore {
    /// Whether the cache it belongs to exists: a copy between registries, which writes
    /// nothing else to disk, remembers where its blobs landed only in a cache that does.
    pub fn has_cache(&self) -> bool {
        self.cache.root.is_dir()
    }

    /// The memo as known to this run, read from the file the first time.
    fn known(&self) -> MutexGuard<'_, Option<Memo>> {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.is_none() {
            *known = Some(self.cache.read_memo());
        }
        known
    }

    /// Records something learned, in memory now and in the file at the next save.
    fn learn(&self, what: impl Fn(&mut Memo) -> bool) {
        let mut known = self.known();
        if let Some(known) = known.as_mut()
            && what(known)
        {
            what(&mut self.learned.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }
}

impl BlobMemo for MemoStore {
    fn compressed(&self, uncompressed: &Digest) -> Option<Descriptor> {
        (self.known().as_ref()).and_then(|memo| memo.compressed.get(uncompressed).cloned())
    }

    fn compressed_at(&self, compressed: &Digest) -> Option<u32> {
        (self.known().as_ref()).and_then(|memo| memo.levels.get(compressed).copied())
    }

    fn remember_compressed(
        &self,
        uncompressed: &Digest,
        compressed: &Descriptor,
        level: Option<u32>,
    ) -> Result<()> {
        self.learn(|memo| {
            let form = memo
                .compressed
                .insert(uncompressed.clone(), compressed.clone());
            let level = level.filter(|&level| {
                memo.levels.insert(compressed.digest.clone(), level) != Some(level)
            });
            form.as_ref() != Some(compressed) || level.is_some()
        });
        Ok(())
    }

    fn holders(&self, digest: &Digest) -> Vec<RepositoryName> {
        (self.known().as_ref())
            .and_then(|memo| memo.holders.get(digest))
            .map(|holders| {
                holders
                    .iter()
                    .filter_map(|h| RepositoryName::parse(h))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn remember_holder(&self, digest: &Digest, repository: &RepositoryName) -> Result<()> {
        self.learn(|memo| {
            memo.holders
                .entry(digest.clone())
                .or_default()
                .insert(repository.to_string())
        });
        Ok(())
    }

    /// Writes what this run learned, merged with the file as it is now, under `index.lock`.
    fn save(&self) -> Result<()> {
        let mut learned = self.learned.lock().unwrap_or_else(|e| e.into_inner());
        if learned.compressed.is_empty() && learned.holders.is_empty() {
            return Ok(());
        }
        let cache = &self.cache;
        cache.make_root()?;
        let lock = open_lock(&cache.root.join(INDEX_LOCK))?;
        cache.wait_for(&lock, INDEX_LOCK, false, INDEX_BUSY)?;
        cache.update_memo_locked(|memo| memo.merge(&learned))?;
        *learned = Memo::default();
        Ok(())
    }
}

/// Opens `path` for reading when it is a regular file (not a link) of this user's that nobody
/// else can write.
fn open_own(path: &std::path::Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.uid() != create::current_uid() || meta.mode() & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "not this user's own memo",
        ));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn digest(n: u8) -> Digest {
        Digest::of(&[n])
    }

    #[test]
    fn what_one_run_learns_is_merged_with_what_another_wrote() {
        let root = std::env::temp_dir().join(format!("dip-unit-memo-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let cache = Cache::new(root.clone());
        let (one, two) = (cache.memo().unwrap(), cache.memo().unwrap());
        let gzip = Descriptor::new("application/vnd.oci.image.layer.v1.tar+gzip", digest(9), 9);
        one.remember_compressed(&digest(1), &gzip, Some(6)).unwrap();
        let holder = |text: &str| RepositoryName::parse(text).unwrap();
        two.remember_holder(&digest(2), &holder("r/a")).unwrap();
        assert!(
            !cache.memo_path().exists(),
            "nothing is written before a save"
        );
        one.save().unwrap();
        two.save().unwrap();
        let three = cache.memo().unwrap();
        assert_eq!(three.compressed(&digest(1)), Some(gzip));
        assert_eq!(three.compressed_at(&digest(9)), Some(6));
        assert_eq!(three.holders(&digest(2)), [holder("r/a")]);
        three.remember_holder(&digest(9), &holder("r/b")).unwrap();
        three.save().unwrap();
        cache
            .forget_in_memo_locked(&BTreeSet::from([digest(1)]))
            .unwrap();
        let four = cache.memo().unwrap();
        assert_eq!(four.compressed(&digest(1)), None);
        assert_eq!(four.compressed_at(&digest(9)), None, "its level goes too");
        assert!(
            four.holders(&digest(9)).is_empty(),
            "its compressed form's holders go too"
        );
        assert_eq!(four.holders(&digest(2)), [holder("r/a")]);
        fs::remove_dir_all(&root).unwrap();
    }
}
