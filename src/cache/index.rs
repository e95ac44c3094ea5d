//! `index.json`: the images the cache holds and what each is made of, and finding an image by
//! any unambiguous name a user types (`nginx`, `app/web:v1`, an image ID prefix), by the rule
//! [`NameQuery`] gives archives too.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::atomic::{self, Replace};
use crate::create::{self, SHAREABLE_DIR, SHAREABLE_FILE};
use crate::digest::Digest;
use crate::error::{Context, Error, Result};
use crate::image_id::id_prefix;
use crate::manifest::fallback::{fallback_tag, subject_of_tag};
use crate::reference::NameQuery;

/// Whether `query` names an image by its ID (`sha256:HEX`, or a bare prefix of at least
/// [`crate::image_id::MIN_ID_PREFIX`] hex digits) rather than by a name.
pub fn is_id(query: &str) -> bool {
    query.starts_with("sha256:") || id_prefix(query).is_ok_and(|id| id.is_some())
}

/// The cache's table of images, keyed by full name (`docker.io/library/nginx:latest`), or by
/// image ID (`sha256:<config hex>`) for an image that has no name.
#[derive(Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Index {
    images: BTreeMap<String, ImageRecord>,
}

/// One cached image under one name.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageRecord {
    /// `registry/repository`; `None` for an image known only by its ID.
    pub repository: Option<String>,
    /// The tag or `sha256:` digest (the image ID when the image has no name).
    pub reference: String,
    /// The raw manifest, relative to the cache root.
    pub manifest_path: String,
    pub manifest_digest: Digest,
    pub media_type: String,
    /// The config digest, which is the image ID (none for an index).
    pub config_digest: Option<Digest>,
    /// The config's `rootfs.diff_ids`, in layer order.
    pub diff_ids: Vec<Digest>,
    /// The layer digests, in manifest order.
    pub layers: Vec<Digest>,
    /// Every blob the image needs (config and layers).
    pub blobs: BTreeMap<Digest, BlobRecord>,
    /// For an index: the manifests it lists, each cached as `repository@digest`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Digest>,
    /// For a referrer (a signature, an SBOM, an attestation): the manifest it names as its
    /// `subject`, cached in the same repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Digest>,
    /// Where the image came from (`archive:image.tar`).
    pub source: String,
    /// When it was cached, RFC 3339 in UTC.
    pub cached_at: String,
}

impl ImageRecord {
    /// The total size of the image's blobs.
    pub fn size(&self) -> u64 {
        self.blobs.values().map(|blob| blob.size).sum()
    }

    /// Whether it records a referrer, not an image: a manifest naming a subject, a fallback
    /// index (`sha256-<hex>`) or one of cosign's tags (`sha256-<hex>.sig`).
    pub fn is_referrer(&self) -> bool {
        self.subject.is_some() || subject_of_tag(&self.reference).is_some()
    }

    /// Whether it records a referrer of `record`'s manifest, beside it: listed as naming it,
    /// or its fallback index or one of cosign's tags of it.
    fn refers_to(&self, record: &ImageRecord) -> bool {
        let of = &record.manifest_digest;
        self.repository.is_some()
            && self.repository == record.repository
            && (self.subject.as_ref() == Some(of)
                || subject_of_tag(&self.reference).as_ref() == Some(of))
    }
}

/// One blob of a cached image.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlobRecord {
    pub digest: Digest,
    pub size: u64,
    /// The blob file, relative to the cache root.
    pub path: String,
    pub is_config: bool,
    pub compressed: bool,
    pub media_type: String,
}

