//! The local cache as a destination: content-addressed blobs, raw manifests and an index.
//!
//! ```text
//! blobs/sha256/<hex>                  every blob once, shared by all images
//! manifests/<repository>/<reference>  raw manifest bytes
//! index.json                          see index.rs
//! tmp/                                one staging directory per running command
//! gc.lock, index.lock                 see Cache::begin and Session::commit
//! ```
//!
//! A command writes blobs into its staging directory, each checked against its digest and size,
//! and commits them (renames into `blobs/`, writes the manifests) only once every blob of every
//! image has arrived, then writes the index once for all the names it stored, so bad input
//! leaves the cache as it was and a thousand names cost one index write.

mod gc;
mod index;
mod memo;
mod receive;
mod referrers;
mod source;
mod trust;

use std::collections::HashMap;
use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::create::{self, SHAREABLE_DIR, SHAREABLE_FILE};
use crate::digest::Digest;
use crate::error::{Context, Error, Result};
use crate::manifest::{self, Descriptor, RawManifest};
use crate::progress::{Progress, Verbosity};
use crate::reference::Reference;
use crate::retry::Headway;
use crate::transfer::{self, Destination, Open, Stored};
use crate::writeback;

pub use gc::{Report, Sweep};
pub use index::{ImageRecord, Index, is_id, now_rfc3339, rfc3339};
pub use memo::MemoStore;
pub use source::CachedImage;

/// The folder of `tmp/` that holds partly received blobs.
const PARTIAL_DIR: &str = "partial";
/// The lock every writing command holds shared while it runs, and `clean` exclusive.
const GC_LOCK: &str = "gc.lock";
/// The lock the index is written under (and the memo merged).
const INDEX_LOCK: &str = "index.lock";

/// A cache directory.
pub struct Cache {
    root: PathBuf,
    /// Where a wait for another command's lock is said.
    progress: Progress,
}

/// How long a lock is waited for before the wait is said.
const LOCK_PATIENCE: Duration = Duration::from_secs(1);
/// How often a lock is tried again meanwhile.
const LOCK_POLL: Duration = Duration::from_millis(50);
/// What a wait for `index.lock` is for.
const INDEX_BUSY: &str = "another command is writing the cache's index";

impl Cache {
    /// The cache at `root`; nothing is created until something is written.
    pub fn new(root: PathBuf) -> Cache {
        Cache {
            root,
            progress: Progress::new(Verbosity::default()),
        }
    }

    /// The same cache, saying its waits for other commands' locks through `progress`.
    pub fn with_progress(self, progress: Progress) -> Cache {
        Cache { progress, ..self }
    }

    /// Takes `lock` (the cache's file `name`), `shared` or not; when another command holds
    /// it for more than a second, says what it waits for (`why`) and goes on waiting.
    fn wait_for(&self, lock: &File, name: &str, shared: bool, why: &str) -> Result<()> {
        let locking = |e| Error::io(format!("locking {name}"), e);
        let try_once = || match shared {
            true => lock.try_lock_shared(),
            false => lock.try_lock(),
        };
        let patience = Instant::now() + LOCK_PATIENCE;
        loop {
            match try_once() {
                Ok(()) => return Ok(()),
                Err(TryLockError::Error(e)) => return Err(locking(e)),
                Err(TryLockError::WouldBlock) if Instant::now() < patience => {
                    std::thread::sleep(LOCK_POLL)
                }
                Err(TryLockError::WouldBlock) => break,
            }
        }
        self.progress.info(format_args!(
            "waiting for {}: {why}",
            self.root.join(name).display()
        ));
        match shared {
            true => lock.lock_shared(),
            false => lock.lock(),
        }
        .map_err(locking)
    }

    /// Where the cache is, absolute (the default, `.cache`, is relative to the working
    /// directory, which messages should not leave the user to guess).
    pub fn shown(&self) -> String {
        std::path::absolute(&self.root)
            .unwrap_or_else(|_| self.root.clone())
            .display()
            .to_string()
    }

