//! An OCI image layout folder being written, as a copy destination (`save --layout`): what an
//! archive holds, as files of a folder (`oci-layout`, `index.json`, `blobs/sha256/<hex>`), so
//! skopeo (`oci:DIR:NAME`), umoci and every reader of OCI layouts take it, and a folder
//! collects images over several runs. A folder that is a layout already is added to: its `index.json` entries
//! are kept but for one naming the same image, which the new one replaces (as `skopeo copy …
//! oci:DIR:NAME` does), and a blob it holds is never written again, but checked: a regular
//! file (never a link) of the size the image declares, and a manifest byte for byte. Each new
//! blob streams into a new temporary file beside its place, checked against its digest as it
//! is written, synced, then renamed, so a cut run leaves no part of a blob under its name;
//! `index.json` is replaced whole, last, so it never names a blob that is not there. A run
//! holds `oci-layout` locked from its reading of `index.json` to its writing, so two runs
//! adding to one folder at once both have their images listed.
//!
//! Referrers are kept as in an archive: their manifests and blobs under `blobs/sha256/`,
//! listed in `docker-image-pusher-referrers.json` (merged with what the folder listed before)
//! rather than in `index.json`, which lists images only: a reader that takes every entry for
//! an image (skopeo's `oci:DIR` without a name, `extract`) never takes a signature for one.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde_json::{Map, Value};

use crate::atomic::{self, Replace};
use crate::create::{self, Untrusted};
use crate::digest::{self, Digest, Verified};
use crate::error::{Error, Result};
use crate::inert::inert;
use crate::manifest::{
    ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, Descriptor, MAX_MANIFEST_SIZE, RawManifest,
};
use crate::progress::Progress;
use crate::reference::Reference;
use crate::retry::Headway;
use crate::transfer::{Destination, Open, Stored};

use super::destination::Recorded;
use super::referrers::{REFERRERS_ENTRY, Referrers};
use super::write::{
    INDEX_FILE, LAYOUT_FILE, LAYOUT_VERSION, encode, index_document, index_entry, layout_marker,
};

/// The mode folders of the layout are made with: what the umask leaves of 0777.
const FOLDER_MODE: u32 = 0o777;

/// An OCI image layout folder being written, as a copy destination.
pub struct LayoutFolder {
    dir: PathBuf,
    /// `dir/blobs/sha256`, where every blob goes.
    blobs: PathBuf,
    /// Its `oci-layout`, locked until the folder is finished: one run writes it at a time.
    _lock: File,
    state: Mutex<State>,
}

struct State {
    recorded: Recorded,
    /// `index.json` as the folder had it (every field kept), or a new one.
    index: Map<String, Value>,
    /// Its entries: those it had, then as replaced and added.
    entries: Vec<Value>,
}

impl LayoutFolder {
    /// Opens `dir` to add images to. A folder that is not there (its parent is) or is empty
    /// is made a layout; a layout is read (its `oci-layout`, `index.json` and referrers
    /// listing, each bounded and checked); any other folder is refused, named. Another run
    /// writing the folder is waited for (said on `progress`), so no run's entries are lost.
    pub fn open(dir: &Path, progress: &Progress) -> Result<LayoutFolder> {
        let shown = dir.display().to_string();
        match fs::metadata(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => create::new_dir(dir, FOLDER_MODE)
                .map_err(|e| Error::io(format!("making the folder {shown}"), e))?,
            Err(e) => return Err(Error::io(format!("reading {shown}"), e)),
            Ok(meta) if !meta.is_dir() => {
                return Err(Error::Usage(format!(
                    "-o {shown}: it is there and is not a folder; a layout is a folder"
                )));
            }
            Ok(_) => {}
        }
        trusted(dir)?;
        let lock = take_marker(dir, progress)?;
        let blobs = dir.join("blobs").join("sha256");
        for folder in [dir.join("blobs"), blobs.clone()] {
            own_folder(&folder)?;
        }
        for folder in [dir.join("blobs"), blobs.clone()] {
            trusted(&folder)?;
        }
        let (index, entries) = read_index(&dir.join(INDEX_FILE))?;
        let folder = LayoutFolder {
            dir: dir.to_path_buf(),
            blobs,
            _lock: lock,
            state: Mutex::new(State {
                recorded: Recorded::default(),
                index,
                entries,
            }),
        };
        folder.read_referrers()?;
        Ok(folder)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The path of the blob `digest`.
    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    /// Whether the folder holds the blob `digest` of `size` bytes: a regular file of that
    /// size at its place. Anything else there (a link, a folder, a file of another size) is
    /// an error: the layout is damaged, and the blob is never written over it.
    fn holds(&self, digest: &Digest, size: u64) -> Result<bool> {
        let path = self.blob_path(digest);
        let damaged = |what: String| {
            Error::BadInput(format!(
                "{}: {what}; the layout is damaged (remove that file to have it written again)",
                path.display()
            ))
        };
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
            Ok(meta) if !meta.is_file() => Err(damaged("not a regular file".into())),
            Ok(meta) if meta.len() != size => Err(damaged(format!(
                "{} bytes, but the image says {digest} is {size}",
                meta.len()
            ))),
            Ok(_) => Ok(true),
        }
    }