impl Index {
    /// Reads `index.json`; a missing file is an empty index.
    pub fn load(path: &Path) -> Result<Index> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::BadInput(format!(
                    "{}: the cache index is corrupt: {e}",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Writes the index to `path` through a synced temporary file in `tmp_dir`.
    pub fn save(&self, path: &Path, tmp_dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::io("encoding the cache index", io::Error::other(e)))?;
        write_atomically(path, &bytes, tmp_dir, SHAREABLE_FILE)
    }

    /// The record under `key`.
    pub fn get(&self, key: &str) -> Option<&ImageRecord> {
        self.images.get(key)
    }

    /// Stores `record` under `key`, replacing what was there.
    pub fn insert(&mut self, key: String, record: ImageRecord) {
        self.images.insert(key, record);
    }

    /// Removes the row of `record`'s image by ID (`<none>` in `list`), which stood for it while
    /// it had no name, once `record` names it: the ID still finds the image through its name.
    pub fn remove_unnamed_row(&mut self, record: &ImageRecord) {
        if record.repository.is_none() {
            return;
        }
        let id = (record.config_digest.as_ref())
            .unwrap_or(&record.manifest_digest)
            .to_string();
        let unnamed = self.images.get(&id).is_some_and(|row| {
            row.repository.is_none() && row.manifest_digest == record.manifest_digest
        });
        if unnamed {
            self.images.remove(&id);
        }
    }

    /// Removes the record under `key`.
    pub fn remove(&mut self, key: &str) -> Option<ImageRecord> {
        self.images.remove(key)
    }

    /// All records with their keys, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &ImageRecord)> {
        self.images.iter()
    }

    /// How many referrers the cache holds for `record`'s manifest: those naming it, and
    /// cosign's tags of it (its fallback index, which lists them, is not counted).
    pub fn referrer_count(&self, record: &ImageRecord) -> usize {
        (self.images.values())
            .filter(|other| {
                other.refers_to(record) && other.reference != fallback_tag(&record.manifest_digest)
            })
            .count()
    }

    /// The keys of the referrers `keys` leave behind: those of a manifest no other entry of
    /// its repository keeps, and theirs in turn.
    pub fn referrers_left(&self, keys: &[String]) -> Vec<String> {
        let mut gone: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
        let mut next: Vec<&str> = gone.iter().copied().collect();
        while let Some(key) = next.pop() {
            let Some(record) = self.images.get(key) else {
                continue;
            };
            let kept = (self.images.iter()).any(|(other, left)| {
                !gone.contains(other.as_str())
                    && left.repository == record.repository
                    && left.manifest_digest == record.manifest_digest
            });
            if kept {
                continue;
            }
            for (other, referrer) in &self.images {
                if referrer.refers_to(record) && gone.insert(other) {
                    next.push(other);
                }
            }
        }
        (gone.into_iter())
            .filter(|key| !keys.iter().any(|given| given == key))
            .map(str::to_string)
            .collect()
    }

    /// Every blob some image refers to.
    pub fn referenced_blobs(&self) -> BTreeSet<&Digest> {
        self.images
            .values()
            .flat_map(|record| record.blobs.keys())
            .collect()
    }

    /// Every manifest file some image refers to, relative to the cache root.
    pub fn referenced_manifests(&self) -> BTreeSet<&str> {
        self.images
            .values()
            .map(|record| record.manifest_path.as_str())
            .collect()
    }

    /// The keys `query` names: a full or unambiguous short name (one key), or an image ID or
    /// unique ID prefix (every name of that image).
    pub fn find(&self, query: &str) -> Result<Vec<String>> {
        if let Ok(name) = NameQuery::parse(query) {
            let held = (self.images.iter()).filter_map(|(key, record)| {
                let repository = record.repository.as_deref()?;
                Some((repository, record.reference.as_str(), key))
            });
            if let [key] = name.pick(held)?.as_slice() {
                return Ok(vec![(*key).clone()]);
            }
        }
        self.find_by_id(query)
    }

