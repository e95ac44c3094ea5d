//! Referrers in the cache, laid out as on a registry without the Referrers API: each referrer
//! manifest is an entry of its own (`<repository>@<digest>`, beside its subject), the fallback
//! index `<repository>:sha256-<hex>` lists a subject's referrers, and cosign's tags
//! (`sha256-<hex>.sig`) are entries under their tag names. Being entries, they are staged and
//! published like every image, and `clean` keeps the blobs they use.

use std::fs;

use crate::error::{Context, Error, Result};
use crate::manifest::fallback::fallback_tag;
use crate::manifest::fallback::merged;
use crate::manifest::{Descriptor, RawManifest, media_type};
use crate::reference::Reference;
use crate::transfer::{Found, Source};

use super::{Cache, Index, Session, Unpublished};

impl Session<'_> {
    /// Merges `referrers` of `subject` into the fallback index beside `name` (one of the
    /// names `subject` was stored under): what was recorded there is kept, and `verbatim`
    /// (the source's own index of exactly these) is stored as it is where it lists all of
    /// that (see [`merged`]).
    pub(super) fn link_referrers(
        &self,
        name: &Reference,
        subject: &Descriptor,
        (referrers, verbatim): (&[Descriptor], Option<&RawManifest>),
        source: &str,
        unpublished: &mut Unpublished,
    ) -> Result<()> {
        if referrers.is_empty() {
            return Ok(());
        }
        let fallback = name.with_tag(&fallback_tag(&subject.digest))?;
        let key = fallback.to_string();
        let there = match unpublished.previous(&key, || self.cache.index())? {
            Some(digest) => {
                let path = self.cache.root.join(manifest_path(&fallback));
                let bytes = fs::read(&path).context(|| format!("reading {}", path.display()))?;
                let there = RawManifest::new(bytes, media_type::OCI_INDEX);
                if there.digest != digest {
                    return Err(Error::BadInput(format!(
                        "{}: the cached referrers index {key} hashes to {}, not {digest}",
                        path.display(),
                        there.digest
                    )));
                }
                Some(there)
            }
            None => None,
        };
        match merged(there.as_ref(), referrers, verbatim)? {
            Some(index) => self
                .commit(Some(&fallback), &index, source, unpublished)
                .map(drop),
            None => Ok(()),
        }
    }
}

/// Where the cache keeps the manifest stored under `name`.
pub(super) fn manifest_path(name: &Reference) -> String {
    format!("manifests/{}/{}", name.name(), name.reference())
}

impl Cache {
    /// The referrers the cache recorded for `subject` beside `name`: its fallback index's
    /// entries, and cosign's tags of it.
    pub(super) fn referrers(&self, name: &Reference, subject: &Descriptor) -> Result<Found> {
        let index: Index = self.index()?;
        let fallback = name.with_tag(&fallback_tag(&subject.digest))?;
        let recorded = match index.get(&fallback.to_string()) {
            Some(_) => Some(self.image(&fallback.to_string())?.manifest()?),
            None => None,
        };
        Found::recorded(&subject.digest, recorded, |tag| {
            Ok(index.get(&name.with_tag(tag)?.to_string()).is_some())
        })
    }
}
