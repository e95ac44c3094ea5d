//! The copy loop every command runs: blobs from a source to a destination (skipping what the
//! destination has), then the manifests, last, so nothing refers to a blob that is not there.

use std::io::Read;

use crate::digest::Digest;
use crate::error::{Context, Error, Result};
use crate::manifest::{Descriptor, RawManifest};
use crate::progress::{Progress, human_bytes};
use crate::reference::Reference;

/// Where an image is read from.
pub trait Source {
    /// The image's manifest bytes, exactly as stored.
    fn manifest(&self) -> Result<RawManifest>;
    /// A stream of one blob of the image.
    fn open_blob(&self, blob: &Descriptor) -> Result<Box<dyn Read + Send + '_>>;
    /// How to name this source in messages (`image.tar`).
    fn describe(&self) -> String;
}

/// Where an image is written to.
pub trait Destination {
    /// Whether the destination already holds `blob`.
    fn has_blob(&self, blob: &Descriptor) -> Result<bool>;
    /// Streams `data` in as `blob`, checking its size and digest on the way.
    fn put_blob(&self, blob: &Descriptor, data: &mut dyn Read) -> Result<()>;
    /// Stores the manifest under `name` (`None`: an image with no name, known by its ID).
    fn put_manifest(&self, name: Option<&Reference>, manifest: &RawManifest) -> Result<Stored>;
}

/// What storing a manifest under a name did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// The name is new.
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
    pub bytes_copied: u64,
    pub outcomes: Vec<Outcome>,
}

/// Copies every job's blobs, then every job's manifests, so that an error in any image's
/// blobs stores no manifest at all.
pub fn copy(
    jobs: &[Job<'_>],
    destination: &dyn Destination,
    progress: &Progress,
) -> Result<Summary> {
    let mut summary = Summary::default();
    let mut manifests = Vec::with_capacity(jobs.len());
    for job in jobs {
        let manifest = job.source.manifest()?;
        let image = manifest
            .image()
            .map_err(|e| Error::BadInput(format!("{}: {e}", job.source.describe())))?;
        for blob in std::iter::once(&image.config).chain(&image.layers) {
            copy_blob(job.source, destination, blob, progress, &mut summary)?;
        }
        manifests.push(manifest);
    }
    for (job, manifest) in jobs.iter().zip(manifests) {
        let names: Vec<Option<&Reference>> = match job.names.is_empty() {
            true => vec![None],
            false => job.names.iter().map(Some).collect(),
        };
        let mut outcome = Outcome {
            manifest: manifest.digest.clone(),
            stored: Vec::new(),
        };
        for name in names {
            let stored = destination.put_manifest(name, &manifest)?;
            outcome.stored.push((name.cloned(), stored));
        }
        summary.outcomes.push(outcome);
    }
    Ok(summary)
}

fn copy_blob(
    source: &dyn Source,
    destination: &dyn Destination,
    blob: &Descriptor,
    progress: &Progress,
    summary: &mut Summary,
) -> Result<()> {
    if destination.has_blob(blob)? {
        progress.detail(format_args!("{} present, skipped", blob.digest));
        summary.blobs_present += 1;
        return Ok(());
    }
    let what = || format!("copying blob {} from {}", blob.digest, source.describe());
    let mut data = source.open_blob(blob).context(what)?;
    destination.put_blob(blob, &mut data).context(what)?;
    progress.detail(format_args!(
        "{} copied ({})",
        blob.digest,
        human_bytes(blob.size)
    ));
    summary.blobs_copied += 1;
    summary.bytes_copied += blob.size;
    Ok(())
}
