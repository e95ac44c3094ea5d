//! How referrers are kept where there is no Referrers API: the fallback index of a subject
//! (an OCI index of its referrers' descriptors at the tag `sha256-<hex>`, as registries
//! without the API, the cache and archives hold it) and cosign's sibling tags
//! `sha256-<hex>.sig`, `.att` and `.sbom`. Reading an index is bounded ([`MAX_REFERRERS`]);
//! merging into one never drops an entry, nor a field of one, that was there.

use serde_json::Value;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::inert::inert;
use crate::manifest::{Descriptor, RawManifest, media_type};

/// The most referrers one subject may have; a listing with more is refused.
pub const MAX_REFERRERS: usize = 1000;
/// cosign's sibling tags of a signed image: `sha256-<hex>.sig` and the like.
pub const COSIGN_SUFFIXES: [&str; 3] = ["sig", "att", "sbom"];

/// The fallback tag of `subject`: `sha256-<hex>`.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// cosign's tags of `subject`, one per suffix.
pub fn cosign_tags(subject: &Digest) -> impl Iterator<Item = String> {
    let fallback = fallback_tag(subject);
    COSIGN_SUFFIXES
        .map(move |suffix| format!("{fallback}.{suffix}"))
        .into_iter()
}

/// Whether `tag` is a fallback tag or one of cosign's tags (`sha256-<hex>[.<suffix>]`), and
/// if so, the subject it is about.
pub fn subject_of_tag(tag: &str) -> Option<Digest> {
    let rest = tag.strip_prefix("sha256-")?;
    let (hex, suffix) = rest.split_at_checked(64)?;
    let known = suffix.is_empty()
        || (suffix.strip_prefix('.')).is_some_and(|s| COSIGN_SUFFIXES.contains(&s));
    known.then(|| Digest::from_hex(hex)).flatten()
}

/// The referrers a fallback index lists (none without one), at most [`MAX_REFERRERS`].
pub fn listed(index: Option<&RawManifest>) -> Result<Vec<Descriptor>> {
    match index {
        None => Ok(Vec::new()),
        Some(index) => entries_of(
            &index.bytes,
            &format!("the referrers index {}", index.digest),
        ),
    }
}

/// The descriptors an index of referrers lists, at most [`MAX_REFERRERS`]; `what` names it in
/// errors.
pub fn entries_of(bytes: &[u8], what: &str) -> Result<Vec<Descriptor>> {
    #[derive(serde::Deserialize)]
    struct Index {
        #[serde(default)]
        manifests: Vec<Descriptor>,
    }
    let index: Index = serde_json::from_slice(bytes).map_err(|e| {
        Error::BadInput(format!(
            "{what}: not an index of referrers ({})",
            inert(&e.to_string())
        ))
    })?;
    too_many(index.manifests.len(), what)?;
    Ok(index.manifests)
}

/// Refuses a listing of more than [`MAX_REFERRERS`].
pub fn too_many(count: usize, what: &str) -> Result<()> {
    match count > MAX_REFERRERS {
        true => Err(Error::BadInput(format!(
            "{what}: more than {MAX_REFERRERS} referrers; refused (--no-referrers, or \
             --referrers-type to take some)"
        ))),
        false => Ok(()),
    }
}

