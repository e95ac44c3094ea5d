//! OCI and Docker manifests, indexes and image configs: only the fields this program uses,
//! their media types, and platforms.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// Manifests and configs are held whole in memory, so they are capped at this size.
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;
/// How deep indexes may nest inside indexes.
pub const MAX_INDEX_DEPTH: usize = 4;

pub mod fallback;

/// The media types this program reads and writes.
pub mod media_type {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// Docker schema 2 image manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker schema 2 manifest list.
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// OCI's empty JSON blob (`{}`), a config or layer that holds nothing.
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
    /// Uncompressed Docker layer, as `docker save` holds it.
    pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
    /// Gzip-compressed Docker layer.
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Uncompressed OCI layer.
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    /// Gzip-compressed OCI layer.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// Docker's foreign layer (Windows base layers): its bytes are at the URLs its descriptor
    /// names, not in the registry.
    pub const DOCKER_FOREIGN_LAYER: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    /// OCI's non-distributable layers (uncompressed, gzip, zstd), foreign layers by another name.
    pub const OCI_NONDISTRIBUTABLE_LAYERS: [&str; 3] = [
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    ];
    /// Docker schema 1 manifests, which are refused.
    pub const DOCKER_SCHEMA1: [&str; 2] = [
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    ];

    /// Whether a layer of this type is foreign (non-distributable): registries do not hold its
    /// bytes, and accept a manifest that names it without them.
    pub fn is_foreign(layer_type: &str) -> bool {
        layer_type == DOCKER_FOREIGN_LAYER || OCI_NONDISTRIBUTABLE_LAYERS.contains(&layer_type)
    }

    /// The gzip layer type of the same family (Docker or OCI) as an uncompressed layer type,
    /// if it is one.
    pub fn gzipped(layer_type: &str) -> Option<&'static str> {
        match layer_type {
            DOCKER_LAYER_TAR => Some(DOCKER_LAYER_GZIP),
            OCI_LAYER_TAR => Some(OCI_LAYER_GZIP),
            _ => None,
        }
    }
}

/// The annotation Docker and containerd use for an image's full name in an OCI layout.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI annotation for an image's reference (a tag, or a full reference).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A pointer to a blob: its media type, digest and size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// What kind of artifact the manifest it points at is (a referrer's, as listed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// A descriptor with no platform or annotations.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            annotations: None,
            artifact_type: None,
        }
    }

    /// The value of one annotation, if present.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

/// The platform an image in an index runs on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of the machine this runs on (`linux/amd64` on x86-64 Linux).
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            other => other,
        };
        Platform {
            architecture: architecture.into(),
            os: std::env::consts::OS.into(),
            variant: None,
        }
    }

    /// Parses `os/arch[/variant]`, normalising as Docker does (`x86_64` is `amd64`, `aarch64`
    /// is `arm64`, `arm64/v8` is `arm64`, `arm` alone is `arm/v7`).
    pub fn parse(text: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let (os, architecture, variant) = match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => (*os, *arch, None),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                (*os, *arch, Some(*variant))
            }
            _ => {
                return Err(format!(
                    "invalid platform \"{text}\": expected os/arch[/variant], like linux/arm64"
                ));
            }
        };
        Ok(Platform {
            architecture: architecture.to_ascii_lowercase(),
            os: os.to_ascii_lowercase(),
            variant: variant.map(str::to_ascii_lowercase),
        }
        .normalised())
    }

    /// The same platform spelt as registries spell it.
    fn normalised(mut self) -> Platform {
        self.architecture = match self.architecture.as_str() {
            "x86_64" | "x86-64" => "amd64".into(),
            "aarch64" => "arm64".into(),
            _ => self.architecture,
        };
        match (self.architecture.as_str(), self.variant.as_deref()) {
            ("arm64", Some("v8")) => self.variant = None,
            ("arm", None) => self.variant = Some("v7".into()),
            _ => {}
        }
        self
    }

    /// Whether `self` (what is wanted) accepts `other` (what an index offers), both
    /// normalised; a wanted platform without a variant accepts any variant.
    pub fn accepts(&self, other: &Platform) -> bool {
        let (wanted, offered) = (self.clone().normalised(), other.clone().normalised());
        wanted.os == offered.os
            && wanted.architecture == offered.architecture
            && (self.variant.is_none() || wanted.variant == offered.variant)
    }

    /// Attestations are stored in indexes as `unknown/unknown` entries.
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" && self.architecture == "unknown"
    }

    /// The one rule for choosing in an index: the first of `entries` whose platform this one
    /// accepts; an attestation (`unknown/unknown`) or an entry without a platform never.
    pub fn choose<'a>(
        &self,
        entries: impl IntoIterator<Item = &'a Descriptor>,
    ) -> Option<&'a Descriptor> {
        (entries.into_iter()).find(|entry| {
            (entry.platform.as_ref())
                .is_some_and(|offered| !offered.is_unknown() && self.accepts(offered))
        })
    }
}