    /// The current index (empty when the cache does not exist yet).
    pub fn index(&self) -> Result<Index> {
        self.check_trusted()?;
        Index::load(&self.index_path())
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where partly received blobs wait to be resumed (kept by the sweep of `tmp/`).
    fn partial_dir(&self) -> PathBuf {
        self.tmp_dir().join(PARTIAL_DIR)
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(digest.layout_path())
    }

    /// Moves the blobs that killed runs left staged into `tmp/partial/`, where the next
    /// transfer of each finds it whole (and checks it again) instead of fetching it again.
    /// A staged file is named after the bytes it was checked to hold, but they were not
    /// synced (the commit syncs them): the transfer hashes them again, and fetches the blob
    /// anew when they are not its own. Only files in directories are moved: a link is never
    /// followed.
    fn salvage_staged(&self) -> Result<()> {
        let partial = self.partial_dir();
        if fs::symlink_metadata(&partial).is_ok_and(|meta| !meta.is_dir()) {
            fs::remove_file(&partial).context(|| format!("removing {}", partial.display()))?;
        }
        for run in gc::read_dir(&self.tmp_dir())? {
            if run == partial || !gc::is_real_dir(&run) {
                continue;
            }
            for staged in fs::read_dir(&run)
                .context(|| format!("listing {}", run.display()))?
                .flatten()
            {
                if !staged.file_type().is_ok_and(|kind| kind.is_file()) {
                    continue;
                }
                let name = staged.file_name();
                let Some(digest) = name.to_str().and_then(Digest::from_hex) else {
                    continue;
                };
                create::dirs(&partial, SHAREABLE_DIR)
                    .context(|| format!("creating {}", partial.display()))?;
                let kept = partial.join(digest.hex());
                if size_of(&kept).unwrap_or(0) < size_of(&staged.path()).unwrap_or(0) {
                    fs::rename(staged.path(), &kept)
                        .context(|| format!("keeping {}", kept.display()))?;
                }
            }
        }
        Ok(())
    }

    /// Starts a writing command: holds `gc.lock` shared until the session ends, so `clean`
    /// cannot remove a blob this command counts on, and makes a staging directory. When no
    /// other command is running, leftovers of killed runs in `tmp/` are removed first.
    pub fn begin(&self) -> Result<Session<'_>> {
        let created = self.make_root()?;
        let tmp = self.tmp_dir();
        create::dirs(&tmp, SHAREABLE_DIR)
            .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
        let gc_lock = open_lock(&self.root.join(GC_LOCK))?;
        match gc_lock.try_lock() {
            Ok(()) => {
                self.salvage_staged()?;
                gc::remove_children(&tmp, false, Some(PARTIAL_DIR))?;
                gc_lock
                    .unlock()
                    .map_err(|e| Error::io(format!("unlocking {GC_LOCK}"), e))?;
            }
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(Error::io(format!("locking {GC_LOCK}"), e)),
        }
        self.wait_for(
            &gc_lock,
            GC_LOCK,
            true,
            "clean is removing what nothing uses",
        )?;
        let staging = create::new_temporary_dir(&tmp, "run", SHAREABLE_DIR)
            .map_err(|e| Error::io(format!("creating a staging folder in {}", tmp.display()), e))?;
        // Opened before anything is staged, so that its syncs report every write-back error.
        let root_dir = File::open(&self.root)
            .map_err(|e| Error::io(format!("opening {}", self.root.display()), e))?;
        Ok(Session {
            cache: self,
            staging,
            gc_lock,
            root_dir,
            created,
        })
    }
}

/// A writing command's hold on the cache: its staging directory and the shared `gc.lock`.
pub struct Session<'a> {
    cache: &'a Cache,
    staging: PathBuf,
    gc_lock: File,
    /// The cache folder, opened when the session began: what [`Session::sync`] syncs through.
    root_dir: File,
    /// Whether this session made the cache directory (a run that stores nothing then leaves
    /// none behind).
    created: bool,
}