/// The index `there` with those of `added` it lacks appended (by digest, each entry there
/// kept as it was written), or `None` when it lists them all. `verbatim` (the source's own
/// index of `added`) is taken as it is where it lists all that would be (nothing there, or
/// all that was there: the source signed again), so the source's bytes and digest are kept.
pub fn merged(
    there: Option<&RawManifest>,
    added: &[Descriptor],
    verbatim: Option<&RawManifest>,
) -> Result<Option<RawManifest>> {
    let Some(there) = there else {
        if let Some(verbatim) = verbatim {
            return Ok(Some(verbatim.clone()));
        }
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_INDEX,
            "manifests": added,
        });
        return Ok(Some(RawManifest::new(
            index.to_string().into_bytes(),
            media_type::OCI_INDEX,
        )));
    };
    let what = format!("the referrers index {}", there.digest);
    let listed = entries_of(&there.bytes, &what)?;
    let missing: Vec<&Descriptor> = (added.iter())
        .filter(|entry| !listed.iter().any(|had| had.digest == entry.digest))
        .collect();
    if missing.is_empty() {
        return Ok(None);
    }
    if let Some(verbatim) = verbatim {
        let offered = entries_of(
            &verbatim.bytes,
            &format!("the referrers index {}", verbatim.digest),
        )?;
        let offers = |entry: &Descriptor| offered.iter().any(|o| o.digest == entry.digest);
        if listed.iter().chain(missing.iter().copied()).all(offers) {
            return Ok(Some(verbatim.clone()));
        }
    }
    too_many(listed.len() + missing.len(), &what)?;
    let mut index: Value = serde_json::from_slice(&there.bytes)
        .map_err(|e| Error::BadInput(format!("{what}: {e}")))?;
    let Some(manifests) = index
        .as_object_mut()
        .map(|fields| {
            fields
                .entry("manifests")
                .or_insert_with(|| Value::Array(Vec::new()))
        })
        .and_then(Value::as_array_mut)
    else {
        return Err(Error::BadInput(format!(
            "{what}: not an index of referrers"
        )));
    };
    for entry in missing {
        manifests.push(serde_json::to_value(entry).map_err(|e| Error::BadInput(e.to_string()))?);
    }
    let bytes = serde_json::to_vec(&index).map_err(|e| Error::BadInput(e.to_string()))?;
    Ok(Some(RawManifest::new(bytes, &there.media_type)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(byte: char) -> Digest {
        Digest::from_hex(&byte.to_string().repeat(64)).unwrap()
    }

    fn entry(byte: char) -> Descriptor {
        let mut entry = Descriptor::new(media_type::OCI_MANIFEST, digest(byte), 10);
        entry.artifact_type = Some("application/spdx+json".into());
        entry
    }

    fn index(entries: &[Descriptor]) -> RawManifest {
        let index = serde_json::json!({"manifests": entries, "annotations": {"by": "source"}});
        RawManifest::new(index.to_string().into_bytes(), media_type::OCI_INDEX)
    }

    #[test]
    fn fallback_and_cosign_tags_name_their_subject() {
        let subject = digest('a');
        assert_eq!(
            subject_of_tag(&fallback_tag(&subject)),
            Some(subject.clone())
        );
        for tag in cosign_tags(&subject) {
            assert_eq!(subject_of_tag(&tag), Some(subject.clone()));
        }
        for tag in [
            "v1",
            "sha256-abc",
            &format!("{}.zip", fallback_tag(&subject)),
        ] {
            assert_eq!(subject_of_tag(tag), None, "{tag}");
        }
    }

    #[test]
    fn a_merge_keeps_what_others_listed_field_by_field_and_adds_only_what_is_missing() {
        let theirs = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_INDEX,
            "manifests": [{"mediaType": media_type::OCI_MANIFEST, "digest": digest('b'),
                "size": 10, "data": "e30=", "urls": ["https://example.com/x"]}],
            "annotations": {"kept": "yes"},
        });
        let there = RawManifest::new(theirs.to_string().into_bytes(), media_type::OCI_INDEX);
        let both = merged(Some(&there), &[entry('b'), entry('c')], None)
            .unwrap()
            .unwrap();
        let index: Value = serde_json::from_slice(&both.bytes).unwrap();
        assert_eq!(
            index["manifests"][0], theirs["manifests"][0],
            "theirs as written"
        );
        assert_eq!(index["manifests"][1]["digest"], digest('c').to_string());
        assert_eq!(index["annotations"]["kept"], "yes");
        assert!(merged(Some(&there), &[entry('b')], None).unwrap().is_none());
    }

    #[test]
    fn the_sources_index_is_kept_when_it_lists_all_that_would_be() {
        let source = index(&[entry('a'), entry('b')]);
        let both = [entry('a'), entry('b')];
        assert_eq!(
            merged(None, &both, Some(&source)).unwrap().unwrap().digest,
            source.digest
        );
        // The source signed again: what was there is all in its new index.
        let there = index(&[entry('a')]);
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
        assert_eq!(
            listed(Some(&grown)).unwrap(),
            [entry('c'), entry('a'), entry('b')]
        );
        let fresh = merged(None, &both, None).unwrap().unwrap();
        assert_eq!(listed(Some(&fresh)).unwrap(), both);
    }

    #[test]
    fn a_listing_of_too_many_referrers_is_refused() {
        let many: Vec<Descriptor> = (0..=MAX_REFERRERS).map(|_| entry('d')).collect();
        let index = serde_json::json!({"manifests": many}).to_string();
        let refused = entries_of(index.as_bytes(), "GET x").unwrap_err();
        assert!(
            refused.to_string().contains("more than 1000 referrers"),
            "{refused}"
        );
    }
}
