//! What an archive holds: the images described by an OCI layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`: Docker 25+, containerd, skopeo's `oci-archive`) or, without one, by a
//! legacy `manifest.json` (Docker 24 and older, skopeo's `docker-archive`).

use std::collections::HashMap;

use serde::Deserialize;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{
    self, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, Descriptor, ImageManifest, MAX_INDEX_DEPTH,
    Parsed, Platform, Platforms, RawManifest, media_type,
};
use crate::reference::Reference;

use super::entries::Entries;

/// One image found in an archive.
pub struct ArchiveImage {
    /// The names the archive gives it (empty for an image saved by ID).
    pub names: Vec<Reference>,
    /// The manifest: as stored for OCI layouts, written from `manifest.json` for legacy ones.
    pub manifest: RawManifest,
    /// The config's `rootfs.diff_ids`.
    pub diff_ids: Vec<Digest>,
    /// Where each blob of the image is in the archive.
    pub(super) paths: HashMap<Digest, String>,
}

/// The images of an archive, and remarks worth telling the user (platforms left out).
pub struct Layout {
    pub images: Vec<ArchiveImage>,
    pub remarks: Vec<String>,
}

/// Reads the layout of `entries`. With `Platforms::All`, an index whose images are all in the
/// archive is kept whole; otherwise the image for the platform asked for stands for it (for
/// this host's platform, the first image in the archive when it has none for it).
pub fn read(entries: &Entries, name: &str, platforms: &Platforms) -> Result<Layout> {
    if entries.contains("oci-layout") && entries.contains("index.json") {
        let layout = read_oci(entries, name, platforms)?;
        // Docker 25.0.0 to 25.0.2 wrote an empty index beside a complete manifest.json.
        if !layout.images.is_empty() || !entries.contains("manifest.json") {
            return Ok(layout);
        }
    }
    if entries.contains("manifest.json") {
        return read_legacy(entries, name);
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
    let mut images = Vec::new();
    for item in listed {
        let (config, diff_ids) = read_config(entries, name, &item.config, None)?;
        if diff_ids.len() != item.layers.len() {
            return Err(bad(format!(
                "image {} lists {} layers, but its config has {} diff_ids",
                item.config,
                item.layers.len(),
                diff_ids.len()
            )));
        }
        let mut paths = HashMap::from([(config.digest.clone(), item.config.clone())]);
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
            manifest: RawManifest::new(bytes, media_type::DOCKER_MANIFEST),
            diff_ids,
            paths,
        });
    }
    Ok(Layout {
        images,
        remarks: Vec::new(),
    })
}

/// Reads and checks a config; returns its descriptor and diff_ids.
fn read_config(
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
        .map_err(|e| Error::BadInput(format!("{name}: config '{path}': {e}")))?;
    let media_type = expected.map_or(media_type::DOCKER_CONFIG, |d| d.media_type.as_str());
    Ok((
        Descriptor::new(media_type, digest, bytes.len() as u64),
        config.rootfs.diff_ids,
    ))
}

