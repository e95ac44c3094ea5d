//! `inspect --referrers`: the signatures, SBOMs and attestations an image has, as its source
//! lists them: for the image (or index) itself and, for an index, for each image it lists,
//! each with its artifact type, digest, size, creation time and the subject it is about.

use serde_json::{Value, json};

use crate::error::Result;
use crate::inert::inert;
use crate::manifest::{self, Descriptor, Parsed, Platform, RawManifest};
use crate::progress::human_bytes;
use crate::transfer::{Referrer, Source, kind_of};

/// The annotation that says when an artifact was made.
const CREATED: &str = "org.opencontainers.image.created";

/// The referrers of `manifest` (from `source`) and of the images it lists, one JSON object
/// each.
pub fn listed(source: &dyn Source, manifest: &RawManifest) -> Result<Vec<Value>> {
    let mut subjects = vec![(manifest.descriptor(), whole(manifest))];
    if let Ok(Parsed::Index(index)) = manifest::parse(&manifest.bytes) {
        for entry in index.entries() {
            let label = (entry.platform.as_ref())
                .map_or_else(|| entry.digest.to_string(), Platform::to_string);
            subjects.push((entry.clone(), label));
        }
    }
    let mut rows = Vec::new();
    for (subject, label) in subjects {
        for referrer in source.referrers(&subject)?.referrers {
            let mut row = described(source, &referrer)?;
            row["subject"] = json!({ "digest": subject.digest, "of": label });
            rows.push(row);
        }
    }
    Ok(rows)
}

/// How the subject that is the inspected manifest itself is named.
fn whole(manifest: &RawManifest) -> String {
    match manifest::parse(&manifest.bytes) {
        Ok(Parsed::Index(_)) => "index".into(),
        _ => "image".into(),
    }
}

/// One referrer as a row: what its listing says, or, for a cosign tag (which lists nothing),
/// what its manifest says.
fn described(source: &dyn Source, referrer: &Referrer) -> Result<Value> {
    let (entry, tag) = match referrer {
        Referrer::Listed(entry) => (entry.clone(), None),
        Referrer::Tagged(tag) => {
            let manifest = source.referrer(referrer)?.manifest()?;
            let mut entry = manifest.as_referrer().1;
            entry.artifact_type = kind_of(&manifest);
            (entry, Some(tag.clone()))
        }
    };
    Ok(row(&entry, tag))
}

/// The JSON row of a referrer's descriptor.
fn row(entry: &Descriptor, tag: Option<String>) -> Value {
    let created = (entry.annotations.as_ref()).and_then(|a| a.get(CREATED));
    json!({
        "artifact_type": entry.artifact_type,
        "digest": entry.digest,
        "size": entry.size,
        "media_type": entry.media_type,
        "created": created,
        "tag": tag,
    })
}

/// The rows as a table for people, every outside string shown inert.
pub fn table(rows: &[Value]) -> String {
    let text = |value: &Value| match value {
        Value::String(s) => inert(s).to_string(),
        _ => "-".into(),
    };
    if rows.is_empty() {
        return "No referrers.\n".into();
    }
    let mut out = format!(
        "{:<19} {:>9}  {:<20} {:<16} {}\n",
        "DIGEST", "SIZE", "CREATED", "SUBJECT", "ARTIFACT TYPE"
    );
    for row in rows {
        let digest = text(&row["digest"]);
        let short = digest.get(..19).unwrap_or(&digest);
        // A cosign tag is named by its suffix: the rest is the subject's digest.
        let kind = match row["tag"].as_str().and_then(|tag| tag.rsplit_once('.')) {
            Some((_, suffix)) => format!(
                "{} (cosign .{})",
                text(&row["artifact_type"]),
                inert(suffix)
            ),
            None => text(&row["artifact_type"]),
        };
        out.push_str(&format!(
            "{short:<19} {:>9}  {:<20} {:<16} {kind}\n",
            human_bytes(row["size"].as_u64().unwrap_or_default()),
            text(&row["created"]),
            text(&row["subject"]["of"]),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    #[test]
    fn a_row_says_type_digest_size_created_and_subject() {
        let digest = Digest::from_hex(&"a".repeat(64)).unwrap();
        let mut entry = Descriptor::new("application/vnd.oci.image.manifest.v1+json", digest, 512);
        entry.artifact_type = Some("application/spdx+json".into());
        entry.annotations =
            Some([(CREATED.to_string(), "2026-12-01T00:00:00Z".to_string())].into());
        let mut listed = row(&entry, None);
        listed["subject"] = json!({ "digest": "sha256:b", "of": "linux/arm64" });
        assert_eq!(listed["created"], "2026-12-01T00:00:00Z");
        let shown = table(&[listed]);
        let line = shown.lines().nth(1).unwrap();
        assert!(line.starts_with("sha256:aaaaaaaaaaaa"), "{shown}");
        assert!(
            line.contains("512 B") && line.contains("linux/arm64"),
            "{shown}"
        );
        assert!(line.ends_with("application/spdx+json"), "{shown}");
        assert_eq!(table(&[]), "No referrers.\n");
    }

    #[test]
    fn control_characters_in_a_listing_are_shown_inert() {
        let digest = Digest::from_hex(&"c".repeat(64)).unwrap();
        let mut entry = Descriptor::new("x", digest, 1);
        entry.artifact_type = Some("evil\u{1b}[2J".into());
        let mut listed = row(&entry, None);
        listed["subject"] = json!({ "of": "image" });
        assert!(!table(&[listed]).contains('\u{1b}'));
    }
}
