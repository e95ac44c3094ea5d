//! Referrers in the cache, laid out as on a registry without the Referrers API: each referrer
//! manifest is an entry of its own (`<repository>@<digest>`, beside its subject), the fallback
//! index `<repository>:sha256-<hex>` lists a subject's referrers, and cosign's tags
//! (`sha256-<hex>.sig`) are entries under their tag names. Being entries, they are staged and
//! published like every image, and `clean` keeps the blobs they use.

use std::fs;

use crate::error::{Context, Error, Result};
use crate::manifest::{Descriptor, RawManifest, media_type};
use crate::reference::Reference;
use crate::registry::{COSIGN_SUFFIXES, Listing, fallback_tag};
use crate::transfer::{Found, Referrer, Source};

use super::{Cache, Index, Session, Unpublished};

impl Session<'_> {
    /// Merges `referrers` of `subject` into the fallback index beside `name` (one of the
    /// names `subject` was stored under): what was recorded there is kept, and `verbatim`
    /// (the source's own index of exactly these) is stored as it is where there was none.
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

/// The index `there` with those of `added` it lacks appended (by digest), or `None` when it
/// lists them all; with nothing there, `verbatim`, else a new OCI index of `added`.
fn merged(
    there: Option<&RawManifest>,
    added: &[Descriptor],
    verbatim: Option<&RawManifest>,
) -> Result<Option<RawManifest>> {
    let (mut listed, media_type) = match there {
        Some(there) => (
            Listing::Tag(Some(there.clone())).entries()?,
            there.media_type.as_str(),
        ),
        None if verbatim.is_some() => return Ok(verbatim.cloned()),
        None => (Vec::new(), media_type::OCI_INDEX),
    };
    let before = listed.len();
    for entry in added {
        if !listed.iter().any(|had| had.digest == entry.digest) {
            listed.push(entry.clone());
        }
    }
    if there.is_some() && listed.len() == before {
        return Ok(None);
    }
    let mut index: serde_json::Value = match there {
        Some(there) => serde_json::from_slice(&there.bytes)
            .map_err(|e| Error::BadInput(format!("referrers index {}: {e}", there.digest)))?,
        None => serde_json::json!({"schemaVersion": 2, "mediaType": media_type::OCI_INDEX}),
    };
    index["manifests"] = serde_json::json!(listed);
    let bytes = serde_json::to_vec(&index).map_err(|e| Error::BadInput(e.to_string()))?;
    Ok(Some(RawManifest::new(bytes, media_type)))
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
        let mut referrers: Vec<Referrer> = (Listing::Tag(recorded.clone()).entries()?)
            .into_iter()
            .map(Referrer::Listed)
            .collect();
        for suffix in COSIGN_SUFFIXES {
            let tag = format!("{}.{suffix}", fallback_tag(&subject.digest));
            if index.get(&name.with_tag(&tag)?.to_string()).is_some() {
                referrers.push(Referrer::Tagged(tag));
            }
        }
        Ok(Found {
            referrers,
            index: recorded,
        })
    }
}
