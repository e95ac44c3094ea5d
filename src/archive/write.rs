//! Writing an archive that `docker load` (and skopeo, podman, this program) accepts: blobs
//! under `blobs/sha256/`, each once, streamed; then a legacy `manifest.json` and an OCI layout
//! (`oci-layout`, `index.json`) naming the images.

use std::collections::HashSet;
use std::io::{Read, Write};

use serde_json::{Value, json};

use crate::digest::{Digest, Verified};
use crate::error::{Error, Result};
use crate::manifest::{
    ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, Descriptor, RawManifest, media_type,
};

/// The file of an OCI layout that lists its images.
pub const INDEX_FILE: &str = "index.json";
/// The file that marks a folder (or an archive) as an OCI layout, and gives its version.
pub const LAYOUT_FILE: &str = "oci-layout";
/// The layout version written, and the only one read.
pub const LAYOUT_VERSION: &str = "1.0.0";

/// What [`LAYOUT_FILE`] holds.
pub fn layout_marker() -> Value {
    json!({ "imageLayoutVersion": LAYOUT_VERSION })
}

/// An `index.json` listing `manifests`.
pub fn index_document(manifests: Vec<Value>) -> Value {
    json!({ "schemaVersion": 2, "mediaType": media_type::OCI_INDEX, "manifests": manifests })
}

/// The `index.json` entry naming `manifest` as `name` (a full reference, containerd's
/// annotation) with `tag` (the OCI ref name, as `docker save` and `skopeo copy
/// oci:DIR:TAG` write it).
pub fn index_entry(manifest: &RawManifest, name: Option<&str>, tag: Option<&str>) -> Value {
    let mut descriptor = json!(Descriptor::new(
        &manifest.media_type,
        manifest.digest.clone(),
        manifest.bytes.len() as u64
    ));
    let mut annotations = serde_json::Map::new();
    if let Some(name) = name {
        annotations.insert(ANNOTATION_IMAGE_NAME.into(), name.into());
    }
    if let Some(tag) = tag {
        annotations.insert(ANNOTATION_REF_NAME.into(), tag.into());
    }
    if !annotations.is_empty() {
        descriptor["annotations"] = annotations.into();
    }
    descriptor
}

/// `value` as the JSON bytes of the file `path`.
pub fn encode(path: &str, value: &impl serde::Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|e| Error::io(format!("encoding {path}"), std::io::Error::other(e)))
}

/// One image as `manifest.json` lists it.
pub struct LegacyEntry {
    pub config: Digest,
    /// `name:tag` as Docker writes it (`busybox:latest`, `registry.example.com/app:v1`).
    pub repo_tags: Vec<String>,
    pub layers: Vec<Digest>,
}

/// An archive being written to `out`.
pub struct ArchiveWriter<W: Write> {
    builder: tar::Builder<W>,
    /// A blob failed half-written: the tar stream cannot go on.
    broken: bool,
    written: HashSet<Digest>,
    legacy: Vec<LegacyEntry>,
    index: Vec<Value>,
}

impl<W: Write> ArchiveWriter<W> {
    /// An empty archive writing to `out`.
    pub fn new(out: W) -> ArchiveWriter<W> {
        let mut builder = tar::Builder::new(out);
        builder.mode(tar::HeaderMode::Deterministic);
        ArchiveWriter {
            builder,
            broken: false,
            written: HashSet::new(),
            legacy: Vec::new(),
            index: Vec::new(),
        }
    }

    /// Adds a blob of `size` bytes read from `data`, unless it is in the archive already;
    /// fails if those bytes do not match `digest`.
    pub fn blob(&mut self, digest: &Digest, size: u64, data: &mut dyn Read) -> Result<()> {
        if self.broken {
            return Err(Error::BadInput(format!(
                "the archive cannot go on after a blob failed half-written; not writing {digest}"
            )));
        }
        if !self.written.insert(digest.clone()) {
            return Ok(());
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        let path = digest.layout_path();
        let appended =
            self.builder
                .append_data(&mut header, &path, Verified::new(data, digest, size));
        self.broken = appended.is_err();
        appended.map_err(|e| Error::from_io(format!("writing {path} into the archive"), e))
    }

    /// Whether the blob `digest` is in the archive already.
    pub fn holds(&self, digest: &Digest) -> bool {
        self.written.contains(digest)
    }

    /// Adds a manifest (or index) blob: its bytes, as stored.
    pub fn manifest(&mut self, manifest: &RawManifest) -> Result<()> {
        self.blob(
            &manifest.digest,
            manifest.bytes.len() as u64,
            &mut manifest.bytes.as_slice(),
        )
    }

    /// Names the manifest `manifest` in `index.json` as `name` (a full reference) with `tag`.
    pub fn name(&mut self, manifest: &RawManifest, name: Option<&str>, tag: Option<&str>) {
        self.index.push(index_entry(manifest, name, tag));
    }

    /// Adds the file `path` holding `value` as JSON.
    pub fn json_file(&mut self, path: &str, value: &impl serde::Serialize) -> Result<()> {
        let bytes = encode(path, value)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        self.builder
            .append_data(&mut header, path, bytes.as_slice())
            .map_err(|e| Error::from_io(format!("writing {path} into the archive"), e))
    }

    /// Lists an image in `manifest.json`.
    pub fn legacy(&mut self, entry: LegacyEntry) {
        self.legacy.push(entry);
    }

    /// Writes `manifest.json`, `index.json` and `oci-layout`, ends the archive, and returns
    /// the output.
    pub fn finish(mut self) -> Result<W> {
        let legacy: Vec<Value> = (self.legacy.iter())
            .map(|entry| {
                json!({
                    "Config": entry.config.layout_path(),
                    "RepoTags": if entry.repo_tags.is_empty() { Value::Null } else { json!(entry.repo_tags) },
                    "Layers": entry.layers.iter().map(Digest::layout_path).collect::<Vec<_>>(),
                })
            })
            .collect();
        let index = index_document(std::mem::take(&mut self.index));
        for (path, value) in [
            ("manifest.json", json!(legacy)),
            (INDEX_FILE, index),
            (LAYOUT_FILE, layout_marker()),
        ] {
            self.json_file(path, &value)?;
        }
        self.builder
            .into_inner()
            .map_err(|e| Error::from_io("ending the archive", e))
    }
}
