//! Tags and the manifests they name, for `delete`: which tags of a repository name one
//! manifest (a bounded look), and deleting one tag alone, which the registry API cannot do
//! directly. Deleting a manifest deletes every tag naming it; so the tag is first pointed at a
//! throwaway manifest of its own (an empty config and a unique annotation), which is then
//! deleted by digest, as `regctl tag delete` does.

use std::io::{Cursor, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::Registry;
use super::blobs::{Bytes, UploadPlan};
use crate::digest::Digest;
use crate::error::{Context, Error, Result};
use crate::manifest::{Descriptor, RawManifest, media_type};
use crate::reference;
use crate::retry::Headway;

/// The most tags of a repository looked at (one `HEAD` each) to find those naming a manifest.
pub const MAX_TAGS_CHECKED: usize = 1000;

/// OCI's empty JSON blob, the config (and only layer) of the throwaway manifest.
const EMPTY_JSON: &[u8] = b"{}";

/// The annotation that makes each throwaway manifest unique: the tag, the time, the process,
/// and how many this process made before.
const ANNOTATION_UNTAG: &str = "docker-image-pusher.untag";

/// The tags of a repository naming one manifest, as far as they were looked at.
pub struct Naming {
    /// Those naming it, sorted.
    pub tags: Vec<String>,
    /// Whether the repository has more tags than were looked at.
    pub partial: bool,
}

impl Registry {
    /// The tags of `repository` naming the manifest `digest`, looking at its first
    /// [`MAX_TAGS_CHECKED`] tags. Listed names that are not valid tags are passed over.
    pub fn tags_naming(&self, repository: &str, digest: &Digest) -> Result<Naming> {
        let mut listed = Vec::new();
        let mut partial = false;
        self.tags(repository, None, &mut |tag| {
            if reference::check_tag(tag).is_err() {
                return Ok(true);
            }
            partial = listed.len() == MAX_TAGS_CHECKED;
            if !partial {
                listed.push(tag.to_string());
            }
            Ok(!partial)
        })?;
        let mut tags = Vec::new();
        for tag in listed {
            if self.manifest_digest(repository, &tag, false)?.as_ref() == Some(digest) {
                tags.push(tag);
            }
        }
        tags.sort_unstable();
        Ok(Naming { tags, partial })
    }

    /// Deletes `tag` of `repository` alone, leaving `original`, the manifest it names, and the
    /// other tags naming it: the tag is pointed at a throwaway manifest, deleted in turn. If
    /// that cannot be deleted, the tag is pointed back at `original`.
    pub fn untag(&self, repository: &str, tag: &str, original: &Digest) -> Result<()> {
        let kept = self.get_manifest(repository, &original.to_string())?;
        let throwaway = throwaway_manifest(tag)?;
        self.put_empty_json(repository)
            .and_then(|()| self.put_manifest(repository, tag, &throwaway))
            .context(|| "pointing the tag at a throwaway manifest")?;
        let Err(error) = self.delete_manifest(repository, &throwaway.digest) else {
            return Ok(());
        };
        let restored = self.put_manifest(repository, tag, &kept);
        Err(error).context(|| match restored {
            Ok(()) => format!(
                "deleting the throwaway manifest {} (the tag names {original} again)",
                throwaway.digest
            ),
            Err(restore) => format!(
                "deleting the throwaway manifest {}, which the tag names now: pointing it back \
                 at {original} failed too ({restore})",
                throwaway.digest
            ),
        })
    }

    /// Uploads OCI's empty JSON blob to `repository`, unless it is there.
    fn put_empty_json(&self, repository: &str) -> Result<()> {
        let digest = Digest::of(EMPTY_JSON);
        if self.has_blob(repository, &digest)? {
            return Ok(());
        }
        let mut open = |offset: u64| -> Result<Box<dyn Read + Send>> {
            let rest = EMPTY_JSON.get(offset as usize..).unwrap_or_default();
            Ok(Box::new(Cursor::new(rest)))
        };
        let bytes = Bytes {
            digest,
            size: EMPTY_JSON.len() as u64,
            gzip: None,
            likely: None,
            compress_ahead: false,
        };
        let plan = UploadPlan {
            threshold: u64::MAX,
            chunk_size: u64::MAX,
            compress_ahead: false,
        };
        self.upload_blob(
            repository,
            &mut open,
            &bytes,
            &plan,
            &mut None,
            &Headway::default(),
        )
        .map(drop)
    }
}

/// An OCI manifest of the empty JSON blob, unique to this deletion of `tag`.
fn throwaway_manifest(tag: &str) -> Result<RawManifest> {
    let empty = Descriptor::new(
        media_type::OCI_EMPTY,
        Digest::of(EMPTY_JSON),
        EMPTY_JSON.len() as u64,
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    static MADE: AtomicU64 = AtomicU64::new(0);
    let unique = format!(
        "{tag} at {}.{:09} by {}, {}",
        now.as_secs(),
        now.subsec_nanos(),
        std::process::id(),
        MADE.fetch_add(1, Ordering::Relaxed)
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_MANIFEST,
        "config": empty,
        "layers": [empty],
        "annotations": {ANNOTATION_UNTAG: unique},
    });
    let bytes = serde_json::to_vec(&manifest)
        .map_err(|e| Error::BadInput(format!("a throwaway manifest: {e}")))?;
    Ok(RawManifest::new(bytes, media_type::OCI_MANIFEST))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest;

    #[test]
    fn each_throwaway_manifest_is_its_own_and_names_only_the_empty_blob() {
        let (one, two) = (
            throwaway_manifest("b").unwrap(),
            throwaway_manifest("b").unwrap(),
        );
        assert_ne!(one.digest, two.digest);
        let image = one.image().unwrap();
        assert_eq!(image.config.digest, Digest::of(b"{}"));
        assert_eq!(image.layers, vec![image.config.clone()]);
        assert!(matches!(
            manifest::parse(&one.bytes),
            Ok(manifest::Parsed::Image(_))
        ));
    }
}
