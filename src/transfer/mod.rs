//! The copy loop every command runs: plan (read the manifests), copy each blob once (skipping
//! what the destination has, retrying what may succeed later, on a small pool of threads when
//! asked), then store the manifests, last, so nothing refers to a blob that is not there.

mod blob;
mod governor;
mod ledger;
mod plan;
mod pool;
mod rate;
mod referrers;

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::io::Read;

use crate::digest::{Digest, Verified};
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, MAX_MANIFEST_SIZE, Platforms, RawManifest, media_type};
use crate::progress::{Board, Progress};
use crate::reference::{Reference, RepositoryName};
use crate::retry::Headway;

use blob::Done;
pub use governor::{Adjustment, Governor, Margin, Tuning};
pub use ledger::Ledger;
pub use plan::PlatformsTaken;
use plan::{Remark, Tree};
pub use rate::RateLimit;
pub use referrers::{Found, Referrer, ReferrerPolicy, kind_of};

/// Where an image is read from (shared by the worker threads).
pub trait Source: Sync {
    /// The image's manifest bytes, exactly as stored.
    fn manifest(&self) -> Result<RawManifest>;
    /// A stream of one blob of the image, from byte `offset` on (to resume).
    fn open_blob(&self, blob: &Descriptor, offset: u64) -> Result<Box<dyn Read + Send + '_>>;
    /// A small blob (a config) whole, checked as [`read_small_blob`] checks it.
    fn small_blob(&self, blob: &Descriptor) -> Result<Vec<u8>> {
        read_small_blob(self.open_blob(blob, 0)?, blob)
    }
    /// How to name this source in messages (`image.tar`).
    fn describe(&self) -> String;
    /// The repository, when the source is a registry.
    fn repository(&self) -> Option<RepositoryName> {
        None
    }
    /// Whether its layers are a `docker save` archive's uncompressed tars, which a push
    /// gzips unless told otherwise (anything else is copied as it is by default).
    fn saved_layers(&self) -> bool {
        false
    }
    /// Whether the source holds the manifest `entry` of one of its indexes and every blob it
    /// names: an archive `docker save` wrote lists every platform and holds one.
    fn holds(&self, _entry: &Descriptor) -> bool {
        true
    }
    /// One manifest its index lists (its blobs are opened through this same source).
    fn child_manifest(&self, entry: &Descriptor) -> Result<RawManifest> {
        Err(Error::BadInput(format!(
            "{}: cannot open {} of its index",
            self.describe(),
            entry.digest
        )))
    }
    /// The referrers it lists for `subject`, one of its manifests (none, by default).
    fn referrers(&self, _subject: &Descriptor) -> Result<Found> {
        Ok(Found::default())
    }
    /// One referrer it listed, as a source of its own.
    fn referrer(&self, referrer: &Referrer) -> Result<Box<dyn Source + '_>> {
        Err(Error::BadInput(format!(
            "{}: cannot open its referrer {referrer:?}",
            self.describe()
        )))
    }
}

/// Reads a config (a small blob) of `source` whole: see [`Source::small_blob`].
pub fn read_config(source: &dyn Source, config: &Descriptor) -> Result<Vec<u8>> {
    source.small_blob(config)
}

/// Reads a small blob (a config) whole from `reader`, capped at the manifest size and checked
/// against its digest and size: the one way a blob is ever held in memory.
pub fn read_small_blob(reader: impl Read, blob: &Descriptor) -> Result<Vec<u8>> {
    if blob.size > MAX_MANIFEST_SIZE {
        return Err(Error::BadInput(format!(
            "config {} is larger than {MAX_MANIFEST_SIZE} bytes",
            blob.digest
        )));
    }
    let mut bytes = Vec::with_capacity(blob.size as usize);
    Verified::new(reader, &blob.digest, blob.size)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::from_io(format!("reading config {}", blob.digest), e))?;
    Ok(bytes)
}

