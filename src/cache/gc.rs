//! Removing images from the cache, and with them every blob, manifest file and temporary file
//! that nothing refers to any more. No sweep follows a link: a link inside the cache is
//! removed as a link, and a link in place of one of the cache's own directories is refused.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::create::{self, SHAREABLE_DIR};
use crate::digest::{self, Digest, Hasher};
use crate::error::{Context, Error, Result};

use super::{Cache, GC_LOCK, INDEX_BUSY, INDEX_LOCK, Index, open_lock};

/// How a clean goes about it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sweep {
    /// Only report what would be removed.
    pub dry_run: bool,
    /// Also hash every blob the images use and remove those that do not match.
    pub verify: bool,
    /// Let an image ID remove every name of its image (refused without, when it has several).
    pub all_names: bool,
}

/// What a clean removed (or, in a dry run, would remove).
#[derive(Debug, Default)]
pub struct Report {
    /// The index keys of the images removed.
    pub images: Vec<String>,
    pub blobs: usize,
    pub manifests: usize,
    pub temporary: usize,
    pub bytes: u64,
    /// With `verify`: how many blobs were hashed.
    pub verified: usize,
    /// With `verify`: the blobs whose bytes did not match their name, removed (in a dry run,
    /// only found).
    pub damaged: Vec<String>,
}

impl Cache {
    /// Removes the images `queries` name (all of them when `queries` is `None`), then every
    /// unreferenced blob and manifest and all temporary files; with `verify`, also every blob
    /// whose bytes do not hash to its name, so the next pull fetches it again. A name removes
    /// that name only; an image ID that several names share is refused unless `all_names`
    /// says to remove them all. Waits for running commands to finish first (`gc.lock`). With
    /// `dry_run`, only reports.
    pub fn clean(&self, queries: Option<&[String]>, sweep: Sweep) -> Result<Report> {
        let dry_run = sweep.dry_run;
        let mut report = Report::default();
        self.check_trusted()?;
        if !self.root.exists() {
            if let Some(query) = queries.and_then(|q| q.first()) {
                return Err(Error::NotFound(format!(
                    "no image \"{query}\" in the cache (the cache is empty)"
                )));
            }
            return Ok(report);
        }
        let gc_lock = open_lock(&self.root.join(GC_LOCK))?;
        let others = "clean waits for the commands writing to this cache to end";
        self.wait_for(&gc_lock, GC_LOCK, false, others)?;
        let index_lock = open_lock(&self.root.join(INDEX_LOCK))?;
        self.wait_for(&index_lock, INDEX_LOCK, false, INDEX_BUSY)?;

        for dir in [
            self.root.join("blobs"),
            self.blob_dir(),
            self.root.join("manifests"),
            self.tmp_dir(),
        ] {
            refuse_link(&dir)?;
        }
        let mut index = self.index()?;
        let keys = match queries {
            None => index.iter().map(|(key, _)| key.clone()).collect(),
            Some(queries) => names_of(&index, queries, sweep.all_names)?,
        };
        // The referrers of the images removed go with them.
        let keys = [index.referrers_left(&keys), keys].concat();
        for key in &keys {
            index.remove(key);
        }
        report.images = keys;
        let gone = self.sweep_blobs(&index, sweep, &mut report)?;
        self.sweep_manifests(&index, dry_run, &mut report)?;
        let (count, bytes) = remove_children(&self.tmp_dir(), dry_run, None)?;
        report.temporary = count;
        report.bytes += bytes;
        if !dry_run && !report.images.is_empty() {
            create::dirs(&self.tmp_dir(), SHAREABLE_DIR)
                .context(|| "creating the cache's tmp directory")?;
            index.save(&self.index_path(), &self.tmp_dir())?;
        }
        if !dry_run {
            self.forget_in_memo_locked(&gone)?;
        }
        Ok(report)
    }

    /// Removes the blobs no image of `index` uses (and, verifying, those that do not hash to
    /// their name), counting them in `report`; the digests removed.
    fn sweep_blobs(
        &self,
        index: &Index,
        Sweep {
            dry_run, verify, ..
        }: Sweep,
        report: &mut Report,
    ) -> Result<BTreeSet<Digest>> {
        let blobs = index.referenced_blobs();
        let mut gone = BTreeSet::new();
        for path in files_under(&self.blob_dir())? {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if !blobs.iter().any(|digest| digest.hex() == name) {
                report.blobs += 1;
                report.bytes += remove_file(&path, dry_run)?;
                gone.extend(Digest::from_hex(name));
            } else if verify {
                report.verified += 1;
                if !hashes_to(&path, name)? {
                    report.damaged.push(format!("sha256:{name}"));
                    report.blobs += 1;
                    report.bytes += remove_file(&path, dry_run)?;
                }
            }
        }
        Ok(gone)
    }