/// Which images of a multi-platform index to take.
#[derive(Clone, Debug, PartialEq)]
pub enum Platforms {
    /// The image for this platform, asked for: an image for another one is refused.
    One(Platform),
    /// The image for this host's platform, as nothing else was asked for: a single-platform
    /// image for another platform is taken as it is, as Docker does.
    Host,
    /// The index as it is, with every image it lists.
    All,
    /// The images for these platforms, asked for: an index rewritten to list only them (a new
    /// digest); a platform the index lacks is refused.
    Several(Vec<Platform>),
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// An image index or Docker manifest list.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// `null` in some files Docker wrote, so read as optional.
    #[serde(default)]
    pub manifests: Option<Vec<Descriptor>>,
}

impl ImageIndex {
    /// The entries of the index (none when it says `null`).
    pub fn entries(&self) -> &[Descriptor] {
        self.manifests.as_deref().unwrap_or_default()
    }
}

/// The parts of an image config this program reads.
#[derive(Clone, Debug, Deserialize)]
pub struct ImageConfig {
    pub rootfs: RootFs,
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    variant: Option<String>,
}

impl ImageConfig {
    /// The platform the image says it is for, when it says.
    pub fn platform(&self) -> Option<Platform> {
        Some(Platform {
            architecture: self.architecture.clone()?,
            os: self.os.clone()?,
            variant: self.variant.clone(),
        })
    }
}

/// The config's list of uncompressed layer digests.
#[derive(Clone, Debug, Deserialize)]
pub struct RootFs {
    pub diff_ids: Vec<Digest>,
}

/// Manifest bytes exactly as stored or received (never re-serialised), with their digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

impl RawManifest {
    /// Wraps `bytes` of the given media type, computing their digest.
    pub fn new(bytes: Vec<u8>, media_type: &str) -> RawManifest {
        let digest = Digest::of(&bytes);
        RawManifest {
            bytes,
            media_type: media_type.to_string(),
            digest,
        }
    }

    /// The descriptor that points at these bytes.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            &self.media_type,
            self.digest.clone(),
            self.bytes.len() as u64,
        )
    }

    /// What the manifest says of itself as a referrer: the `subject` it names, if any, and
    /// the descriptor a referrers listing gives it (its `artifactType`, else its config's
    /// media type, as the distribution spec says, and its annotations).
    pub fn as_referrer(&self) -> (Option<Digest>, Descriptor) {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Fields {
            subject: Option<Subject>,
            artifact_type: Option<String>,
            config: Option<Subject>,
            annotations: Option<BTreeMap<String, String>>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Subject {
            digest: Option<Digest>,
            media_type: Option<String>,
        }
        let fields = serde_json::from_slice::<Fields>(&self.bytes).ok();
        let mut descriptor = self.descriptor();
        if let Some(fields) = fields {
            descriptor.artifact_type = fields
                .artifact_type
                .or_else(|| fields.config.and_then(|config| config.media_type));
            descriptor.annotations = fields.annotations;
            return (fields.subject.and_then(|s| s.digest), descriptor);
        }
        (None, descriptor)
    }

    /// Whether these bytes, the image manifest `image`, are an artifact that names a subject
    /// (an SBOM, say) with a config that is no image's (the empty descriptor, as a rule):
    /// its config is not read as an image config.
    pub fn is_artifact(&self, image: &ImageManifest) -> bool {
        ![media_type::OCI_CONFIG, media_type::DOCKER_CONFIG]
            .contains(&image.config.media_type.as_str())
            && self.as_referrer().0.is_some()
    }

    /// The image manifest these bytes hold; an index or anything else is an error.
    pub fn image(&self) -> Result<ImageManifest, String> {
        match parse(&self.bytes)? {
            Parsed::Image(image) => Ok(image),
            Parsed::Index(_) => Err(format!(
                "manifest {} is an index, not an image",
                self.digest
            )),
        }
    }
}