/// The manifest a copy of `source` would take as `platforms` say (for an index, the image
/// chosen in it), without copying anything.
pub fn chosen(source: &dyn Source, platforms: &Platforms) -> Result<RawManifest> {
    Ok(Tree::read(source, platforms, &mut Vec::new())?
        .0
        .manifest()
        .clone())
}

/// The layers a copy of `source` would send as `platforms` say (each image's, in order),
/// read once, as the copy reads them.
pub fn chosen_layers(source: &dyn Source, platforms: &Platforms) -> Result<Vec<Descriptor>> {
    let (tree, _) = Tree::read(source, platforms, &mut Vec::new())?;
    Ok(tree.configs_and_layers().1)
}

/// The blobs of the image `source` gives, whole: configs and layers (for an index, those of
/// each image it lists that `source` holds), read within the manifest budget.
pub fn blobs_of(source: &dyn Source) -> Result<(Vec<Descriptor>, Vec<Descriptor>)> {
    Ok(Tree::read_held(source, source.manifest()?)?.configs_and_layers())
}

/// Where an image is written to (shared by the worker threads).
pub trait Destination: Sync {
    /// Whether the destination already holds `blob` as it is.
    fn has_blob(&self, blob: &Descriptor) -> Result<bool>;
    /// The repository, when the destination is a registry.
    fn repository(&self) -> Option<RepositoryName> {
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
    /// after a failure) and checking it on the way; returns what was stored. `likely` is the
    /// form the memo says a destination that transforms the blob stored it as before: a hint
    /// that may save a request, never trusted over the bytes. Each step that moves the blob
    /// on and would outlast a failure (an upload session opened, bytes the far end
    /// acknowledged) is counted in `headway`, so the retries count only failures in a row.
    fn put_blob(
        &self,
        blob: &Descriptor,
        likely: Option<&Descriptor>,
        open: &mut Open<'_>,
        headway: &Headway,
    ) -> Result<Descriptor>;
    /// The manifest as this destination will store it (by default, as it is).
    fn prepare_manifest(&self, manifest: RawManifest) -> Result<RawManifest> {
        Ok(manifest)
    }
    /// Whether the destination stores a manifest without the bytes of its foreign layers, as
    /// a registry does (they stay at the URLs the manifest names); a destination that must
    /// hold every byte refuses such an image.
    fn keeps_foreign_layers(&self) -> bool {
        false
    }
    /// Stores the manifest under `name` (`None`: an image with no name, known by its ID).
    fn put_manifest(&self, name: Option<&Reference>, manifest: &RawManifest) -> Result<Stored>;
    /// Makes `referrers` (stored already) findable as referrers of `subject`; `index` is the
    /// source's own index of exactly these, for a destination that keeps one to store as it
    /// is where it has none.
    fn link_referrers(
        &self,
        _subject: &Descriptor,
        _referrers: &[Descriptor],
        _index: Option<&RawManifest>,
    ) -> Result<()> {
        Ok(())
    }
    /// Makes every manifest this copy stored visible at once (the cache writes its index
    /// here, once per copy however many names it stored).
    fn publish(&self) -> Result<()> {
        Ok(())
    }
}

/// Opens the bytes of the blob being copied from an offset: what a destination reads through,
/// and calls again to resume where an interrupted transfer stopped.
pub type Open<'s> = dyn FnMut(u64) -> Result<Box<dyn Read + Send + 's>> + 's;

/// What is remembered about blobs between runs: the compressed form an uncompressed layer
/// was pushed as (so the next push asks for it by digest instead of compressing again), and
/// the repositories (`registry/repository`) known to hold a blob (so it can be mounted).
pub trait BlobMemo: Sync {
    /// The compressed form of `uncompressed`, if one was stored before.
    fn compressed(&self, uncompressed: &Digest) -> Option<Descriptor>;
    /// The gzip level the compressed form `compressed` was made at, when it was recorded.
    fn compressed_at(&self, compressed: &Digest) -> Option<u32>;
    /// Records that `uncompressed` was stored as `compressed`, made at gzip `level`.
    fn remember_compressed(
        &self,
        uncompressed: &Digest,
        compressed: &Descriptor,
        level: Option<u32>,
    ) -> Result<()>;
    /// The repositories known to hold `digest`.
    fn holders(&self, digest: &Digest) -> Vec<RepositoryName>;
    /// Records that `repository` holds `digest`.
    fn remember_holder(&self, digest: &Digest, repository: &RepositoryName) -> Result<()>;
    /// Keeps what was remembered for later runs (the copy loop calls it once, at its end).
    fn save(&self) -> Result<()>;
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

/// One image to copy, the names to give it at the destination, and which platforms of an
/// index to take.
pub struct ImageCopy<'a> {
    pub source: &'a dyn Source,
    pub names: Vec<Reference>,
    pub platforms: &'a Platforms,
}

/// How to copy.
#[derive(Clone, Copy, Default)]
pub struct Options<'a> {
    /// Write every blob, even those the destination has.
    pub force: bool,
    /// Look at what is there and report, but write nothing.
    pub dry_run: bool,
    /// Tries in a row, with no headway between them, for a blob whose transfer fails in a way
    /// that may pass (at least 1; see [`crate::retry::Budget`]).
    pub attempts: u32,
    /// Blobs moved at once; with 1 (or 0) no thread is started.
    pub workers: u32,
    /// A cap on the bytes read from the source per second, all workers together.
    pub limit: Option<&'a RateLimit>,
    /// Where the progress of the blobs is shown.
    pub board: Option<&'a Board>,
    /// With `--concurrency dynamic`: how many of the workers may move blobs at once.
    pub governor: Option<&'a Governor>,
    /// What is known about blobs from earlier runs.
    pub memo: Option<&'a dyn BlobMemo>,
    /// The gzip level (`--compress-level`) of a destination that compresses layers.
    pub gzip_level: Option<u32>,
    /// Where the blobs of this run's other copies landed (`sync`).
    pub ledger: Option<&'a Ledger>,
    /// Which referrers of the images go with them (none without).
    pub referrers: Option<&'a ReferrerPolicy>,
}

