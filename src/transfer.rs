//! The copy loop every command runs: blobs from a source to a destination (skipping what the
//! destination has, retrying what may succeed later), then the manifests, last, so nothing
//! refers to a blob that is not there.

use std::io::Read;

use crate::digest::Digest;
use crate::error::{Context, Error, Result};
use crate::manifest::{self, Descriptor, MAX_INDEX_DEPTH, Parsed, RawManifest};
use crate::progress::{Progress, human_bytes};
use crate::reference::Reference;

/// Where an image is read from.
pub trait Source {
    /// The image's manifest bytes, exactly as stored.
    fn manifest(&self) -> Result<RawManifest>;
    /// A stream of one blob of the image, from byte `offset` on (to resume).
    fn open_blob(&self, blob: &Descriptor, offset: u64) -> Result<Box<dyn Read + Send + '_>>;
    /// How to name this source in messages (`image.tar`).
    fn describe(&self) -> String;
    /// `registry/repository`, when the source is a registry.
    fn repository(&self) -> Option<String> {
        None
    }
    /// The source of one manifest its index lists.
    fn child(&self, entry: &Descriptor) -> Result<Box<dyn Source + '_>> {
        Err(Error::BadInput(format!(
            "{}: cannot open {} of its index",
            self.describe(),
            entry.digest
        )))
    }
}

/// Where an image is written to.
pub trait Destination {
    /// Whether the destination already holds `blob` as it is.
    fn has_blob(&self, blob: &Descriptor) -> Result<bool>;
    /// `registry/repository`, when the destination is a registry.
    fn repository(&self) -> Option<String> {
        None
    }
    /// Links `blob` from repository `from` of the same registry instead of uploading it;
    /// `false` when the registry declines.
    fn mount(&self, _blob: &Descriptor, _from: &str) -> Result<bool> {
        Ok(false)
    }
    /// Whether the destination stores `blob` in another form (compressed on the way), so
    /// its stored digest is known only once it is written.
    fn transforms(&self, _blob: &Descriptor) -> bool {
        false
    }
    /// Streams `blob` in, reading it through `open` (called again with an offset to resume
    /// after a failure) and checking it on the way; returns what was stored.
    fn put_blob(&self, blob: &Descriptor, open: &mut Open<'_>) -> Result<Descriptor>;
    /// The manifest as this destination will store it (by default, as it is).
    fn prepare_manifest(&self, manifest: RawManifest) -> Result<RawManifest> {
        Ok(manifest)
    }
    /// Stores the manifest under `name` (`None`: an image with no name, known by its ID).
    fn put_manifest(&self, name: Option<&Reference>, manifest: &RawManifest) -> Result<Stored>;
}

/// Opens the bytes of the blob being copied from an offset: what a destination reads through,
/// and calls again to resume where an interrupted transfer stopped.
pub type Open<'s> = dyn FnMut(u64) -> Result<Box<dyn Read + Send + 's>> + 's;

/// What is remembered about blobs between runs: the compressed form an uncompressed layer
/// was pushed as (so the next push asks for it by digest instead of compressing again), and
/// the repositories (`registry/repository`) known to hold a blob (so it can be mounted).
pub trait BlobMemo {
    /// The compressed form of `uncompressed`, if one was stored before.
    fn compressed(&self, uncompressed: &Digest) -> Option<Descriptor>;
    /// Records that `uncompressed` was stored as `compressed`.
    fn remember_compressed(&self, uncompressed: &Digest, compressed: &Descriptor) -> Result<()>;
    /// The repositories known to hold `digest`.
    fn holders(&self, digest: &Digest) -> Vec<String>;
    /// Records that `repository` holds `digest`.
    fn remember_holder(&self, digest: &Digest, repository: &str) -> Result<()>;
}

/// What storing a manifest under a name did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// The name is new (or the destination cannot tell).
    New,
    /// The name pointed at another manifest before.
    Updated,
    /// The name already pointed at this manifest with all its blobs: nothing was written.
    Unchanged,
}

/// One image to copy, and the names to give it at the destination.
pub struct Job<'a> {
    pub source: &'a dyn Source,
    pub names: Vec<Reference>,
}