/// `raw` with its layers replaced by `stored`, what the destination holds (layers compressed
/// on the way). With nothing to change, the original bytes are kept.
pub fn with_stored_layers(raw: &RawManifest, stored: &[Descriptor]) -> Result<RawManifest, String> {
    let image = raw.image()?;
    if image.layers == stored {
        return Ok(raw.clone());
    }
    if image.layers.len() != stored.len() {
        return Err(format!(
            "{} layers stored for a manifest of {}",
            stored.len(),
            image.layers.len()
        ));
    }
    rewrite(raw, |value| {
        if let Some(layers) = value.get_mut("layers").and_then(|l| l.as_array_mut()) {
            for (layer, new) in layers.iter_mut().zip(stored) {
                layer["mediaType"] = new.media_type.clone().into();
                layer["digest"] = new.digest.to_string().into();
                layer["size"] = new.size.into();
            }
        }
    })
}

/// The index `raw` with its entries pointing at `children`, the child manifests as the
/// destination stores them (their digests change when their layers were compressed on the
/// way); platforms and annotations are kept. With nothing to change, the original bytes.
pub fn with_stored_children(
    raw: &RawManifest,
    children: &[&RawManifest],
) -> Result<RawManifest, String> {
    let index = match parse(&raw.bytes)? {
        Parsed::Index(index) => index,
        Parsed::Image(_) => {
            return Err(format!("manifest {} is an image, not an index", raw.digest));
        }
    };
    let unchanged =
        (index.entries().iter().zip(children)).all(|(entry, child)| entry.digest == child.digest);
    if unchanged && index.entries().len() == children.len() {
        return Ok(raw.clone());
    }
    rewrite(raw, |value| {
        if let Some(entries) = value.get_mut("manifests").and_then(|m| m.as_array_mut()) {
            for (entry, child) in entries.iter_mut().zip(children) {
                entry["mediaType"] = child.media_type.clone().into();
                entry["digest"] = child.digest.to_string().into();
                entry["size"] = child.bytes.len().into();
            }
        }
    })
}

/// `raw`, an index, listing only the entries whose digest is in `keep`, in its order, every
/// other field as it was: a new manifest, with a digest of its own.
pub fn with_entries_only(
    raw: &RawManifest,
    keep: &HashSet<&Digest>,
) -> Result<RawManifest, String> {
    rewrite(raw, |value| {
        if let Some(entries) = value.get_mut("manifests").and_then(|m| m.as_array_mut()) {
            entries.retain(|entry| {
                (entry["digest"].as_str()).is_some_and(|digest| {
                    Digest::parse(digest).is_ok_and(|digest| keep.contains(&digest))
                })
            });
        }
    })
}