    fn find_by_id(&self, query: &str) -> Result<Vec<String>> {
        let not_found = || {
            Error::NotFound(format!(
                "no image \"{query}\" in the cache (see the list command)"
            ))
        };
        let prefix = id_prefix(query)
            .map_err(Error::Usage)?
            .ok_or_else(not_found)?;
        let matches: Vec<(&String, &ImageRecord)> = (self.images.iter())
            .filter(|(_, record)| {
                record
                    .config_digest
                    .as_ref()
                    .is_some_and(|id| id.hex().starts_with(&prefix))
            })
            .collect();
        let ids: BTreeSet<&Digest> = matches
            .iter()
            .filter_map(|(_, record)| record.config_digest.as_ref())
            .collect();
        if ids.len() > 1 {
            let listed: Vec<String> = (ids.iter())
                .map(|id| {
                    let names: Vec<&str> = (matches.iter())
                        .filter(|(_, record)| record.config_digest.as_ref() == Some(*id))
                        .map(|(key, _)| key.as_str())
                        .collect();
                    format!("sha256:{} ({})", id.short(), names.join(", "))
                })
                .collect();
            return Err(Error::Usage(format!(
                "image ID prefix \"{query}\" is ambiguous: it matches {} images: {}",
                ids.len(),
                listed.join("; ")
            )));
        }
        if matches.is_empty() {
            return Err(not_found());
        }
        Ok(matches.into_iter().map(|(key, _)| key.clone()).collect())
    }
}

/// Replaces `path` with `bytes` through a synced temporary file in `tmp_dir` (on the same
/// file system), so a reader sees the old content or the new, never a part; the file gets
/// `mode`. The temporary file is new and unpredictably named: never a link planted there.
pub fn write_atomically(path: &Path, bytes: &[u8], tmp_dir: &Path, mode: u32) -> Result<()> {
    replace(path, bytes, tmp_dir, (mode, true))
}

/// Replaces `path` with `bytes` like [`write_atomically`], but leaves making it durable to a
/// later [`crate::writeback::sync_file_system`] that covers a whole batch.
pub fn write_atomically_unsynced(path: &Path, bytes: &[u8], tmp_dir: &Path) -> Result<()> {
    replace(path, bytes, tmp_dir, (SHAREABLE_FILE, false))
}

fn replace(path: &Path, bytes: &[u8], tmp_dir: &Path, (mode, sync): (u32, bool)) -> Result<()> {
    let shown = path.display().to_string();
    if let Some(parent) = path.parent() {
        create::dirs(parent, SHAREABLE_DIR).context(|| format!("writing {shown}"))?;
    }
    let to = Replace {
        temp_dir: Some(tmp_dir),
        sync,
        ..Replace::beside(path, mode, &shown)
    };
    atomic::replace(to, |file| {
        file.write_all(bytes).context(|| format!("writing {shown}"))
    })
}

/// The current time as RFC 3339 in UTC (`2026-11-23T13:40:05Z`).
pub fn now_rfc3339() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(seconds)
}