/// How to copy.
#[derive(Clone, Copy, Default)]
pub struct Options<'a> {
    /// Write every blob, even those the destination has.
    pub force: bool,
    /// Look at what is there and report, but write nothing.
    pub dry_run: bool,
    /// Tries for a blob whose transfer fails in a way that may pass (at least 1).
    pub attempts: u32,
    /// What is known about blobs from earlier runs.
    pub memo: Option<&'a dyn BlobMemo>,
}

/// What one job stored, name by name (`None`: the image has no name).
pub struct Outcome {
    pub manifest: Digest,
    pub stored: Vec<(Option<Reference>, Stored)>,
}

/// Counts for the summary line.
#[derive(Default)]
pub struct Summary {
    pub blobs_copied: usize,
    pub blobs_present: usize,
    pub blobs_mounted: usize,
    pub bytes_copied: u64,
    pub outcomes: Vec<Outcome>,
}

/// Copies every job's blobs, then every job's manifests (an index after its children), so
/// that an error in any image's blobs stores no manifest at all. With `dry_run`, stops after
/// looking.
pub fn copy(
    jobs: &[Job<'_>],
    destination: &dyn Destination,
    options: Options<'_>,
    progress: &Progress,
) -> Result<Summary> {
    let mut summary = Summary::default();
    let mut prepared = Vec::with_capacity(jobs.len());
    for job in jobs {
        prepared.push(prepare(
            job.source,
            destination,
            options,
            progress,
            &mut summary,
            0,
        )?);
    }
    if options.dry_run {
        return Ok(summary);
    }
    for (job, prepared) in jobs.iter().zip(prepared) {
        let names: Vec<Option<&Reference>> = match job.names.is_empty() {
            true => vec![None],
            false => job.names.iter().map(Some).collect(),
        };
        let mut outcome = Outcome {
            manifest: prepared.manifest.digest.clone(),
            stored: Vec::new(),
        };
        for name in names {
            store_children(&prepared, name, destination)?;
            let stored = destination.put_manifest(name, &prepared.manifest)?;
            outcome.stored.push((name.cloned(), stored));
        }
        summary.outcomes.push(outcome);
    }
    Ok(summary)
}

/// A manifest as the destination will store it, and for an index its children (stored
/// before it, by digest).
struct Prepared {
    manifest: RawManifest,
    children: Vec<Prepared>,
}

/// Copies the blobs of the source's image (or of every image of its index) and returns the
/// manifests to store.
fn prepare(
    source: &dyn Source,
    destination: &dyn Destination,
    options: Options<'_>,
    progress: &Progress,
    summary: &mut Summary,
    depth: usize,
) -> Result<Prepared> {
    let manifest = source.manifest()?;
    let bad = |e: String| Error::BadInput(format!("{}: {e}", source.describe()));
    match manifest::parse(&manifest.bytes).map_err(bad)? {
        Parsed::Image(image) => {
            copy_blob(
                source,
                destination,
                &image.config,
                options,
                progress,
                summary,
            )?;
            let mut layers = Vec::with_capacity(image.layers.len());
            for layer in &image.layers {
                layers.push(copy_blob(
                    source,
                    destination,
                    layer,
                    options,
                    progress,
                    summary,
                )?);
            }
            let stored = manifest::with_stored_layers(&manifest, &layers).map_err(bad)?;
            Ok(Prepared {
                manifest: destination.prepare_manifest(stored)?,
                children: Vec::new(),
            })
        }
        Parsed::Index(index) => {
            if depth >= MAX_INDEX_DEPTH {
                return Err(bad(format!(
                    "indexes nest more than {MAX_INDEX_DEPTH} deep"
                )));
            }
            let mut children = Vec::with_capacity(index.entries().len());
            for entry in index.entries() {
                let child = source.child(entry)?;
                children.push(prepare(
                    &*child,
                    destination,
                    options,
                    progress,
                    summary,
                    depth + 1,
                )?);
            }
            let stored: Vec<RawManifest> = children
                .iter()
                .map(|child| child.manifest.clone())
                .collect();
            let manifest = manifest::with_stored_children(&manifest, &stored).map_err(bad)?;
            Ok(Prepared { manifest, children })
        }
    }
}

/// Stores the children of a prepared index (deepest first), each under `name` with its digest.
fn store_children(
    prepared: &Prepared,
    name: Option<&Reference>,
    destination: &dyn Destination,
) -> Result<()> {
    for child in &prepared.children {
        let child_name = name.map(|name| name.with_digest(child.manifest.digest.clone()));
        store_children(child, child_name.as_ref(), destination)?;
        destination.put_manifest(child_name.as_ref(), &child.manifest)?;
    }
    Ok(())
}

/// Copies one blob unless the destination has it (or, for a blob it compresses, the
/// compressed form the memo knows), mounting it from another repository of the same registry
/// when the memo knows one; returns the descriptor the destination holds.
fn copy_blob(
    source: &dyn Source,
    destination: &dyn Destination,
    blob: &Descriptor,
    options: Options<'_>,
    progress: &Progress,
    summary: &mut Summary,
) -> Result<Descriptor> {
    let transforms = destination.transforms(blob);
    let wanted = match (transforms, options.memo) {
        (false, _) => Some(blob.clone()),
        (true, Some(memo)) => memo.compressed(&blob.digest),
        (true, None) => None,
    };
    if !options.force
        && let Some(wanted) = wanted
    {
        if destination.has_blob(&wanted)? {
            if options.dry_run {
                progress.info(format_args!("would skip {} (present)", wanted.digest));
            } else {
                progress.detail(format_args!("{} present, skipped", wanted.digest));
            }
            summary.blobs_present += 1;
            return remember_holders(source, destination, blob, &wanted, options).map(|()| wanted);
        }
        if let Some(from) = mount_source(destination, &wanted, options) {
            if options.dry_run {
                progress.info(format_args!("would mount {} from {from}", wanted.digest));
                summary.blobs_mounted += 1;
                return Ok(wanted);
            }
            if destination.mount(&wanted, &from)? {
                progress.detail(format_args!("{} mounted from {from}", wanted.digest));
                summary.blobs_mounted += 1;
                return remember_holders(source, destination, blob, &wanted, options)
                    .map(|()| wanted);
            }
        }
    }
    summary.blobs_copied += 1;
    summary.bytes_copied += blob.size;
    if options.dry_run {
        progress.info(format_args!(
            "would copy {} ({})",
            blob.digest,
            human_bytes(blob.size)
        ));
        return Ok(blob.clone());
    }
    let what = || format!("copying blob {} from {}", blob.digest, source.describe());
    let mut attempt = 1;
    let stored = loop {
        let mut open = |offset| source.open_blob(blob, offset);
        match destination.put_blob(blob, &mut open) {
            Ok(stored) => break stored,
            Err(error) if error.is_retryable() && attempt < options.attempts => {
                progress.warn(format_args!("{}: {error}; trying again", what()));
                attempt += 1;
            }
            Err(error) => return Err(error).context(what),
        }
    };
    if transforms && let Some(memo) = options.memo {
        memo.remember_compressed(&blob.digest, &stored)?;
    }
    progress.detail(format_args!(
        "{} copied ({})",
        stored.digest,
        human_bytes(stored.size)
    ));
    remember_holders(source, destination, blob, &stored, options)?;
    Ok(stored)
}

/// Another repository of the destination's registry that the memo says holds `blob`.
fn mount_source(
    destination: &dyn Destination,
    blob: &Descriptor,
    options: Options<'_>,
) -> Option<String> {
    let here = destination.repository()?;
    let (registry, _) = here.split_once('/')?;
    let holders = options.memo?.holders(&blob.digest);
    holders.into_iter().find_map(|holder| {
        let (holder_registry, repository) = holder.split_once('/')?;
        (holder_registry == registry && holder != here).then(|| repository.to_string())
    })
}

/// Records in the memo that the source's repository holds `blob` and the destination's now
/// holds `stored` (its form there), for later mounts.
fn remember_holders(
    source: &dyn Source,
    destination: &dyn Destination,
    blob: &Descriptor,
    stored: &Descriptor,
    options: Options<'_>,
) -> Result<()> {
    let Some(memo) = options.memo.filter(|_| !options.dry_run) else {
        return Ok(());
    };
    if let Some(repository) = source.repository() {
        memo.remember_holder(&blob.digest, &repository)?;
    }
    if let Some(repository) = destination.repository() {
        memo.remember_holder(&stored.digest, &repository)?;
    }
    Ok(())
}