    /// Removes the manifest files no image of `index` names, counting them in `report`.
    fn sweep_manifests(&self, index: &Index, dry_run: bool, report: &mut Report) -> Result<()> {
        let manifests = index.referenced_manifests();
        for path in files_under(&self.root.join("manifests"))? {
            let relative = path
                .strip_prefix(&self.root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            if !manifests.contains(relative.as_str()) {
                report.manifests += 1;
                report.bytes += remove_file(&path, dry_run)?;
            }
        }
        if !dry_run {
            remove_empty_dirs(&self.root.join("manifests"))?;
        }
        Ok(())
    }
}

/// The index keys that `queries` name, each once, in order.
fn names_of(index: &Index, queries: &[String], all_names: bool) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    for query in queries {
        keys.extend(names_to_remove(index, query, all_names)?);
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// The index keys `query` removes: the one name it gives, or every name of the image ID it
/// gives, which must be said with `all_names` when there are several.
fn names_to_remove(index: &Index, query: &str, all_names: bool) -> Result<Vec<String>> {
    let keys = index.find(query)?;
    if keys.len() > 1 && !all_names {
        return Err(Error::Usage(format!(
            "\"{query}\" is the ID of an image with {} names: {}; give the one to remove, \
             or add --all-names to remove them all",
            keys.len(),
            keys.join(", ")
        )));
    }
    Ok(keys)
}

/// Whether the file at `path` hashes to `hex` (read once, streamed).
fn hashes_to(path: &Path, hex: &str) -> Result<bool> {
    let mut file = fs::File::open(path).context(|| format!("opening {}", path.display()))?;
    let mut hasher = Hasher::default();
    digest::append_hashed(&mut file, &mut io::sink(), path, &mut hasher)?;
    Ok(hasher.finish().hex() == hex)
}

/// Removes everything inside `dir` but the child named `keep` (or, with `dry_run`, only counts
/// it); returns how many files there were and their total size.
pub fn remove_children(dir: &Path, dry_run: bool, keep: Option<&str>) -> Result<(usize, u64)> {
    let kept = keep
        .map(|name| dir.join(name))
        .filter(|kept| is_real_dir(kept));
    let files: Vec<PathBuf> = (files_under(dir)?.into_iter())
        .filter(|path| kept.as_ref().is_none_or(|kept| !path.starts_with(kept)))
        .collect();
    let mut bytes = 0;
    for path in &files {
        bytes += remove_file(path, dry_run)?;
    }
    if !dry_run {
        for entry in read_dir(dir)? {
            if is_real_dir(&entry) && kept.as_ref() != Some(&entry) {
                fs::remove_dir_all(&entry).context(|| format!("removing {}", entry.display()))?;
            }
        }
    }
    Ok((files.len(), bytes))
}

/// Every file below `dir` (none when it does not exist).
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in read_dir(dir)? {
        if is_real_dir(&path) {
            files.extend(files_under(&path)?);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}

/// Whether `path` is a directory itself, not a link to one.
pub fn is_real_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|meta| meta.is_dir())
}

/// An error when `dir`, one of the cache's own directories, is a link.
fn refuse_link(dir: &Path) -> Result<()> {
    if fs::symlink_metadata(dir).is_ok_and(|meta| meta.file_type().is_symlink()) {
        return Err(Error::BadInput(format!(
            "{} is a symbolic link, not a directory of the cache; refusing to sweep through it \
             (remove the link, or point --cache-dir at the real place)",
            dir.display()
        )));
    }
    Ok(())
}

/// The entries of `dir` (none when it does not exist); a link in its place is refused.
pub fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    refuse_link(dir)?;
    match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|entry| entry.map(|e| e.path()))
            .collect::<io::Result<_>>()
            .context(|| format!("listing {}", dir.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(format!("listing {}", dir.display()), e)),
    }
}

/// Removes a file (unless `dry_run`) and returns its size.
fn remove_file(path: &Path, dry_run: bool) -> Result<u64> {
    let size = fs::symlink_metadata(path).map_or(0, |m| m.len());
    if !dry_run {
        fs::remove_file(path).context(|| format!("removing {}", path.display()))?;
    }
    Ok(size)
}

/// Removes the empty directories below `dir`, deepest first.
fn remove_empty_dirs(dir: &Path) -> Result<()> {
    for path in read_dir(dir)? {
        if is_real_dir(&path) {
            remove_empty_dirs(&path)?;
            if read_dir(&path)?.is_empty() {
                fs::remove_dir(&path).context(|| format!("removing {}", path.display()))?;
            }
        }
    }
    Ok(())
}
