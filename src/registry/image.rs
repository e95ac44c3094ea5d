//! One repository of a registry as a copy source (an image resolved to one platform) and as a
//! copy destination (blobs uploaded or mounted, uncompressed layers gzipped on the way, then
//! manifests).

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;

use super::Registry;
use super::blobs::{Bytes, UploadPlan, UploadSession};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{
    self, Descriptor, MAX_INDEX_DEPTH, Parsed, Platform, Platforms, RawManifest, media_type,
};
use crate::reference::{Reference, RepositoryName};
use crate::transfer::{self, Destination, Open, Source, Stored};

/// An image in a registry, resolved to one platform when its manifest is an index.
pub struct RegistrySource<'a> {
    registry: &'a Registry,
    reference: Reference,
    manifest: RawManifest,
}

impl<'a> RegistrySource<'a> {
    /// The image `reference` names, as `platforms` says: see [`RegistrySource::resolve`] and
    /// [`RegistrySource::whole`].
    pub fn open(
        registry: &'a Registry,
        reference: &Reference,
        platforms: &Platforms,
    ) -> Result<RegistrySource<'a>> {
        match platforms {
            Platforms::One(platform) => {
                let source = RegistrySource::resolve(registry, reference, platform)?;
                source.check_platform(platform)?;
                Ok(source)
            }
            Platforms::Host => RegistrySource::resolve(registry, reference, &Platform::host()),
            Platforms::All => RegistrySource::whole(registry, reference),
        }
    }

    /// Fetches the manifest `reference` names; an index resolves to the first entry for
    /// `platform` (attestations are never chosen).
    pub fn resolve(
        registry: &'a Registry,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<RegistrySource<'a>> {
        let repository = reference.repository();
        let mut manifest = registry.get_manifest(repository, &reference.reference())?;
        for _ in 0..MAX_INDEX_DEPTH {
            let index = match manifest::parse(&manifest.bytes) {
                Ok(Parsed::Index(index)) => index,
                _ => break,
            };
            let chosen = platform.choose(index.entries());
            let Some(chosen) = chosen else {
                let offered: Vec<String> = (index.entries().iter())
                    .filter_map(|entry| entry.platform.as_ref())
                    .filter(|p| !p.is_unknown())
                    .map(Platform::to_string)
                    .collect();
                return Err(Error::NotFound(format!(
                    "{reference} has no image for {platform}; it offers {} (choose with --platform)",
                    offered.join(", ")
                )));
            };
            manifest = registry.get_manifest(repository, &chosen.digest.to_string())?;
        }
        Ok(RegistrySource {
            registry,
            reference: reference.clone(),
            manifest,
        })
    }

    /// Refuses a single-platform image whose config names another platform than `platform`,
    /// which was asked for (Docker refuses it too).
    fn check_platform(&self, platform: &Platform) -> Result<()> {
        let Ok(image) = self.manifest.image() else {
            return Ok(());
        };
        let bytes = transfer::read_config(self, &image.config)?;
        let config = manifest::parse_config(&bytes)
            .map_err(|e| Error::BadInput(format!("config {}: {e}", image.config.digest)))?;
        match config.platform() {
            Some(offered) if !platform.accepts(&offered) => Err(Error::NotFound(format!(
                "{} is an image for {offered} only, not {platform} (no index offers others)",
                self.reference
            ))),
            _ => Ok(()),
        }
    }

    /// The manifest `reference` names as it is, an index with all its platforms included.
    pub fn whole(registry: &'a Registry, reference: &Reference) -> Result<RegistrySource<'a>> {
        let manifest = registry.get_manifest(reference.repository(), &reference.reference())?;
        Ok(RegistrySource {
            registry,
            reference: reference.clone(),
            manifest,
        })
    }
}

impl Source for RegistrySource<'_> {
    fn manifest(&self) -> Result<RawManifest> {
        Ok(self.manifest.clone())
    }

    fn open_blob(&self, blob: &Descriptor, offset: u64) -> Result<Box<dyn Read + Send + '_>> {
        self.registry
            .open_blob(self.reference.repository(), &blob.digest, offset)
    }

    fn describe(&self) -> String {
        self.reference.to_string()
    }

    fn repository(&self) -> Option<RepositoryName> {
        Some(self.reference.repository_name())
    }

    fn child_manifest(&self, entry: &Descriptor) -> Result<RawManifest> {
        self.registry
            .get_manifest(self.reference.repository(), &entry.digest.to_string())
    }
}

