//! One repository of a registry as a copy source (an image, or an index the plan chooses in)
//! and as a copy destination (blobs uploaded or mounted, uncompressed layers gzipped on the way, then
//! manifests).

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;

use super::Registry;
use super::blobs::{Bytes, UploadPlan, UploadSession};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor, RawManifest, media_type};
use crate::reference::{Reference, RepositoryName};
use crate::retry::Headway;
use crate::transfer::{Destination, Found, Open, Referrer, Source, Stored};

/// An image in a registry, its manifest as the registry gives it (an index is chosen in by
/// the plan, like every source's).
pub struct RegistrySource<'a> {
    registry: &'a Registry,
    reference: Reference,
    manifest: RawManifest,
}

impl<'a> RegistrySource<'a> {
    /// Fetches the manifest `reference` names.
    pub fn new(registry: &'a Registry, reference: &Reference) -> Result<RegistrySource<'a>> {
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

    fn small_blob(&self, blob: &Descriptor) -> Result<Vec<u8>> {
        self.registry.small_blob(self.reference.repository(), blob)
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

    fn referrers(&self, subject: &Descriptor) -> Result<Found> {
        let repository = self.reference.repository();
        let (listing, cosign) = self.registry.referrers(repository, &subject.digest)?;
        let mut referrers: Vec<Referrer> = (listing.entries()?.into_iter())
            .map(Referrer::Listed)
            .collect();
        referrers.extend(cosign.into_iter().map(Referrer::Tagged));
        Ok(Found {
            referrers,
            index: listing.index(),
        })
    }

    fn referrer(&self, referrer: &Referrer) -> Result<Box<dyn Source + '_>> {
        let reference = match referrer {
            Referrer::Listed(entry) => self.reference.with_digest(entry.digest.clone()),
            Referrer::Tagged(tag) => self.reference.with_tag(tag)?,
        };
        Ok(Box::new(RegistrySource::new(self.registry, &reference)?))
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

    fn put_blob(
        &self,
        blob: &Descriptor,
        likely: Option<&Descriptor>,
        open: &mut Open<'_>,
        headway: &Headway,
    ) -> Result<Descriptor> {
        let gzip = match (self.compress, media_type::gzipped(&blob.media_type)) {
            (Compress::Gzip(level), Some(gzip_type)) => Some((level, gzip_type)),
            _ => None,
        };
        let bytes = Bytes {
            digest: blob.digest.clone(),
            size: blob.size,
            gzip: gzip.map(|(level, _)| level),
            likely: likely
                .filter(|_| gzip.is_some())
                .map(|form| form.digest.clone()),
            compress_ahead: self.plan.compress_ahead,
        };
        let sessions = || self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let mut session = sessions().remove(&blob.digest);
        let uploaded = self.registry.upload_blob(
            self.target.repository(),
            open,
            &bytes,
            &self.plan,
            &mut session,
            headway,
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

    fn keeps_foreign_layers(&self) -> bool {
        true
    }

    fn put_manifest(&self, name: Option<&Reference>, manifest: &RawManifest) -> Result<Stored> {
        let reference = name.map_or_else(|| manifest.digest.to_string(), Reference::reference);
        self.registry
            .put_manifest(self.target.repository(), &reference, manifest)?;
        Ok(Stored::New)
    }

    fn link_referrers(
        &self,
        subject: &Descriptor,
        referrers: &[Descriptor],
        index: Option<&RawManifest>,
    ) -> Result<()> {
        (self.registry).link_referrers(self.target.repository(), &subject.digest, referrers, index)
    }
}