fn read_oci(entries: &Entries, name: &str, platforms: &Platforms) -> Result<Layout> {
    let (all_platforms, platform, fallback) = match platforms {
        Platforms::All => (true, Platform::host(), true),
        Platforms::Host => (false, Platform::host(), true),
        Platforms::One(platform) => (false, platform.clone(), false),
    };
    let wanted = Wanted { platform, fallback };
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
    let mut layout = Layout {
        images: Vec::new(),
        remarks: Vec::new(),
    };
    for descriptor in index.entries() {
        let names = oci_names(descriptor, name)?;
        let whole = match all_platforms && descriptor.is_index() {
            true => whole_index(entries, name, descriptor, 0)?,
            false => None,
        };
        if all_platforms && descriptor.is_index() && whole.is_none() {
            layout.remarks.push(format!(
                "index {} is not whole in the archive, so it cannot be kept with all its platforms",
                descriptor.digest
            ));
        }
        let image = match whole {
            Some(image) => image,
            None => match resolve(entries, name, descriptor, &wanted, 0, &mut layout.remarks)? {
                Some(image) => image,
                None => continue,
            },
        };
        let image_digest = image.manifest.digest.clone();
        match layout
            .images
            .iter_mut()
            .find(|known| known.manifest.digest == image_digest)
        {
            Some(known) => known.names.extend(names),
            None => layout.images.push(ArchiveImage { names, ..image }),
        }
    }
    Ok(layout)
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

/// The platform to take from an index, and whether another will do when the archive has
/// none for it (this host's, by default; not one the user asked for).
struct Wanted {
    platform: Platform,
    fallback: bool,
}

/// Turns an index entry into an image: a manifest directly, or the image for `wanted` of an
/// index, among those whose blobs are all in the archive. `None` when an index entry offers
/// nothing complete.
fn resolve(
    entries: &Entries,
    name: &str,
    descriptor: &Descriptor,
    wanted: &Wanted,
    depth: usize,
    remarks: &mut Vec<String>,
) -> Result<Option<ArchiveImage>> {
    if !descriptor.is_index() {
        return read_oci_image(entries, name, descriptor).map(Some);
    }
    let (_, index) = read_index(entries, name, descriptor, depth)?;
    let mut complete = Vec::new();
    for child in index.entries() {
        let platform = child.platform.clone();
        if platform.as_ref().is_some_and(Platform::is_unknown) {
            continue; // an attestation, not an image
        }
        let label = platform
            .as_ref()
            .map_or_else(|| child.digest.to_string(), Platform::to_string);
        if !is_complete(entries, child) {
            remarks.push(format!(
                "platform {label} is listed but its blobs are not in the archive"
            ));
            continue;
        }
        if let Some(image) = resolve(entries, name, child, wanted, depth + 1, remarks)? {
            complete.push((child, label, image));
        }
    }
    let offered: Vec<&Descriptor> = complete.iter().map(|(child, ..)| *child).collect();
    let chosen = match wanted.platform.choose(offered.iter().copied()) {
        Some(chosen) => offered
            .iter()
            .position(|child| std::ptr::eq(*child, chosen))
            .unwrap_or(0),
        None if wanted.fallback || complete.is_empty() => 0,
        None => {
            let labels: Vec<&str> = complete
                .iter()
                .map(|(_, label, _)| label.as_str())
                .collect();
            return Err(Error::NotFound(format!(
                "{name}: index {} has no image for {} in the archive; it holds {} \
                 (choose with --platform)",
                descriptor.digest,
                wanted.platform,
                labels.join(", ")
            )));
        }
    };
    if complete.len() > 1 {
        let others: Vec<&str> = (complete.iter().enumerate())
            .filter(|(i, _)| *i != chosen)
            .map(|(_, (_, label, _))| label.as_str())
            .collect();
        remarks.push(format!(
            "the archive also holds {}; only {} was cached",
            others.join(", "),
            complete[chosen].1
        ));
    }
    Ok((chosen < complete.len()).then(|| complete.swap_remove(chosen).2))
}

/// An index entry kept whole: the index and every manifest it lists, as one image whose
/// blobs are those of all its platforms. `None` when some of them are not in the archive.
fn whole_index(
    entries: &Entries,
    name: &str,
    descriptor: &Descriptor,
    depth: usize,
) -> Result<Option<ArchiveImage>> {
    let (bytes, index) = read_index(entries, name, descriptor, depth)?;
    let mut whole = ArchiveImage {
        names: Vec::new(),
        manifest: RawManifest::new(bytes, &descriptor.media_type),
        diff_ids: Vec::new(),
        paths: HashMap::new(),
    };
    for child in index.entries() {
        let part = match child.is_index() {
            true => whole_index(entries, name, child, depth + 1)?,
            false if is_complete(entries, child) => Some(read_oci_image(entries, name, child)?),
            false => None,
        };
        let Some(part) = part else {
            return Ok(None);
        };
        whole.diff_ids.extend(part.diff_ids);
        whole.paths.extend(part.paths);
    }
    Ok(Some(whole))
}

/// Reads an index named by `descriptor`, `depth` indexes down: its bytes and what they say.
fn read_index(
    entries: &Entries,
    name: &str,
    descriptor: &Descriptor,
    depth: usize,
) -> Result<(Vec<u8>, manifest::ImageIndex)> {
    if depth >= MAX_INDEX_DEPTH {
        return Err(Error::BadInput(format!(
            "{name}: indexes nest more than {MAX_INDEX_DEPTH} deep"
        )));
    }
    let bytes = read_blob(entries, name, descriptor)?;
    match manifest::parse(&bytes) {
        Ok(Parsed::Index(index)) => Ok((bytes, index)),
        _ => Err(Error::BadInput(format!(
            "{name}: {} is not a valid index",
            descriptor.digest
        ))),
    }
}

/// Whether a manifest and every blob it names are in the archive.
fn is_complete(entries: &Entries, descriptor: &Descriptor) -> bool {
    if !entries.contains(&descriptor.digest.layout_path()) {
        return false;
    }
    if descriptor.is_index() {
        return true; // its children are checked one by one
    }
    let Ok(bytes) = entries.read_small(&descriptor.digest.layout_path()) else {
        return false;
    };
    match manifest::parse(&bytes) {
        Ok(Parsed::Image(image)) => std::iter::once(&image.config)
            .chain(&image.layers)
            .all(|blob| entries.contains(&blob.digest.layout_path())),
        _ => false,
    }
}

fn read_oci_image(entries: &Entries, name: &str, descriptor: &Descriptor) -> Result<ArchiveImage> {
    let bytes = read_blob(entries, name, descriptor)?;
    let raw = RawManifest::new(bytes, &descriptor.media_type);
    let image = raw
        .image()
        .map_err(|e| Error::BadInput(format!("{name}: {e}")))?;
    let config_path = image.config.digest.layout_path();
    let (_, diff_ids) = read_config(entries, name, &config_path, Some(&image.config))?;
    let mut paths = HashMap::from([(image.config.digest.clone(), config_path)]);
    for layer in &image.layers {
        let path = layer.digest.layout_path();
        let size = entries.size(&path)?;
        if size != layer.size {
            return Err(Error::BadInput(format!(
                "{name}: layer '{path}' is {size} bytes, but the manifest says {}",
                layer.size
            )));
        }
        entries.verify(&path, &layer.digest)?;
        paths.insert(layer.digest.clone(), path);
    }
    Ok(ArchiveImage {
        names: Vec::new(),
        manifest: raw,
        diff_ids,
        paths,
    })
}

/// Reads a small blob named by `descriptor` and checks its digest and size.
pub(super) fn read_blob(entries: &Entries, name: &str, descriptor: &Descriptor) -> Result<Vec<u8>> {
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