/// How layers that arrive uncompressed are pushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compress {
    /// Every blob and the manifest as they are: a byte-exact copy, same manifest digest.
    Keep,
    /// As they are, in an OCI manifest when they carry Docker's uncompressed type, which few
    /// registries and clients accept (OCI `layer.v1.tar`).
    None,
    /// Gzip at this level (0-9) while streaming.
    Gzip(u32),
}

/// One repository of a registry as a copy destination.
pub struct RegistryDestination<'a> {
    registry: &'a Registry,
    target: Reference,
    compress: Compress,
    plan: UploadPlan,
    /// Uploads a failed try left open, by the blob's digest, for its next try to go on with.
    sessions: Mutex<HashMap<Digest, UploadSession>>,
}

impl<'a> RegistryDestination<'a> {
    /// Pushes into the repository of `target` on `registry`, uploading as `plan` says.
    pub fn new(
        registry: &'a Registry,
        target: &Reference,
        compress: Compress,
        plan: UploadPlan,
    ) -> RegistryDestination<'a> {
        RegistryDestination {
            registry,
            target: target.clone(),
            compress,
            plan,
            sessions: Mutex::new(HashMap::new()),
        }
    }
}

impl Destination for RegistryDestination<'_> {
    fn has_blob(&self, blob: &Descriptor) -> Result<bool> {
        self.registry
            .has_blob(self.target.repository(), &blob.digest)
    }

    fn repository(&self) -> Option<RepositoryName> {
        Some(self.target.repository_name())
    }

    fn mount(&self, blob: &Descriptor, from: &str) -> Result<bool> {
        self.registry
            .mount_blob(self.target.repository(), &blob.digest, from)
    }

    fn transforms(&self, blob: &Descriptor) -> bool {
        matches!(self.compress, Compress::Gzip(_))
            && media_type::gzipped(&blob.media_type).is_some()
    }

    fn put_blob(&self, blob: &Descriptor, open: &mut Open<'_>) -> Result<Descriptor> {
        let gzip = match (self.compress, media_type::gzipped(&blob.media_type)) {
            (Compress::Gzip(level), Some(gzip_type)) => Some((level, gzip_type)),
            _ => None,
        };
        let bytes = Bytes {
            digest: blob.digest.clone(),
            size: blob.size,
            gzip: gzip.map(|(level, _)| level),
        };
        let sessions = || self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let mut session = sessions().remove(&blob.digest);
        let uploaded = self.registry.upload_blob(
            self.target.repository(),
            open,
            &bytes,
            &self.plan,
            &mut session,
        );
        if let Some(session) = session {
            sessions().insert(blob.digest.clone(), session);
        }
        let (digest, size) = uploaded?;
        Ok(match gzip {
            Some((_, gzip_type)) => Descriptor::new(gzip_type, digest, size),
            None => blob.clone(),
        })
    }

    fn prepare_manifest(&self, manifest: RawManifest) -> Result<RawManifest> {
        match self.compress {
            Compress::Keep => Ok(manifest),
            _ => manifest::uncompressed_as_oci(&manifest).map_err(Error::BadInput),
        }
    }

    fn put_manifest(&self, name: Option<&Reference>, manifest: &RawManifest) -> Result<Stored> {
        let reference = name.map_or_else(|| manifest.digest.to_string(), Reference::reference);
        self.registry
            .put_manifest(self.target.repository(), &reference, manifest)?;
        Ok(Stored::New)
    }
}