    /// Writes a manifest's bytes as a blob, unless the folder holds them already (checked
    /// byte for byte: a manifest is small).
    fn write_manifest(&self, manifest: &RawManifest) -> Result<()> {
        let size = manifest.bytes.len() as u64;
        if self.holds(&manifest.digest, size)? {
            let path = self.blob_path(&manifest.digest);
            return match read_bounded(&path, MAX_MANIFEST_SIZE)? == manifest.bytes {
                true => Ok(()),
                false => Err(Error::BadInput(format!(
                    "{}: its bytes are not those of {}; the layout is damaged",
                    path.display(),
                    manifest.digest
                ))),
            };
        }
        let mut bytes = Verified::new(manifest.bytes.as_slice(), &manifest.digest, size);
        digest::write_addressed_as(&self.blobs, &mut bytes, create::ORDINARY_FILE).map(drop)
    }

    /// Reads the referrers listing the folder has, and the fallback index of each subject it
    /// lists, so what this run adds is merged with them.
    fn read_referrers(&self) -> Result<()> {
        let path = self.dir.join(REFERRERS_ENTRY);
        if !present(&path)? {
            return Ok(());
        }
        let listed: Referrers = serde_json::from_slice(&read_bounded(&path, MAX_MANIFEST_SIZE)?)
            .map_err(|e| {
                Error::BadInput(format!(
                    "{}: not a listing of referrers ({})",
                    path.display(),
                    inert(&e.to_string())
                ))
            })?;
        let mut state = self.state();
        for (subject, index) in &listed.indexes {
            let fallback = self.read_manifest(index)?;
            state.recorded.fallbacks.insert(subject.clone(), fallback);
        }
        state.recorded.referrers = listed;
        Ok(())
    }

    /// Reads the manifest `descriptor` names from the folder, checked against it.
    fn read_manifest(&self, descriptor: &Descriptor) -> Result<RawManifest> {
        let path = self.blob_path(&descriptor.digest);
        let bytes = read_bounded(&path, MAX_MANIFEST_SIZE)?;
        let manifest = RawManifest::new(bytes, &descriptor.media_type);
        if manifest.digest != descriptor.digest || manifest.bytes.len() as u64 != descriptor.size {
            return Err(Error::BadInput(format!(
                "{}: {} bytes hashing to {}, but it is listed as {} bytes",
                path.display(),
                manifest.bytes.len(),
                manifest.digest,
                descriptor.size
            )));
        }
        Ok(manifest)
    }

    /// Makes what was written durable, then lists it: the referrers listing, then
    /// `index.json`, each replaced whole.
    pub fn finish(self) -> Result<()> {
        let state = self.state.into_inner().unwrap_or_else(|e| e.into_inner());
        File::open(&self.blobs)
            .and_then(|folder| folder.sync_all())
            .map_err(|e| Error::io(format!("syncing {}", self.blobs.display()), e))?;
        if !state.recorded.referrers.is_empty() {
            write_json(&self.dir.join(REFERRERS_ENTRY), &state.recorded.referrers)?;
        }
        let mut index = state.index;
        index.insert("manifests".into(), Value::Array(state.entries));
        write_json(&self.dir.join(INDEX_FILE), &index)
    }
}