/// `raw` as an OCI manifest when it holds uncompressed Docker layers, a media type few
/// registries and clients accept, while OCI's uncompressed layer type is accepted by all. The
/// config bytes never change, only their descriptor's media type. Otherwise `raw` as it is.
pub fn uncompressed_as_oci(raw: &RawManifest) -> Result<RawManifest, String> {
    let image = raw.image()?;
    if !image
        .layers
        .iter()
        .any(|layer| layer.media_type == media_type::DOCKER_LAYER_TAR)
    {
        return Ok(raw.clone());
    }
    let converted = rewrite(raw, |value| {
        value["mediaType"] = media_type::OCI_MANIFEST.into();
        value["config"]["mediaType"] = oci_type(&image.config.media_type).into();
        if let Some(layers) = value.get_mut("layers").and_then(|l| l.as_array_mut()) {
            for (layer, old) in layers.iter_mut().zip(&image.layers) {
                layer["mediaType"] = oci_type(&old.media_type).into();
            }
        }
    })?;
    Ok(RawManifest::new(converted.bytes, media_type::OCI_MANIFEST))
}

/// The OCI media type for a Docker one (others as they are).
fn oci_type(docker_type: &str) -> &str {
    match docker_type {
        media_type::DOCKER_LAYER_TAR => media_type::OCI_LAYER_TAR,
        media_type::DOCKER_LAYER_GZIP => media_type::OCI_LAYER_GZIP,
        media_type::DOCKER_CONFIG => media_type::OCI_CONFIG,
        other => other,
    }
}

/// `raw` with `change` applied to its JSON (unknown fields kept), re-encoded.
fn rewrite(
    raw: &RawManifest,
    change: impl FnOnce(&mut serde_json::Value),
) -> Result<RawManifest, String> {
    let mut value: serde_json::Value =
        serde_json::from_slice(&raw.bytes).map_err(|e| format!("manifest {}: {e}", raw.digest))?;
    change(&mut value);
    let bytes = serde_json::to_vec(&value).map_err(|e| e.to_string())?;
    Ok(RawManifest::new(bytes, &raw.media_type))
}

/// A manifest or index as parsed from its bytes.
// Short-lived, one per manifest read: boxing the image would cost more than the bytes saved.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Parsed {
    Image(ImageManifest),
    Index(ImageIndex),
}

/// Parses manifest bytes: by their `mediaType`, or by their fields when OCI leaves it out.
/// Schema 1 is refused by name.
pub fn parse(bytes: &[u8]) -> Result<Parsed, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        schema_version: Option<u32>,
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        config: Option<serde_json::Value>,
    }
    let probe: Probe =
        serde_json::from_slice(bytes).map_err(|e| format!("not a valid JSON manifest: {e}"))?;
    let media_type = probe.media_type.as_deref().unwrap_or_default();
    if probe.schema_version == Some(1) || media_type::DOCKER_SCHEMA1.contains(&media_type) {
        return Err("Docker schema 1 manifests are deprecated and not supported".into());
    }
    let is_index = match media_type {
        media_type::OCI_INDEX | media_type::DOCKER_LIST => true,
        media_type::OCI_MANIFEST | media_type::DOCKER_MANIFEST => false,
        "" if probe.manifests.is_some() => true,
        "" if probe.config.is_some() => false,
        other => return Err(format!("unsupported manifest media type \"{other}\"")),
    };
    if is_index {
        serde_json::from_slice(bytes)
            .map(Parsed::Index)
            .map_err(|e| format!("invalid image index: {e}"))
    } else {
        serde_json::from_slice(bytes)
            .map(Parsed::Image)
            .map_err(|e| format!("invalid image manifest: {e}"))
    }
}

