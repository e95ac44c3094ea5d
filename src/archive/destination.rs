//! An archive being written, as a copy destination (`save`, `bundle`): blobs are appended to
//! the tar as they come, one at a time (an archive is one stream), and manifests are recorded;
//! [`ArchiveDestination::finish`] lists them in `manifest.json` and `index.json`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Mutex, MutexGuard};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::fallback::merged;
use crate::manifest::fallback::subject_of_tag;
use crate::manifest::{self, Descriptor, Parsed, Platform, RawManifest};
use crate::reference::Reference;
use crate::retry::Headway;
use crate::transfer::{Destination, Open, Stored};

use super::delta::{DELTA_ENTRY, Delta, Omitted, Since};
use super::referrers::{REFERRERS_ENTRY, Referrers, WrittenReferrer};
use super::write::{ArchiveWriter, LegacyEntry};

/// An archive being written to `W`, as a copy destination.
pub struct ArchiveDestination<W: Write> {
    state: Mutex<State<W>>,
}

struct State<W: Write> {
    writer: ArchiveWriter<W>,
    recorded: Recorded,
    /// What a delta archive leaves out (`bundle --since`), and since what.
    leave_out: HashMap<Digest, Omitted>,
    since: Since,
    /// Those of them the images used, which the delta entry lists.
    left_out: BTreeMap<Digest, Omitted>,
}

/// What a destination writing an OCI layout (an archive, a layout folder) records of the
/// manifests it stores: the manifests, and the referrers and their fallback indexes.
#[derive(Default)]
pub(super) struct Recorded {
    /// The manifests stored so far, by digest: an index's children come before it.
    pub manifests: HashMap<Digest, RawManifest>,
    /// The referrers written, which the referrers entry lists.
    pub referrers: Referrers,
    /// The fallback index written for each subject, by the subject's digest.
    pub fallbacks: HashMap<Digest, RawManifest>,
}

impl Recorded {
    /// Records `manifest`, stored under `name`; whether it is an image to list by name: not
    /// a referrer (cosign's tags go to the referrers entry, and a manifest naming a subject
    /// is never an image to load), nor stored as `name@digest` (an index's child).
    pub fn record(&mut self, name: Option<&Reference>, manifest: &RawManifest) -> bool {
        (self.manifests).insert(manifest.digest.clone(), manifest.clone());
        if let Some(name) = name.filter(|name| name.tag().and_then(subject_of_tag).is_some()) {
            (self.referrers.tags).insert(name.to_string(), manifest.descriptor());
            return false;
        }
        !(name.is_some_and(|name| name.digest().is_some()) || manifest.as_referrer().0.is_some())
    }

    /// The fallback index of `subject`'s referrers to write (the source's own when it lists
    /// exactly these, else merged with what was recorded before), recorded for the referrers
    /// entry; none when there is nothing to write.
    pub fn link(
        &mut self,
        subject: &Descriptor,
        referrers: &[Descriptor],
        index: Option<&RawManifest>,
    ) -> Result<Option<RawManifest>> {
        if referrers.is_empty() {
            return Ok(None);
        }
        let Some(fallback) = merged(self.fallbacks.get(&subject.digest), referrers, index)? else {
            return Ok(None);
        };
        (self.referrers.indexes).insert(subject.digest.clone(), fallback.descriptor());
        (self.fallbacks).insert(subject.digest.clone(), fallback.clone());
        Ok(Some(fallback))
    }

    /// The referrers written so far, with their subjects and blobs.
    pub fn written(&self) -> Result<Vec<WrittenReferrer>> {
        self.referrers.written(
            |subject| self.fallbacks.get(subject).cloned(),
            |digest| self.manifests.get(digest).cloned(),
        )
    }
}

impl<W: Write + Send> ArchiveDestination<W> {
    /// An empty archive writing to `out`.
    pub fn new(out: W) -> ArchiveDestination<W> {
        let state = State {
            writer: ArchiveWriter::new(out),
            recorded: Recorded::default(),
            leave_out: HashMap::new(),
            since: Since::default(),
            left_out: BTreeMap::new(),
        };
        ArchiveDestination {
            state: Mutex::new(state),
        }
    }

    fn state(&self) -> MutexGuard<'_, State<W>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the archive a delta: the blobs of `omitted` are taken as held and not written,
    /// and those the images use are listed, with `since`, in the delta entry.
    pub fn leaving_out(self, since: Since, omitted: Vec<Omitted>) -> ArchiveDestination<W> {
        {
            let mut state = self.state();
            state.since = since;
            state.leave_out = (omitted.into_iter())
                .map(|blob| (blob.digest.clone(), blob))
                .collect();
        }
        self
    }