impl Session<'_> {
    /// The staging directory: blobs named by digest, not yet part of the cache.
    pub fn staging_dir(&self) -> &Path {
        &self.staging
    }

    /// This session as a copy destination; `source` is recorded with each image.
    pub fn destination(&self, source: String) -> CacheDestination<'_> {
        CacheDestination {
            session: self,
            source,
            unpublished: Mutex::new(Unpublished::default()),
        }
    }

    /// Makes everything written to the cache's file system durable (see
    /// [`writeback::sync_file_system`]).
    fn sync(&self) -> Result<()> {
        writeback::sync_file_system(&self.root_dir)
            .context(|| format!("syncing {}", self.cache.root.display()))
    }

    fn staged_path(&self, digest: &Digest) -> PathBuf {
        self.staging.join(digest.hex())
    }

    /// Reads a small blob (a config) from staging or the cache, checked as it is read.
    fn read_small_blob(&self, blob: &Descriptor) -> Result<Vec<u8>> {
        let staged = self.staged_path(&blob.digest);
        let path = if staged.exists() {
            staged
        } else {
            self.cache.blob_path(&blob.digest)
        };
        let file = File::open(&path).context(|| format!("reading {}", path.display()))?;
        transfer::read_small_blob(file, blob)
    }

    /// Stores one image (or index) under one name: moves its staged blobs into `blobs/` and
    /// writes its manifest; its index record waits in `unpublished` for [`Session::publish`].
    fn commit(
        &self,
        name: Option<&Reference>,
        manifest: &RawManifest,
        source: &str,
        unpublished: &mut Unpublished,
    ) -> Result<Stored> {
        let contents = self.contents(manifest)?;
        let id = contents
            .config
            .as_ref()
            .map_or(&manifest.digest, |config| &config.digest);
        let (key, repository, reference, manifest_path) = match name {
            Some(name) => (
                name.to_string(),
                Some(name.name()),
                name.reference(),
                referrers::manifest_path(name),
            ),
            None => (
                id.to_string(),
                None,
                id.to_string(),
                format!("manifests/_untagged/{}", id.hex()),
            ),
        };
        let blobs = contents.blobs();
        let previous = unpublished.previous(&key, || self.cache.index())?;
        let complete = blobs
            .iter()
            .all(|blob| self.cache.blob_path(&blob.digest).exists());
        if previous.as_ref() == Some(&manifest.digest) && complete {
            return Ok(Stored::Unchanged);
        }
        if !complete {
            // The staged blobs' bytes, all at once, before `blobs/` names them.
            self.sync()?;
        }
        for blob in &blobs {
            self.promote(blob)?;
        }
        index::write_atomically_unsynced(
            &self.cache.root.join(&manifest_path),
            &manifest.bytes,
            &self.staging,
        )?;
        let record = contents.record(manifest, (repository, reference, manifest_path), source);
        unpublished.records.push((key, record));
        Ok(if previous.is_some() {
            Stored::Updated
        } else {
            Stored::New
        })
    }

    /// Makes the images stored since the last publish visible: makes the blobs moved into
    /// `blobs/` and the manifests written durable, then adds their records to `index.json`,
    /// written once under `index.lock`. An image named now loses its row by ID.
    fn publish(&self, unpublished: &mut Unpublished) -> Result<()> {
        if unpublished.records.is_empty() {
            return Ok(());
        }
        // The blobs' renames and the manifests, all at once, before the index names them.
        self.sync()?;
        let index_lock = open_lock(&self.cache.root.join(INDEX_LOCK))?;
        (self.cache).wait_for(&index_lock, INDEX_LOCK, false, INDEX_BUSY)?;
        let mut index = self.cache.index()?;
        for (key, record) in unpublished.records.drain(..) {
            index.remove_unnamed_row(&record);
            index.insert(key, record);
        }
        index.save(&self.cache.index_path(), &self.staging)?;
        *unpublished = Unpublished::default();
        Ok(())
    }

    /// What a manifest is made of: an image's config (read for its diff_ids) and layers, or
    /// an index's children.
    fn contents(&self, manifest: &RawManifest) -> Result<Contents> {
        match manifest::parse(&manifest.bytes).map_err(Error::BadInput)? {
            manifest::Parsed::Image(image) if manifest.is_artifact(&image) => Ok(Contents {
                config: Some(image.config),
                diff_ids: Vec::new(),
                layers: image.layers,
                children: Vec::new(),
            }),
            manifest::Parsed::Image(image) => {
                let config_bytes = self.read_small_blob(&image.config)?;
                let config = manifest::parse_config(&config_bytes)
                    .map_err(|e| Error::BadInput(format!("config {}: {e}", image.config.digest)))?;
                Ok(Contents {
                    config: Some(image.config),
                    diff_ids: config.rootfs.diff_ids,
                    layers: image.layers,
                    children: Vec::new(),
                })
            }
            manifest::Parsed::Index(index) => Ok(Contents {
                config: None,
                diff_ids: Vec::new(),
                layers: Vec::new(),
                children: index
                    .entries()
                    .iter()
                    .map(|entry| entry.digest.clone())
                    .collect(),
            }),
        }
    }
    /// Moves a staged blob into `blobs/`, or checks that the cache already has it.
    fn promote(&self, blob: &Descriptor) -> Result<()> {
        let target = self.cache.blob_path(&blob.digest);
        if target.exists() {
            return Ok(());
        }
        let staged = self.staged_path(&blob.digest);
        if !staged.exists() {
            return Err(Error::io(
                format!("committing blob {}", blob.digest),
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "it is neither staged nor in the cache",
                ),
            ));
        }
        let blob_dir = self.cache.blob_dir();
        create::dirs(&blob_dir, SHAREABLE_DIR)
            .context(|| format!("creating {}", blob_dir.display()))?;
        fs::rename(&staged, &target)
            .context(|| format!("moving blob {} into the cache", blob.digest))
    }
}

