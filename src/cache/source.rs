//! A cached image as a copy source, for `push` from the cache: its manifest as stored and its
//! blobs read from `blobs/`.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};

use crate::error::{Context, Error, Result};
use crate::manifest::{Descriptor, RawManifest};
use crate::reference::Reference;
use crate::transfer::{Found, Referrer, Source};

use super::Cache;

/// One image in the cache, found by any name `Index::find` accepts.
pub struct CachedImage<'a> {
    cache: &'a Cache,
    /// The index key: the full name, or the image ID.
    pub key: String,
    manifest: RawManifest,
    /// Whether it was extracted from an archive (its layers are `docker save` tars).
    saved: bool,
}

impl Cache {
    /// The cached image `query` names; an image ID naming several names takes the first.
    pub fn image(&self, query: &str) -> Result<CachedImage<'_>> {
        let index = self.index()?;
        let at = |e: Error| match e {
            Error::NotFound(message) => {
                Error::NotFound(format!("{message}; the cache is {}", self.shown()))
            }
            other => other,
        };
        let key = (index.find(query).map_err(at)?.into_iter().next()).ok_or_else(|| {
            at(Error::NotFound(format!(
                "no image \"{query}\" in the cache (see the list command)"
            )))
        })?;
        let record = index
            .get(&key)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("no image {key} in the cache")))?;
        let path = self.root.join(&record.manifest_path);
        let bytes = fs::read(&path)
            .context(|| format!("reading the manifest of {key} ({})", path.display()))?;
        let manifest = RawManifest::new(bytes, &record.media_type);
        if manifest.digest != record.manifest_digest {
            return Err(Error::BadInput(format!(
                "the cached manifest of {key} hashes to {}, not {}; extract or pull it again",
                manifest.digest, record.manifest_digest
            )));
        }
        Ok(CachedImage {
            cache: self,
            key,
            manifest,
            saved: record.source.starts_with("archive:"),
        })
    }
}

impl CachedImage<'_> {
    /// The image's name; `None` for an image known only by its ID (a `sha256:` key).
    pub fn name(&self) -> Option<Reference> {
        match self.key.starts_with("sha256:") {
            true => None,
            false => Reference::parse(&self.key).ok(),
        }
    }
}

impl CachedImage<'_> {
    /// The layers of every referrer the cache holds in this image's repository (its own
    /// among them): what a delta bundle may leave out where an earlier one carried them.
    pub fn referrer_layers(&self) -> Result<Vec<Descriptor>> {
        let Some(name) = self.name() else {
            return Ok(Vec::new());
        };
        let index = self.cache.index()?;
        let repository = name.name();
        let referrers = (index.iter().map(|(_, record)| record)).filter(|record| {
            record.is_referrer() && record.repository.as_ref() == Some(&repository)
        });
        Ok(referrers
            .flat_map(|record| (record.layers.iter()).filter_map(|digest| record.blobs.get(digest)))
            .map(|blob| Descriptor::new(&blob.media_type, blob.digest.clone(), blob.size))
            .collect())
    }
}

impl Source for CachedImage<'_> {
    fn manifest(&self) -> Result<RawManifest> {
        Ok(self.manifest.clone())
    }

    fn open_blob(&self, blob: &Descriptor, offset: u64) -> Result<Box<dyn Read + Send + '_>> {
        let path = self.cache.blob_path(&blob.digest);
        match File::open(&path) {
            Ok(mut file) => {
                file.seek(SeekFrom::Start(offset))
                    .context(|| format!("reading {}", path.display()))?;
                Ok(Box::new(file))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound(format!(
                "blob {} of {} is missing from the cache; extract or pull the image again",
                blob.digest, self.key
            ))),
            Err(e) => Err(Error::io(format!("opening {}", path.display()), e)),
        }
    }

    fn describe(&self) -> String {
        format!("the cache ({})", self.key)
    }

    fn saved_layers(&self) -> bool {
        self.saved
    }

    fn child_manifest(&self, entry: &Descriptor) -> Result<RawManifest> {
        let parent = self.name().ok_or_else(|| {
            Error::NotFound(format!(
                "{}: an index without a name cannot find its children",
                self.key
            ))
        })?;
        self.cache
            .image(&parent.with_digest(entry.digest.clone()).to_string())?
            .manifest()
    }

    /// What the cache recorded beside this image's name (an image without one has none).
    fn referrers(&self, subject: &Descriptor) -> Result<Found> {
        match self.name() {
            Some(name) => self.cache.referrers(&name, subject),
            None => Ok(Found::default()),
        }
    }

    fn referrer(&self, referrer: &Referrer) -> Result<Box<dyn Source + '_>> {
        let name = self.name().ok_or_else(|| {
            Error::NotFound(format!(
                "{}: an image without a name has no referrers",
                self.key
            ))
        })?;
        let at = match referrer {
            Referrer::Listed(entry) => name.with_digest(entry.digest.clone()),
            Referrer::Tagged(tag) => name.with_tag(tag)?,
        };
        Ok(Box::new(self.cache.image(&at.to_string())?))
    }
}