impl Destination for LayoutFolder {
    fn has_blob(&self, blob: &Descriptor) -> Result<bool> {
        self.holds(&blob.digest, blob.size)
    }

    fn put_blob(
        &self,
        blob: &Descriptor,
        _likely: Option<&Descriptor>,
        open: &mut Open<'_>,
        _headway: &Headway,
    ) -> Result<Descriptor> {
        let mut data = Verified::new(open(0)?, &blob.digest, blob.size);
        digest::write_addressed_as(&self.blobs, &mut data, create::ORDINARY_FILE)?;
        Ok(blob.clone())
    }

    /// Writes the manifest's bytes; an image to list ([`Recorded::record`]) goes into
    /// `index.json` with its full name as both containerd's name and the OCI ref name, in
    /// place of an entry that named the same image ([`same_image`]). Not the bare tag an
    /// archive gives as ref name: a folder collects images of many repositories, and two of
    /// one tag (`latest`) would make the name ambiguous (umoci refuses such a layout; skopeo
    /// takes the first); `oci:DIR:example.com/app:v1` names one.
    fn put_manifest(&self, name: Option<&Reference>, manifest: &RawManifest) -> Result<Stored> {
        self.write_manifest(manifest)?;
        let mut state = self.state();
        if state.recorded.record(name, manifest) {
            let full = name.map(Reference::to_string);
            let entry = index_entry(manifest, full.as_deref(), full.as_deref());
            place(&mut state.entries, entry);
        }
        Ok(Stored::New)
    }

    /// Writes the fallback index of `subject`'s referrers ([`Recorded::link`]).
    fn link_referrers(
        &self,
        subject: &Descriptor,
        referrers: &[Descriptor],
        index: Option<&RawManifest>,
    ) -> Result<()> {
        let fallback = self.state().recorded.link(subject, referrers, index)?;
        match fallback {
            Some(fallback) => self.write_manifest(&fallback),
            None => Ok(()),
        }
    }
}

/// Puts `entry` into `entries` in place of the first that named the same image, and drops
/// any other that did (skopeo leaves an entry it replaced behind, its ref name taken off but
/// containerd's name kept); at the end if none did.
fn place(entries: &mut Vec<Value>, entry: Value) {
    let Some(first) = entries.iter().position(|old| same_image(old, &entry)) else {
        entries.push(entry);
        return;
    };
    let mut at = 0;
    entries.retain(|old| {
        at += 1;
        at - 1 == first || !same_image(old, &entry)
    });
    entries[first] = entry;
}

/// Whether the `index.json` entry `new` takes the place of `old`: `old` names the image
/// `new` names, by containerd's annotation or by its ref name (as skopeo replaces an entry of
/// the ref name it writes); an entry of no name, only one of the same manifest and no name.
fn same_image(old: &Value, new: &Value) -> bool {
    fn annotation<'v>(entry: &'v Value, key: &str) -> Option<&'v str> {
        entry["annotations"][key].as_str()
    }
    let names =
        |entry| [ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME].map(|key| annotation(entry, key));
    match annotation(new, ANNOTATION_REF_NAME) {
        Some(name) => names(old).contains(&Some(name)),
        None => names(old) == [None, None] && old["digest"] == new["digest"],
    }
}