impl Drop for Session<'_> {
    /// Removes the staging directory; when this session made the cache and nothing was
    /// stored in it (bad input, say), and no other command uses it, removes the cache too.
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.staging);
        // Exclusive only when no other session holds gc.lock; each removal below fails
        // harmlessly on anything that is not empty.
        if !self.created || self.gc_lock.try_lock().is_err() {
            return;
        }
        let root = &self.cache.root;
        let _ = fs::remove_dir(self.cache.partial_dir());
        if fs::remove_dir(self.cache.tmp_dir()).is_ok()
            && fs::read_dir(root)
                .is_ok_and(|entries| (entries.flatten()).all(|entry| entry.file_name() == GC_LOCK))
        {
            let _ = fs::remove_file(root.join(GC_LOCK));
            let _ = fs::remove_dir(root);
        }
    }
}

/// The records a copy into the cache has stored and not yet published.
#[derive(Default)]
struct Unpublished {
    /// The index as it was when the copy stored its first manifest.
    before: Option<Index>,
    records: Vec<(String, ImageRecord)>,
    /// The names each manifest was stored under, by digest: where its referrers go.
    names: HashMap<Digest, Vec<Reference>>,
}

impl Unpublished {
    /// The manifest digest `key` names: as this copy stored it, or else as the index had it.
    fn previous(
        &mut self,
        key: &str,
        load: impl FnOnce() -> Result<Index>,
    ) -> Result<Option<Digest>> {
        if let Some((_, record)) = self.records.iter().rev().find(|(k, _)| k == key) {
            return Ok(Some(record.manifest_digest.clone()));
        }
        let before = match &mut self.before {
            Some(before) => before,
            empty => empty.insert(load()?),
        };
        Ok(before.get(key).map(|record| record.manifest_digest.clone()))
    }
}

/// What one manifest is made of.
struct Contents {
    config: Option<Descriptor>,
    diff_ids: Vec<Digest>,
    layers: Vec<Descriptor>,
    children: Vec<Digest>,
}

impl Contents {
    /// The blobs: the config, if any, then the layers.
    fn blobs(&self) -> Vec<&Descriptor> {
        self.config.iter().chain(&self.layers).collect()
    }

    /// The index record of `manifest`, holding these, stored under `name` (repository,
    /// reference, manifest file) and come from `source`.
    fn record(
        self,
        manifest: &RawManifest,
        (repository, reference, manifest_path): (Option<String>, String, String),
        source: &str,
    ) -> ImageRecord {
        let blobs = (self.blobs().into_iter())
            .map(|blob| {
                let record = blob_record(blob, self.config.as_ref());
                (blob.digest.clone(), record)
            })
            .collect();
        ImageRecord {
            repository,
            reference,
            manifest_path,
            manifest_digest: manifest.digest.clone(),
            media_type: manifest.media_type.clone(),
            config_digest: self.config.as_ref().map(|config| config.digest.clone()),
            layers: self
                .layers
                .iter()
                .map(|layer| layer.digest.clone())
                .collect(),
            diff_ids: self.diff_ids,
            blobs,
            children: self.children,
            subject: manifest.as_referrer().0,
            source: source.to_string(),
            cached_at: index::now_rfc3339(),
        }
    }
}