/// Parses config bytes, requiring `rootfs.diff_ids`.
pub fn parse_config(bytes: &[u8]) -> Result<ImageConfig, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("not a valid image config: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn classifies_by_media_type_or_by_fields() {
        let image = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"sha256:{HEX}","size":1}},"layers":[]}}"#
        );
        assert!(matches!(parse(image.as_bytes()), Ok(Parsed::Image(_))));
        let index = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(parse(index.as_bytes()), Ok(Parsed::Index(_))));
        let null_index = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":null}"#;
        match parse(null_index.as_bytes()) {
            Ok(Parsed::Index(index)) => assert!(index.entries().is_empty()),
            _ => panic!("a null index is an empty index"),
        }
    }

    #[test]
    fn refuses_schema_1_and_garbage() {
        assert!(
            parse(br#"{"schemaVersion":1,"name":"x"}"#)
                .unwrap_err()
                .contains("schema 1")
        );
        assert!(parse(b"not json").unwrap_err().contains("JSON"));
        assert!(
            parse(br#"{"mediaType":"text/plain"}"#)
                .unwrap_err()
                .contains("unsupported")
        );
    }

    fn docker_manifest(layer_type: &str) -> RawManifest {
        let image = ImageManifest {
            schema_version: 2,
            media_type: Some(media_type::DOCKER_MANIFEST.into()),
            config: Descriptor::new(media_type::DOCKER_CONFIG, Digest::of(b"config"), 6),
            layers: vec![Descriptor::new(layer_type, Digest::of(b"layer"), 5)],
        };
        RawManifest::new(
            serde_json::to_vec(&image).unwrap(),
            media_type::DOCKER_MANIFEST,
        )
    }

    #[test]
    fn compressed_layers_keep_the_family_and_the_config() {
        let raw = docker_manifest(media_type::DOCKER_LAYER_TAR);
        let gzipped = Descriptor::new(media_type::DOCKER_LAYER_GZIP, Digest::of(b"gz"), 3);
        let pushed = with_stored_layers(&raw, std::slice::from_ref(&gzipped)).unwrap();
        assert_eq!(pushed.media_type, media_type::DOCKER_MANIFEST);
        let image = pushed.image().unwrap();
        assert_eq!(image.layers, [gzipped]);
        assert_eq!(image.config, raw.image().unwrap().config);
    }

    #[test]
    fn uncompressed_docker_layers_turn_the_manifest_oci() {
        let raw = docker_manifest(media_type::DOCKER_LAYER_TAR);
        let layers = raw.image().unwrap().layers;
        assert_eq!(
            with_stored_layers(&raw, &layers).unwrap(),
            raw,
            "the cache keeps Docker's types"
        );
        let pushed = uncompressed_as_oci(&raw).unwrap();
        assert_eq!(pushed.media_type, media_type::OCI_MANIFEST);
        let image = pushed.image().unwrap();
        assert_eq!(image.layers[0].media_type, media_type::OCI_LAYER_TAR);
        assert_eq!(image.config.media_type, media_type::OCI_CONFIG);
        assert_eq!(image.config.digest, Digest::of(b"config"));
    }

    #[test]
    fn an_unchanged_manifest_keeps_its_bytes() {
        let raw = docker_manifest(media_type::DOCKER_LAYER_GZIP);
        let layers = raw.image().unwrap().layers;
        assert_eq!(with_stored_layers(&raw, &layers).unwrap(), raw);
        assert_eq!(uncompressed_as_oci(&raw).unwrap(), raw);
    }

    #[test]
    fn platforms_parse_and_normalise() {
        let p = |text| Platform::parse(text).unwrap().to_string();
        assert_eq!(p("linux/x86_64"), "linux/amd64");
        assert_eq!(p("linux/aarch64"), "linux/arm64");
        assert_eq!(p("linux/arm64/v8"), "linux/arm64");
        assert_eq!(p("linux/arm"), "linux/arm/v7");
        assert_eq!(p("Linux/ARM/v6"), "linux/arm/v6");
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", ""] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
        let offered = Platform {
            architecture: "arm64".into(),
            os: "linux".into(),
            variant: Some("v8".into()),
        };
        assert!(Platform::parse("linux/arm64").unwrap().accepts(&offered));
    }

    #[test]
    fn platforms_match_with_and_without_variant() {
        let arm = Platform {
            architecture: "arm".into(),
            os: "linux".into(),
            variant: Some("v7".into()),
        };
        let any_arm = Platform {
            variant: None,
            ..arm.clone()
        };
        assert!(any_arm.accepts(&arm));
        assert!(!arm.accepts(&Platform {
            variant: Some("v6".into()),
            ..arm.clone()
        }));
        assert_eq!(arm.to_string(), "linux/arm/v7");
    }
}