/// A time in seconds since 1970 as RFC 3339 in UTC.
pub fn rfc3339(seconds: u64) -> String {
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The calendar date of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(repository: Option<&str>, reference: &str, config: char) -> ImageRecord {
        let digest = |c: char| Digest::from_hex(&c.to_string().repeat(64)).unwrap();
        ImageRecord {
            repository: repository.map(str::to_string),
            reference: reference.into(),
            manifest_path: String::new(),
            manifest_digest: digest('0'),
            media_type: String::new(),
            config_digest: Some(digest(config)),
            diff_ids: Vec::new(),
            layers: Vec::new(),
            blobs: BTreeMap::new(),
            children: Vec::new(),
            subject: None,
            source: String::new(),
            cached_at: String::new(),
        }
    }

    #[test]
    fn referrers_go_with_the_last_name_of_their_image() {
        let repository = Some("example.com/app");
        let image = record(repository, "v1", 'a');
        let subject = image.manifest_digest.clone();
        let mut index = Index::default();
        index.insert("example.com/app:v1".into(), image.clone());
        index.insert("example.com/app:v2".into(), image.clone());
        let sbom = ImageRecord {
            subject: Some(subject.clone()),
            manifest_digest: Digest::of(b"sbom"),
            ..record(repository, "sha256:5b0b", 'e')
        };
        index.insert("example.com/app@sha256:5b0b".into(), sbom);
        let tag = format!("{}.sig", fallback_tag(&subject));
        let signature = ImageRecord {
            manifest_digest: Digest::of(b"signature"),
            ..record(repository, &tag, 'f')
        };
        index.insert(format!("example.com/app:{tag}"), signature);
        let fallback = fallback_tag(&subject);
        let listing = ImageRecord {
            manifest_digest: Digest::of(b"listing"),
            ..record(repository, &fallback, 'f')
        };
        index.insert(format!("example.com/app:{fallback}"), listing);
        assert_eq!(index.referrer_count(&image), 2);
        assert!(
            index
                .referrers_left(&["example.com/app:v1".into()])
                .is_empty()
        );
        let both = ["example.com/app:v1".into(), "example.com/app:v2".into()];
        assert_eq!(index.referrers_left(&both).len(), 3);
    }

    fn index() -> Index {
        let mut index = Index::default();
        for (repository, tag, config) in [
            ("docker.io/library/nginx", "latest", 'a'),
            ("localhost:5000/app/web", "v1", 'b'),
            ("registry.example.com/app/web", "v1", 'b'),
            ("registry.example.com/tools/busybox", "1.36", 'c'),
        ] {
            index.insert(
                format!("{repository}:{tag}"),
                record(Some(repository), tag, config),
            );
        }
        index.insert(format!("sha256:{}", "d".repeat(64)), record(None, "x", 'd'));
        index
    }

    #[test]
    fn finds_full_and_unambiguous_short_names() {
        let index = index();
        assert_eq!(
            index.find("nginx").unwrap(),
            ["docker.io/library/nginx:latest"]
        );
        assert_eq!(
            index.find("docker.io/library/nginx:latest").unwrap(),
            ["docker.io/library/nginx:latest"]
        );
        assert_eq!(
            index.find("busybox:1.36").unwrap(),
            ["registry.example.com/tools/busybox:1.36"]
        );
        assert_eq!(
            index.find("localhost:5000/app/web:v1").unwrap(),
            ["localhost:5000/app/web:v1"]
        );
    }

    #[test]
    fn ambiguous_and_missing_names_are_errors() {
        let index = index();
        assert!(
            index
                .find("app/web:v1")
                .unwrap_err()
                .to_string()
                .contains("ambiguous")
        );
        assert_eq!(
            index.find("busybox").unwrap_err().exit_code(),
            6,
            "the tag differs"
        );
        assert_eq!(index.find("nothing:here").unwrap_err().exit_code(), 6);
    }

    #[test]
    fn an_ambiguous_id_prefix_lists_what_it_matches() {
        let mut index = index();
        for (name, last) in [("example.com/a:v1", '1'), ("example.com/b:v1", '2')] {
            let mut image = record(Some(name), "v1", 'e');
            let hex = format!("{}{last}", "e".repeat(63));
            image.config_digest = Digest::from_hex(&hex);
            index.insert(name.into(), image);
        }
        let error = index.find("eeeeeee").unwrap_err().to_string();
        assert!(
            error.contains("ambiguous")
                && error.contains("example.com/a:v1")
                && error.contains("example.com/b:v1"),
            "{error}"
        );
    }

    #[test]
    fn finds_images_by_id() {
        let index = index();
        assert_eq!(
            index.find(&"d".repeat(12)).unwrap(),
            [format!("sha256:{}", "d".repeat(64))]
        );
        assert_eq!(
            index.find("sha256:bbbb").unwrap().len(),
            2,
            "both names of one image"
        );
        assert_eq!(
            index.find("ddd").unwrap_err().exit_code(),
            6,
            "too short without sha256:"
        );
    }

    #[test]
    fn id_prefixes_are_read_as_an_archive_reads_them() {
        let index = index();
        assert_eq!(
            index.find(&"D".repeat(12)).unwrap(),
            [format!("sha256:{}", "d".repeat(64))],
            "an uppercase prefix is the same prefix"
        );
        assert_eq!(index.find("sha256:BBBB").unwrap().len(), 2);
        let too_long = format!("sha256:{}", "d".repeat(65));
        let refused = index.find(&too_long).unwrap_err();
        assert_eq!(refused.exit_code(), 2, "{refused}");
        assert!(
            refused.to_string().contains("is not an image ID"),
            "{refused}"
        );
        assert_eq!(index.find(&"d".repeat(65)).unwrap_err().exit_code(), 6);
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_780), (2026, 11, 23));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