fn blob_record(blob: &Descriptor, config: Option<&Descriptor>) -> index::BlobRecord {
    let media_type = blob.media_type.clone();
    index::BlobRecord {
        digest: blob.digest.clone(),
        size: blob.size,
        path: blob.digest.layout_path(),
        is_config: config.is_some_and(|config| config.digest == blob.digest),
        compressed: media_type.ends_with("gzip") || media_type.ends_with("zstd"),
        media_type,
    }
}

/// The size of the file at `path`, if there is one.
fn size_of(path: &Path) -> Option<u64> {
    fs::metadata(path).ok().map(|meta| meta.len())
}

/// Opens (creating it if needed) a lock file of the cache; a link or anything but a regular
/// file in its place is refused as bad input, never followed.
fn open_lock(path: &Path) -> Result<File> {
    create::own_file(path, SHAREABLE_FILE).map_err(|e| match create::is_planted(&e) {
        true => Error::BadInput(format!("{}: {e}", path.display())),
        false => Error::io(format!("opening {}", path.display()), e),
    })
}

/// A session of the cache as a copy destination.
pub struct CacheDestination<'a> {
    session: &'a Session<'a>,
    source: String,
    unpublished: Mutex<Unpublished>,
}

impl CacheDestination<'_> {
    fn unpublished(&self) -> std::sync::MutexGuard<'_, Unpublished> {
        self.unpublished.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Destination for CacheDestination<'_> {
    fn has_blob(&self, blob: &Descriptor) -> Result<bool> {
        Ok(size_of(&self.session.cache.blob_path(&blob.digest)) == Some(blob.size))
    }

    /// A blob already staged (spooled from a stream, or an earlier layer of the same digest)
    /// is taken as it is: its name was computed from its bytes as they were written.
    fn put_blob(
        &self,
        blob: &Descriptor,
        _likely: Option<&Descriptor>,
        open: &mut Open<'_>,
        _headway: &Headway,
    ) -> Result<Descriptor> {
        if size_of(&self.session.staged_path(&blob.digest)) != Some(blob.size) {
            self.session.receive(blob, open)?;
        }
        Ok(blob.clone())
    }
    fn put_manifest(&self, name: Option<&Reference>, manifest: &RawManifest) -> Result<Stored> {
        let mut unpublished = self.unpublished();
        let stored = (self.session).commit(name, manifest, &self.source, &mut unpublished)?;
        if let Some(name) = name {
            let names = unpublished
                .names
                .entry(manifest.digest.clone())
                .or_default();
            names.push(name.clone());
        }
        Ok(stored)
    }

    /// Records the referrers of `subject` in the fallback index of each repository it was
    /// stored in (`<repository>:sha256-<hex>`, as on a registry without the Referrers API),
    /// merged with what was recorded there before.
    fn link_referrers(
        &self,
        subject: &Descriptor,
        referrers: &[Descriptor],
        index: Option<&RawManifest>,
    ) -> Result<()> {
        let mut unpublished = self.unpublished();
        let names = unpublished.names.get(&subject.digest).cloned();
        for name in names.unwrap_or_default() {
            let listing = (referrers, index);
            (self.session).link_referrers(
                &name,
                subject,
                listing,
                &self.source,
                &mut unpublished,
            )?;
        }
        Ok(())
    }

    fn publish(&self) -> Result<()> {
        self.session.publish(&mut self.unpublished())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::media_type;

    #[test]
    fn the_index_is_written_once_when_the_copy_publishes() {
        let root = std::env::temp_dir().join(format!("dip-unit-publish-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let cache = Cache::new(root.clone());
        let session = cache.begin().unwrap();
        let destination = session.destination("test".into());
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_INDEX,
            "manifests": [],
        });
        let manifest = RawManifest::new(index.to_string().into_bytes(), media_type::OCI_INDEX);
        for n in 0..3 {
            let name = Reference::parse(&format!("example.com/many/app{n}:v1")).unwrap();
            let stored = destination.put_manifest(Some(&name), &manifest).unwrap();
            assert_eq!(stored, Stored::New);
        }
        assert!(
            !cache.index_path().exists(),
            "the index was written before the copy published"
        );
        destination.publish().unwrap();
        assert_eq!(cache.index().unwrap().iter().count(), 3);
        let again = Reference::parse("example.com/many/app0:v1").unwrap();
        let stored = destination.put_manifest(Some(&again), &manifest).unwrap();
        assert_eq!(stored, Stored::Unchanged);
        drop(session);
        fs::remove_dir_all(&root).unwrap();
    }
}
