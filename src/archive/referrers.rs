//! Referrers in an archive (`save`, `bundle`): their manifests and blobs under
//! `blobs/sha256/` like every image's, but listed in neither `manifest.json` nor `index.json`
//! (so `docker load`, `podman load`, `ctr import` and skopeo read the archive as before) and
//! instead in one entry of their own, `docker-image-pusher-referrers.json`: for each subject
//! the fallback index of its referrers (a blob of the archive, as a registry without the
//! Referrers API keeps it at `sha256-<hex>`), and cosign's tags by full name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::inert::inert;
use crate::manifest::fallback::{self, subject_of_tag};
use crate::manifest::{Descriptor, RawManifest};
use crate::reference::Reference;
use crate::transfer::{Found, Referrer};

use super::entries::Entries;

/// One referrer written into an archive, as `bundle.json` lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct WrittenReferrer {
    /// The manifest it is a referrer of.
    pub subject: Digest,
    /// Its own manifest.
    pub manifest: Descriptor,
    /// cosign's tag it is at (`sha256-<hex>.sig`), if that is how it was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The blobs it uses (config and layers).
    pub blobs: Vec<Descriptor>,
}

/// The entry that lists an archive's referrers.
pub const REFERRERS_ENTRY: &str = "docker-image-pusher-referrers.json";

/// What an archive lists as referrers.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Referrers {
    /// The fallback index of each subject's referrers, by the subject's digest.
    #[serde(default)]
    pub indexes: BTreeMap<Digest, Descriptor>,
    /// cosign's tags (`registry/repository:sha256-<hex>.sig`), each a manifest of the archive.
    #[serde(default)]
    pub tags: BTreeMap<String, Descriptor>,
}

impl Referrers {
    /// The referrers entry of `entries`; none listed when the archive has no such entry.
    pub fn read(entries: &Entries, name: &str) -> Result<Referrers> {
        if !entries.contains(REFERRERS_ENTRY) {
            return Ok(Referrers::default());
        }
        let bytes = entries.read_small(REFERRERS_ENTRY)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::BadInput(format!(
                "{name}: {REFERRERS_ENTRY}: not a listing of referrers ({})",
                inert(&e.to_string())
            ))
        })
    }

    /// Whether it lists nothing.
    pub fn is_empty(&self) -> bool {
        self.indexes.is_empty() && self.tags.is_empty()
    }

    /// The referrers listed for `subject` of an image named `names`: its fallback index's
    /// entries (`index` reads that index), and cosign's tags beside one of the names.
    pub fn of(
        &self,
        names: &[Reference],
        subject: &Descriptor,
        index: impl FnOnce(&Descriptor) -> Result<RawManifest>,
    ) -> Result<Found> {
        let recorded = self.indexes.get(&subject.digest).map(index).transpose()?;
        Found::recorded(&subject.digest, recorded, |tag| {
            let named = |name: &Reference| {
                (name.with_tag(tag)).is_ok_and(|tagged| self.tags.contains_key(&tagged.to_string()))
            };
            Ok(names.iter().any(named))
        })
    }

    /// Every referrer listed, with its subject; `manifest` gives the bytes of one written.
    pub fn written(
        &self,
        fallbacks: impl Fn(&Digest) -> Option<RawManifest>,
        manifest: impl Fn(&Digest) -> Option<RawManifest>,
    ) -> Result<Vec<WrittenReferrer>> {
        let mut written = Vec::new();
        let blobs = |descriptor: &Descriptor| {
            (manifest(&descriptor.digest))
                .and_then(|raw| raw.image().ok())
                .map(|image| [vec![image.config], image.layers].concat())
                .unwrap_or_default()
        };
        for subject in self.indexes.keys() {
            for entry in fallback::listed(fallbacks(subject).as_ref())? {
                written.push(WrittenReferrer {
                    subject: subject.clone(),
                    blobs: blobs(&entry),
                    manifest: entry,
                    tag: None,
                });
            }
        }
        for (name, descriptor) in &self.tags {
            let tag = Reference::parse(name)
                .ok()
                .and_then(|n| n.tag().map(str::to_string));
            let Some(subject) = tag.as_deref().and_then(subject_of_tag) else {
                continue;
            };
            written.push(WrittenReferrer {
                subject,
                blobs: blobs(descriptor),
                manifest: descriptor.clone(),
                tag,
            });
        }
        Ok(written)
    }

    /// The manifest a referrer of an image named `names` is, as listed here.
    pub fn descriptor(&self, names: &[Reference], referrer: &Referrer) -> Option<Descriptor> {
        match referrer {
            Referrer::Listed(entry) => Some(entry.clone()),
            Referrer::Tagged(tag) => (names.iter())
                .filter_map(|name| name.with_tag(tag).ok())
                .find_map(|tagged| self.tags.get(&tagged.to_string()).cloned()),
        }
    }
}