    /// The blobs left out that the images used, so far.
    pub fn left_out(&self) -> Vec<Omitted> {
        self.state().left_out.values().cloned().collect()
    }

    /// The referrers written so far, with their subjects and blobs.
    pub fn referrers(&self) -> Result<Vec<WrittenReferrer>> {
        self.state().recorded.written()
    }

    /// Writes the listings, ends the archive, and returns the output.
    pub fn finish(self) -> Result<W> {
        let mut state = self.state.into_inner().unwrap_or_else(|e| e.into_inner());
        if !state.left_out.is_empty() {
            let delta = Delta {
                since: state.since.clone(),
                omitted: state.left_out.values().cloned().collect(),
            };
            state.writer.json_file(DELTA_ENTRY, &delta)?;
        }
        if !state.recorded.referrers.is_empty() {
            let referrers = std::mem::take(&mut state.recorded.referrers);
            state.writer.json_file(REFERRERS_ENTRY, &referrers)?;
        }
        state.writer.finish()
    }
}

impl<W: Write + Send> Destination for ArchiveDestination<W> {
    fn has_blob(&self, blob: &Descriptor) -> Result<bool> {
        let mut state = self.state();
        if let Some(omitted) = state.leave_out.get(&blob.digest).cloned() {
            state.left_out.insert(blob.digest.clone(), omitted);
            return Ok(true);
        }
        Ok(state.writer.holds(&blob.digest))
    }

    fn put_blob(
        &self,
        blob: &Descriptor,
        _likely: Option<&Descriptor>,
        open: &mut Open<'_>,
        _headway: &Headway,
    ) -> Result<Descriptor> {
        let mut data = open(0)?;
        self.state()
            .writer
            .blob(&blob.digest, blob.size, &mut *data)?;
        Ok(blob.clone())
    }

    /// Writes the manifest's bytes; an image to list ([`Recorded::record`]) is listed in
    /// `index.json`, and in `manifest.json` as one image: itself, or for an index the image
    /// for this host's platform (`docker load` takes one image per name).
    fn put_manifest(&self, name: Option<&Reference>, manifest: &RawManifest) -> Result<Stored> {
        let mut state = self.state();
        state.writer.manifest(manifest)?;
        if !state.recorded.record(name, manifest) {
            return Ok(Stored::New);
        }
        let listed = state.image_for_this_host(manifest)?;
        let image = listed.image().map_err(Error::BadInput)?;
        state.writer.legacy(LegacyEntry {
            config: image.config.digest.clone(),
            repo_tags: name.and_then(Reference::familiar).into_iter().collect(),
            layers: image
                .layers
                .iter()
                .map(|layer| layer.digest.clone())
                .collect(),
        });
        let full = name.map(Reference::to_string);
        state
            .writer
            .name(manifest, full.as_deref(), name.and_then(Reference::tag));
        Ok(Stored::New)
    }

    /// Writes the fallback index of `subject`'s referrers ([`Recorded::link`]).
    fn link_referrers(
        &self,
        subject: &Descriptor,
        referrers: &[Descriptor],
        index: Option<&RawManifest>,
    ) -> Result<()> {
        let mut state = self.state();
        match state.recorded.link(subject, referrers, index)? {
            Some(fallback) => state.writer.manifest(&fallback),
            None => Ok(()),
        }
    }
}

impl<W: Write> State<W> {
    /// `manifest` itself, or the image an index offers this host (else its first), found
    /// among the manifests stored before it.
    fn image_for_this_host(&self, manifest: &RawManifest) -> Result<RawManifest> {
        let bad = |e: String| Error::BadInput(format!("manifest {}: {e}", manifest.digest));
        let Parsed::Index(index) = manifest::parse(&manifest.bytes).map_err(bad)? else {
            return Ok(manifest.clone());
        };
        let entries = index.entries();
        let images = || {
            (entries.iter())
                .filter(|entry| !entry.platform.as_ref().is_some_and(Platform::is_unknown))
        };
        let chosen = (Platform::host().choose(images()))
            .or(images().next())
            .ok_or_else(|| bad("the index lists no image".into()))?;
        let child = (self.recorded.manifests)
            .get(&chosen.digest)
            .ok_or_else(|| bad(format!("{} was not stored before it", chosen.digest)))?;
        self.image_for_this_host(child)
    }
}
