//! What an archive holds: the images described by an OCI layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`: Docker 25+, containerd, skopeo's `oci-archive`) or, without one, by a
//! legacy `manifest.json` (Docker 24 and older, skopeo's `docker-archive`). Which platform of
//! an index to take is the plan's choice (`transfer/plan.rs`), as for every source: the layout
//! says what each entry is and what the archive holds.

use std::collections::HashMap;

use serde::Deserialize;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::inert::inert;
use crate::manifest::{
    self, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, Descriptor, ImageManifest, MAX_INDEX_DEPTH,
    Parsed, RawManifest, media_type,
};
use crate::reference::Reference;

use super::entries::Entries;

/// One image found in an archive: an entry of its `index.json` (an image, or an index that
/// the plan chooses in) or of its legacy `manifest.json`.
#[derive(Clone)]
pub struct ArchiveImage {
    /// The names the archive gives it (empty for an image saved by ID).
    pub names: Vec<Reference>,
    /// The OCI ref names its `index.json` entries carry, as written (a bare tag such as
    /// skopeo's `oci:DIR:NAME` writes is no image name, but picks the image all the same).
    pub ref_names: Vec<String>,
    /// The manifest: as stored for OCI layouts, written from `manifest.json` for legacy ones.
    pub manifest: RawManifest,
}

/// The images of an archive, and where the blobs of a legacy one are (an OCI layout keeps
/// each at [`Digest::layout_path`]).
pub struct Layout {
    pub images: Vec<ArchiveImage>,
    pub paths: HashMap<Digest, String>,
}

/// Blobs a delta archive leaves out, with the sizes it declares for them.
pub type Omissions = HashMap<Digest, u64>;

/// Reads the layout of `entries`: an OCI layout when there is one, else `manifest.json`.
/// Layers in `omitted` may be missing (a delta archive), at the sizes it gives.
pub fn read(entries: &Entries, name: &str, omitted: &Omissions) -> Result<Layout> {
    if entries.contains("oci-layout") && entries.contains("index.json") {
        let layout = read_oci(entries, name, omitted)?;
        // Docker 25.0.0 to 25.0.2 wrote an empty index beside a complete manifest.json.
        if !layout.images.is_empty() || !entries.contains("manifest.json") {
            return Ok(layout);
        }
    }
    if entries.contains("manifest.json") {
        return read_legacy(entries, name);
    }
    if entries.contains("oci-layout") {
        return Err(Error::BadInput(format!(
            "{name}: an OCI layout without index.json, which lists its images (a copy into it \
             cut short, or not finished?)"
        )));
    }
    Err(Error::BadInput(format!(
        "{name}: not a docker save or OCI archive: it has neither manifest.json nor an OCI \
         layout (oci-layout and index.json)"
    )))
}

/// One element of a legacy `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LegacyImage {
    config: String,
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn read_legacy(entries: &Entries, name: &str) -> Result<Layout> {
    let bad = |why: String| Error::BadInput(format!("{name}: manifest.json: {why}"));
    let bytes = entries.read_small("manifest.json")?;
    let listed: Option<Vec<LegacyImage>> =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let listed = listed.ok_or_else(|| bad("is null: the archive lists no images".into()))?;
    if listed.is_empty() {
        return Err(bad("lists no images".into()));
    }
    let (mut images, mut paths) = (Vec::new(), HashMap::new());
    for item in listed {
        let (config, diff_ids) = checked_config(entries, name, &item.config, None)?;
        if diff_ids.len() != item.layers.len() {
            return Err(bad(format!(
                "image {} lists {} layers, but its config has {} diff_ids",
                item.config,
                item.layers.len(),
                diff_ids.len()
            )));
        }
        paths.insert(config.digest.clone(), item.config.clone());
        let mut layers = Vec::new();
        for (path, diff_id) in item.layers.iter().zip(&diff_ids) {
            let size = entries.size(path)?;
            entries.verify(path, diff_id)?;
            layers.push(Descriptor::new(
                media_type::DOCKER_LAYER_TAR,
                diff_id.clone(),
                size,
            ));
            paths.insert(diff_id.clone(), path.clone());
        }
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(media_type::DOCKER_MANIFEST.into()),
            config,
            layers,
        };
        let bytes = serde_json::to_vec(&manifest).map_err(|e| bad(e.to_string()))?;
        let names = item
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|tag| Reference::parse(tag).map_err(|e| bad(format!("RepoTags: {e}"))))
            .collect::<Result<_>>()?;
        images.push(ArchiveImage {
            names,
            ref_names: Vec::new(),
            manifest: RawManifest::new(bytes, media_type::DOCKER_MANIFEST),
        });
    }
    Ok(Layout { images, paths })
}

/// Reads and checks a config; returns its descriptor and diff_ids.
fn checked_config(
    entries: &Entries,
    name: &str,
    path: &str,
    expected: Option<&Descriptor>,
) -> Result<(Descriptor, Vec<Digest>)> {
    let bytes = entries.read_small(path)?;
    let digest = Digest::of(&bytes);
    if let Some(expected) = expected
        && (expected.digest != digest || expected.size != bytes.len() as u64)
    {
        return Err(Error::BadInput(format!(
            "{name}: config '{path}' is {} bytes hashing to {digest}, but the manifest says \
             {} bytes, {}",
            bytes.len(),
            expected.size,
            expected.digest
        )));
    }
    let config = manifest::parse_config(&bytes)
        .map_err(|e| Error::BadInput(format!("{name}: config '{}': {e}", inert(path))))?;
    let media_type = expected.map_or(media_type::DOCKER_CONFIG, |d| d.media_type.as_str());
    Ok((
        Descriptor::new(media_type, digest, bytes.len() as u64),
        config.rootfs.diff_ids,
    ))
}