/// What one copy stored, name by name (`None`: the image has no name).
pub struct Outcome {
    /// The manifest stored (the source's, unless layers were re-encoded).
    pub manifest: Digest,
    /// The manifest as the source has it.
    pub original: Digest,
    /// The image ID: its config's digest (an index's own digest).
    pub id: Digest,
    /// How many layers its images have, each counted once.
    pub layers: usize,
    pub stored: Vec<(Option<Reference>, Stored)>,
    /// The manifests stored as the source has them (the image, an index and its children):
    /// those whose referrers go with them.
    pub subjects: Vec<Descriptor>,
    /// Which platforms of an index were taken.
    pub platforms: PlatformsTaken,
}

/// Counts for the summary line.
#[derive(Default)]
pub struct Summary {
    pub blobs_copied: usize,
    pub blobs_present: usize,
    pub blobs_mounted: usize,
    /// The source sizes of the blobs copied.
    pub bytes_copied: u64,
    /// Their sizes as stored (less, when compressed on the way).
    pub bytes_sent: u64,
    /// What interrupted tries had moved already, not read from the source again.
    pub bytes_resumed: u64,
    /// Blob transfers tried again after a failure that could pass.
    pub retries: u32,
    /// Changes of the worker count (`--concurrency dynamic`).
    pub adjustments: Vec<Adjustment>,
    pub outcomes: Vec<Outcome>,
    /// Referrers (signatures, SBOMs, attestations) copied with the images.
    pub referrers: usize,
    /// The referrers of the images listed while their blobs moved, for carrying them.
    ahead: referrers::Ahead,
}

