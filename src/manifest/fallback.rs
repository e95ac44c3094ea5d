//! The fallback index of a subject's referrers (an OCI index of their descriptors, as a
//! registry without the Referrers API keeps at the tag `sha256-<hex>`), as the cache and
//! archives record it: merged, never dropping an entry recorded before.

use crate::error::{Error, Result};
use crate::manifest::{Descriptor, RawManifest, media_type};
use crate::registry::Listing;

/// The index `there` with those of `added` it lacks appended (by digest), or `None` when it
/// lists them all. `verbatim` (the source's own index of `added`) is taken as it is where it
/// lists all that would be (nothing there, or what was there is all in it: the source
/// signed again), so the source's bytes and digest are kept; else a new index is written.
pub fn merged(
    there: Option<&RawManifest>,
    added: &[Descriptor],
    verbatim: Option<&RawManifest>,
) -> Result<Option<RawManifest>> {
    let (mut listed, media_type) = match there {
        Some(there) => (
            Listing::Tag(Some(there.clone())).entries()?,
            there.media_type.as_str(),
        ),
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
    if let Some(verbatim) = verbatim {
        let offered = Listing::Tag(Some(verbatim.clone())).entries()?;
        if (listed.iter()).all(|entry| offered.iter().any(|o| o.digest == entry.digest)) {
            return Ok(Some(verbatim.clone()));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn entry(byte: char) -> Descriptor {
        let digest = Digest::from_hex(&byte.to_string().repeat(64)).unwrap();
        Descriptor::new(media_type::OCI_MANIFEST, digest, 10)
    }

    fn index(entries: &[Descriptor]) -> RawManifest {
        let index = serde_json::json!({"manifests": entries, "annotations": {"by": "source"}});
        RawManifest::new(index.to_string().into_bytes(), media_type::OCI_INDEX)
    }

    #[test]
    fn the_sources_index_is_kept_when_it_lists_all_that_was_there() {
        let there = index(&[entry('a')]);
        let source = index(&[entry('a'), entry('b')]);
        let both = [entry('a'), entry('b')];
        let kept = merged(Some(&there), &both, Some(&source)).unwrap().unwrap();
        assert_eq!(kept.digest, source.digest);
        assert!(
            merged(Some(&source), &both, Some(&source))
                .unwrap()
                .is_none()
        );
        // What was there and the source lacks is never dropped.
        let other = index(&[entry('c')]);
        let grown = merged(Some(&other), &both, Some(&source)).unwrap().unwrap();
        let listed = Listing::Tag(Some(grown)).entries().unwrap();
        assert_eq!(listed, [entry('c'), entry('a'), entry('b')]);
        let fresh = merged(None, &both, None).unwrap().unwrap();
        assert_eq!(Listing::Tag(Some(fresh)).entries().unwrap(), both);
    }
}