/// Takes the `oci-layout` of `dir` (made, in an empty folder; a folder with something else in
/// it and no `oci-layout` is refused), locked for this run alone, checked.
fn take_marker(dir: &Path, progress: &Progress) -> Result<File> {
    let (shown, marker) = (dir.display(), dir.join(LAYOUT_FILE));
    if !present(&marker)? {
        let listing = fs::read_dir(dir).map_err(|e| Error::io(format!("reading {shown}"), e))?;
        if listing.count() > 0 {
            return Err(Error::Usage(format!(
                "-o {shown}: the folder is not empty and is not an OCI image layout (it has no \
                 {LAYOUT_FILE}); give a new or empty folder, or a layout"
            )));
        }
        match create::new_file(&marker, create::ORDINARY_FILE) {
            Ok(file) => {
                lock(&file, &marker, progress)?;
                return write_marker(&file, &marker).map(|()| file);
            }
            // Another run made it meanwhile: it is read as theirs, once they are done.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(format!("making {}", marker.display()), e)),
        }
    }
    let file = open_regular(&marker)?;
    lock(&file, &marker, progress)?;
    match read_all(&file, 4096, &marker)? {
        // Made by a run cut before it wrote it, or one that has yet to lock it: written here
        // (the same bytes, should that run write them after).
        empty if empty.is_empty() => {
            let writing = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(&marker)
                .map_err(|e| Error::io(format!("writing {}", marker.display()), e))?;
            write_marker(&writing, &marker).map(|()| file)
        }
        bytes => check_marker(&bytes, &marker).map(|()| file),
    }
}