impl Summary {
    /// Adds the blob counts of `other` (a copy of referrers) to these.
    fn add(&mut self, other: &Summary) {
        self.blobs_copied += other.blobs_copied;
        self.blobs_present += other.blobs_present;
        self.blobs_mounted += other.blobs_mounted;
        self.bytes_copied += other.bytes_copied;
        self.bytes_sent += other.bytes_sent;
        self.bytes_resumed += other.bytes_resumed;
        self.retries += other.retries;
        self.referrers += other.referrers;
    }
}

/// Makes each image copy: reads every manifest first (choosing in an index as the copy's `platforms`
/// say, or taking it with all it lists), then copies each
/// blob once, largest first, on `options.workers` threads, then stores the manifests
/// (children before their index), so a failure in any blob stores no manifest at all; then
/// the referrers of what was stored, as `options.referrers` says. With `dry_run`, stops
/// after looking. What the memo learned is saved at the end, failed or not.
pub fn copy(
    copies: &[ImageCopy<'_>],
    destination: &dyn Destination,
    options: Options<'_>,
    progress: &Progress,
) -> Result<Summary> {
    let copied =
        copy_images(copies, destination, options, progress, true).and_then(|mut summary| {
            if !options.dry_run {
                let level: Vec<referrers::Subjects<'_>> = (copies.iter().zip(&summary.outcomes))
                    .map(|(copy, outcome)| referrers::Subjects {
                        source: copy.source,
                        subjects: outcome.subjects.clone(),
                        name: copy.names.first().cloned(),
                    })
                    .collect();
                let mut carried = Summary::default();
                let (mut seen, mut held) = (HashSet::new(), 0);
                let state = (&mut carried, &mut seen, &mut held);
                let ahead = std::mem::take(&mut summary.ahead);
                referrers::carry((&level, ahead), destination, options, progress, state, 0)?;
                summary.add(&carried);
            }
            destination.publish()?;
            Ok(summary)
        });
    let saved = match options.memo {
        Some(memo) if !options.dry_run => memo.save(),
        _ => Ok(()),
    };
    let summary = copied?;
    saved.map(|()| summary)
}

/// The refusal of a foreign layer by a destination that must hold its bytes.
fn foreign_refused(source: &dyn Source, layer: &Descriptor) -> Error {
    Error::BadInput(format!(
        "{}: layer {} is a foreign layer ({}): the registry does not hold it (its bytes are \
         at the URLs the manifest names), so it cannot be pulled, saved or bundled; copy and \
         sync between registries keep it as it is",
        source.describe(),
        layer.digest,
        layer.media_type
    ))
}

/// Copies the images of `copies` (see [`copy`]), without their referrers; with `look`, those
/// are to be carried, and may be listed while the blobs move.
fn copy_images(
    copies: &[ImageCopy<'_>],
    destination: &dyn Destination,
    options: Options<'_>,
    progress: &Progress,
    look: bool,
) -> Result<Summary> {
    let (trees, taken): (Vec<Tree>, Vec<PlatformsTaken>) = (copies.iter())
        .map(|copy| read_tree(copy, progress))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    let work = blob_work(copies, &trees, destination)?;
    let (copied, ahead) =
        referrers::looking_ahead((copies, &trees), destination, (options, look), || {
            copy_blobs(&work, destination, options, progress)
        });
    let (mut summary, stored) = copied?;
    summary.ahead = ahead;
    if options.dry_run {
        return Ok(summary);
    }
    let prepared = trees
        .iter()
        .map(|tree| tree.prepare(&stored, destination))
        .collect::<Result<Vec<_>>>()?;
    for (((copy, tree), prepared), platforms) in copies.iter().zip(&trees).zip(prepared).zip(taken)
    {
        let names: Vec<Option<&Reference>> = match copy.names.is_empty() {
            true => vec![None],
            false => copy.names.iter().map(Some).collect(),
        };
        let mut outcome = Outcome {
            manifest: prepared.manifest.digest.clone(),
            original: tree.manifest().digest.clone(),
            id: tree.id(),
            layers: tree.layers(),
            stored: Vec::new(),
            subjects: match prepared.manifest.digest == tree.manifest().digest {
                true => tree.manifests(),
                false => Vec::new(),
            },
            platforms,
        };
        for name in names {
            outcome
                .stored
                .push((name.cloned(), prepared.store(name, destination)?));
        }
        summary.outcomes.push(outcome);
    }
    Ok(summary)
}

/// Reads the manifests of `copy`, saying what the plan remarked.
fn read_tree(copy: &ImageCopy<'_>, progress: &Progress) -> Result<(Tree, PlatformsTaken)> {
    let mut remarks = Vec::new();
    let tree = Tree::read(copy.source, copy.platforms, &mut remarks);
    for remark in remarks {
        match remark {
            Remark::Note(text) => progress.info(format_args!("{}: {text}", copy.source.describe())),
            Remark::Warning(text) => {
                progress.warn(format_args!("{}: {text}", copy.source.describe()))
            }
        }
    }
    tree
}

/// Every blob of the copies' trees once, with its source, largest first; a foreign layer is
/// left out where the destination keeps such layers as they are named, else refused.
fn blob_work<'j>(
    copies: &'j [ImageCopy<'_>],
    trees: &'j [Tree],
    destination: &dyn Destination,
) -> Result<Vec<(&'j dyn Source, &'j Descriptor)>> {
    let mut seen = HashSet::new();
    let mut work: Vec<(&dyn Source, &Descriptor)> = Vec::new();
    for (copy, tree) in copies.iter().zip(trees) {
        for blob in tree.blobs() {
            if media_type::is_foreign(&blob.media_type) {
                match destination.keeps_foreign_layers() {
                    true => continue,
                    false => return Err(foreign_refused(copy.source, blob)),
                }
            }
            if seen.insert(&blob.digest) {
                work.push((copy.source, blob));
            }
        }
    }
    work.sort_by_key(|(_, blob)| Reverse(blob.size));
    Ok(work)
}

