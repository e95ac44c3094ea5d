//! The fallback index of a subject's referrers (an OCI index of their descriptors, as a
//! registry without the Referrers API keeps at the tag `sha256-<hex>`), as the cache and
//! archives record it: merged, never dropping an entry recorded before.

use crate::error::{Error, Result};
use crate::manifest::{Descriptor, RawManifest, media_type};
use crate::registry::Listing;

/// The index `there` with those of `added` it lacks appended (by digest), or `None` when it
/// lists them all; with nothing there, `verbatim`, else a new OCI index of `added`.
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