/// Writes the layout marker into `file`, the empty marker at `path`, synced.
fn write_marker(mut file: &File, path: &Path) -> Result<()> {
    let bytes = encode(LAYOUT_FILE, &layout_marker())?;
    io::Write::write_all(&mut file, &bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Locks `file` (the layout's `path`) for this run alone; while another run holds it, says
/// so on `progress` and waits.
fn lock(file: &File, path: &Path, progress: &Progress) -> Result<()> {
    let failed = |e| Error::io(format!("locking {}", path.display()), e);
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => {
            let folder = path.parent().unwrap_or(path).display();
            progress.info(format_args!("waiting for another run writing {folder}"));
            file.lock().map_err(failed)
        }
        Err(TryLockError::Error(e)) => Err(failed(e)),
    }
}

/// Checks an `oci-layout` file: a JSON object giving the layout version this program writes.
fn check_marker(bytes: &[u8], path: &Path) -> Result<()> {
    let marker: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    match marker["imageLayoutVersion"].as_str() {
        Some(LAYOUT_VERSION) => Ok(()),
        Some(other) => Err(Error::BadInput(format!(
            "{}: layout version {}, where this program writes {LAYOUT_VERSION}",
            path.display(),
            inert(other)
        ))),
        None => Err(Error::BadInput(format!(
            "{}: not an OCI layout marker (a JSON object with imageLayoutVersion)",
            path.display()
        ))),
    }
}

/// Reads `index.json`: the object (every field kept) and its entries. A layout without one
/// (a run cut while making it) has an empty index.
fn read_index(path: &Path) -> Result<(Map<String, Value>, Vec<Value>)> {
    if !present(path)? {
        return Ok(split_index(index_document(Vec::new())));
    }
    let bad = |why: String| Error::BadInput(format!("{}: {why}", path.display()));
    let index: Value = serde_json::from_slice(&read_bounded(path, MAX_MANIFEST_SIZE)?)
        .map_err(|e| bad(format!("not JSON ({})", inert(&e.to_string()))))?;
    if !index.is_object() {
        return Err(bad("not an image index (a JSON object)".into()));
    }
    let (index, entries) = split_index(index);
    match entries.iter().all(|entry| entry["digest"].is_string()) {
        true => Ok((index, entries)),
        false => Err(bad("an entry of its manifests is not a descriptor".into())),
    }
}

/// An index object and its `manifests`, taken out of it (none when it has no array there).
fn split_index(index: Value) -> (Map<String, Value>, Vec<Value>) {
    let Value::Object(mut index) = index else {
        return (Map::new(), Vec::new());
    };
    let entries = match index.remove("manifests") {
        Some(Value::Array(entries)) => entries,
        _ => Vec::new(),
    };
    (index, entries)
}

/// Makes the folder `path` of the layout unless it is there; anything but a folder there (a
/// link, never followed) is an error.
fn own_folder(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Error::BadInput(format!(
            "{}: not a folder (a link is never followed); the layout is damaged",
            path.display()
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => create::new_dir(path, FOLDER_MODE)
            .map_err(|e| Error::io(format!("making the folder {}", path.display()), e)),
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

/// Refuses a folder of the layout that another user could change while it is written: one
/// they could swap `blobs/` or `blobs/sha256/` in for a link would have blobs written where
/// they chose.
fn trusted(path: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let mode = meta.mode() & 0o7777;
    let why = match create::untrusted_folder(meta.mode(), meta.uid()) {
        None => return Ok(()),
        Some(Untrusted::EveryoneWrites) => format!("every user can write it (mode {mode:04o})"),
        Some(Untrusted::AnotherOwns) => format!(
            "it belongs to another user (uid {}) and is not shared through a group (mode \
             {mode:04o})",
            meta.uid()
        ),
    };
    Err(Error::BadInput(format!(
        "{}: {why}, so its folders could be swapped for links while the layout is written; \
         refusing (save into a folder of your own, or chmod o-w it)",
        path.display()
    )))
}

/// Whether anything is at `path` (a link counts: it is refused when read).
fn present(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

/// Reads the regular file `path` whole, at most `limit` bytes, never through a link.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    read_all(&open_regular(path)?, limit, path)
}

/// Opens the regular file `path` to read, never through a link.
fn open_regular(path: &Path) -> Result<File> {
    let refused = |why: &str| Error::BadInput(format!("{}: {why}", path.display()));
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refused("a symbolic link, never followed"),
            _ => Error::io(format!("reading {}", path.display()), e),
        })?;
    match file.metadata() {
        Ok(meta) if meta.is_file() => Ok(file),
        Ok(_) => Err(refused("not a regular file")),
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

/// Reads `file` (named `path`) whole, at most `limit` bytes.
fn read_all(file: &File, limit: u64, path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    match bytes.len() as u64 > limit {
        true => Err(Error::BadInput(format!(
            "{}: larger than {limit} bytes; refused",
            path.display()
        ))),
        false => Ok(bytes),
    }
}

/// Replaces the file `path` with `value` as JSON, whole.
fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let shown = path.display().to_string();
    let bytes = encode(&shown, value)?;
    atomic::replace(
        Replace::beside(path, create::ORDINARY_FILE, &shown),
        |file| {
            io::Write::write_all(file, &bytes).map_err(|e| Error::io(format!("writing {shown}"), e))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_entry_replaces_only_one_that_names_the_same_image() {
        let named = |image: Option<&str>, tag: Option<&str>, digest: &str| {
            let mut annotations = Map::new();
            if let Some(image) = image {
                annotations.insert(ANNOTATION_IMAGE_NAME.into(), image.into());
            }
            if let Some(tag) = tag {
                annotations.insert(ANNOTATION_REF_NAME.into(), tag.into());
            }
            json!({ "digest": digest, "annotations": annotations })
        };
        let full = "example.com/app:v1";
        let new = named(Some(full), Some(full), "sha256:a");
        assert!(same_image(&named(Some(full), Some("v1"), "sha256:b"), &new));
        assert!(
            same_image(&named(None, Some(full), "sha256:c"), &new),
            "skopeo's ref name"
        );
        let worker = named(Some("example.com/worker:v1"), Some("v1"), "sha256:d");
        assert!(!same_image(&worker, &new), "one tag, two repositories");
        assert!(!same_image(&named(None, Some("v1"), "sha256:e"), &new));
        let unnamed = named(None, None, "sha256:f");
        assert!(same_image(&unnamed, &named(None, None, "sha256:f")));
        assert!(!same_image(&unnamed, &named(None, None, "sha256:g")));
        assert!(!same_image(&new, &named(None, None, "sha256:a")));

        let stripped = named(Some(full), None, "sha256:b");
        let skopeos = named(None, Some(full), "sha256:c");
        let mut entries = vec![stripped, worker.clone(), skopeos];
        place(&mut entries, new.clone());
        assert_eq!(entries, [new.clone(), worker.clone()]);
        let db = "example.com/db:v1";
        place(&mut entries, named(Some(db), Some(db), "sha256:h"));
        assert_eq!(entries.len(), 3);
    }
}