/// Copies each blob of `work` on the pool, showing it on the board; the counts, and what
/// the destination holds of each blob (by original digest).
fn copy_blobs(
    work: &[(&dyn Source, &Descriptor)],
    destination: &dyn Destination,
    options: Options<'_>,
    progress: &Progress,
) -> Result<(Summary, HashMap<Digest, Descriptor>)> {
    let widened = options
        .governor
        .and_then(|governor| governor.begin(work.len()));
    if let Some(board) = options.board {
        let workers = options.governor.map_or(options.workers, Governor::allowed);
        board.begin(
            work.len(),
            work.iter().map(|(_, blob)| blob.size).sum(),
            workers,
        );
        if let Some(widened) = widened {
            board.adjusted(widened.from, widened.to, &widened.reason);
        }
    }
    let copied = pool::run(work, options.workers, options.governor, |(source, blob)| {
        blob::copy(*source, destination, blob, options, progress)
    });
    if let Some(board) = options.board {
        board.end();
    }
    let copied = copied?;
    let mut summary = Summary {
        adjustments: options
            .governor
            .map(Governor::adjustments)
            .unwrap_or_default(),
        ..Summary::default()
    };
    let mut stored = HashMap::with_capacity(work.len());
    for ((_, blob), (held, done, retries)) in work.iter().zip(copied) {
        summary.retries += retries;
        match done {
            Done::Copied(moved) => {
                summary.blobs_copied += 1;
                summary.bytes_copied += moved.bytes;
                summary.bytes_sent += moved.sent;
                summary.bytes_resumed += moved.resumed;
            }
            Done::Present => summary.blobs_present += 1,
            Done::Mounted => summary.blobs_mounted += 1,
        }
        stored.insert(blob.digest.clone(), held);
    }
    Ok((summary, stored))
}