fn read_oci(entries: &Entries, name: &str, omitted: &Omissions) -> Result<Layout> {
    let bytes = entries.read_small("index.json")?;
    let index = match manifest::parse(&bytes) {
        Ok(Parsed::Index(index)) => index,
        Ok(Parsed::Image(_)) => {
            return Err(Error::BadInput(format!(
                "{name}: index.json is a manifest, not an index"
            )));
        }
        Err(e) => return Err(Error::BadInput(format!("{name}: index.json: {e}"))),
    };
    let mut images: Vec<ArchiveImage> = Vec::new();
    // Where each manifest is in `images`: an index of many entries is read in linear time.
    let mut at: HashMap<Digest, usize> = HashMap::new();
    for descriptor in index.entries() {
        let names = oci_names(descriptor, name)?;
        let ref_names: Vec<String> = (descriptor.annotation(ANNOTATION_REF_NAME))
            .map(str::to_string)
            .into_iter()
            .collect();
        match at.get(&descriptor.digest) {
            Some(&known) => {
                images[known].names.extend(names);
                images[known].ref_names.extend(ref_names);
            }
            None => {
                at.insert(descriptor.digest.clone(), images.len());
                images.push(ArchiveImage {
                    names,
                    ref_names,
                    manifest: read_manifest(entries, name, descriptor, omitted)?,
                });
            }
        }
    }
    Ok(Layout {
        images,
        paths: HashMap::new(),
    })
}

/// The image name an OCI index entry carries: containerd's full-name annotation, else the
/// OCI ref name when it is a full reference rather than a bare tag.
fn oci_names(descriptor: &Descriptor, name: &str) -> Result<Vec<Reference>> {
    let full = descriptor.annotation(ANNOTATION_IMAGE_NAME).or_else(|| {
        descriptor
            .annotation(ANNOTATION_REF_NAME)
            .filter(|r| r.contains(['/', ':', '@']))
    });
    match full {
        Some(full) => Reference::parse(full)
            .map(|reference| vec![reference])
            .map_err(|e| Error::BadInput(format!("{name}: index.json: {e}"))),
        None => Ok(Vec::new()),
    }
}

/// Reads the manifest `descriptor` names, checked against it; for an image, checks that the
/// archive holds its config and layers at the sizes it declares (or, for a layer a delta
/// archive leaves out, that it declares that size), so a damaged archive is refused before
/// anything is copied.
pub(super) fn read_manifest(
    entries: &Entries,
    name: &str,
    descriptor: &Descriptor,
    omitted: &Omissions,
) -> Result<RawManifest> {
    let raw = RawManifest::new(
        read_blob(entries, name, descriptor)?,
        &descriptor.media_type,
    );
    let Ok(Parsed::Image(image)) = manifest::parse(&raw.bytes) else {
        return Ok(raw);
    };
    match raw.is_artifact(&image) {
        true => drop(read_blob(entries, name, &image.config)?),
        false => {
            let config_path = image.config.digest.layout_path();
            checked_config(entries, name, &config_path, Some(&image.config))?;
        }
    }
    for layer in &image.layers {
        let path = layer.digest.layout_path();
        if !entries.contains(&path)
            && let Some(size) = omitted.get(&layer.digest)
        {
            if *size != layer.size {
                return Err(Error::BadInput(format!(
                    "{name}: layer {} is left out as {size} bytes, but the manifest says {}",
                    layer.digest, layer.size
                )));
            }
            continue;
        }
        let size = entries.size(&path)?;
        if size != layer.size {
            return Err(Error::BadInput(format!(
                "{name}: layer '{path}' is {size} bytes, but the manifest says {}",
                layer.size
            )));
        }
        entries.verify(&path, &layer.digest)?;
    }
    Ok(raw)
}

/// Whether the archive holds the manifest `descriptor` names and every blob it names (for an
/// index, every manifest it lists, `depth` indexes down): a `docker save` of a multi-platform
/// image lists every platform but holds one.
pub(super) fn holds(
    entries: &Entries,
    descriptor: &Descriptor,
    depth: usize,
    omitted: &Omissions,
) -> bool {
    let path = descriptor.digest.layout_path();
    if depth >= MAX_INDEX_DEPTH || !entries.contains(&path) {
        return false;
    }
    let Ok(bytes) = entries.read_small(&path) else {
        return false;
    };
    match manifest::parse(&bytes) {
        Ok(Parsed::Image(image)) => {
            std::iter::once(&image.config)
                .chain(&image.layers)
                .all(|blob| {
                    entries.contains(&blob.digest.layout_path())
                        || omitted.contains_key(&blob.digest)
                })
        }
        Ok(Parsed::Index(index)) => {
            (index.entries().iter()).all(|entry| holds(entries, entry, depth + 1, omitted))
        }
        Err(_) => false,
    }
}

/// Reads a small blob named by `descriptor` and checks its digest and size.
fn read_blob(entries: &Entries, name: &str, descriptor: &Descriptor) -> Result<Vec<u8>> {
    let path = descriptor.digest.layout_path();
    let bytes = entries.read_small(&path)?;
    let digest = Digest::of(&bytes);
    if digest != descriptor.digest || bytes.len() as u64 != descriptor.size {
        return Err(Error::BadInput(format!(
            "{name}: '{path}' is {} bytes hashing to {digest}, but its descriptor says {} bytes",
            bytes.len(),
            descriptor.size
        )));
    }
    Ok(bytes)
}
