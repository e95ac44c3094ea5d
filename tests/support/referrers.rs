//! Referrers as their real producers lay them out, pushed with curl to a plain-HTTP test
//! registry (or a front before one): an SPDX SBOM artifact with the empty config (as oras
//! attaches it), an in-toto attestation, and a cosign simple-signing manifest at the tag
//! `sha256-<hex>.sig`. Distribution 2.8 has no Referrers API, so [`link_fallback`] writes or
//! merges the fallback index at `sha256-<hex>` itself, as oras and regctl do there. [`fetch`]
//! reads a manifest's exact bytes back.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::registry::{put_blob_at, put_manifest_at};
use super::{TempDir, sha256, tool};

/// The OCI empty config's media type, digest and bytes (`{}`).
pub const EMPTY_CONFIG: (&str, &str, &[u8]) = (
    "application/vnd.oci.empty.v1+json",
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    b"{}",
);
/// An SPDX SBOM's artifact type.
pub const SPDX: &str = "application/spdx+json";
/// An in-toto attestation's artifact type.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
/// cosign's simple-signing payload, the layer of a `.sig` manifest.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A manifest as a registry holds it: its bytes, digest and media type.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    /// `sha256:<hex>`, computed here.
    pub digest: String,
    pub media_type: String,
}

impl Manifest {
    /// A manifest of these bytes, its media type the one they state.
    pub fn of(bytes: Vec<u8>) -> Manifest {
        let parsed: Value = serde_json::from_slice(&bytes).expect("a manifest is JSON");
        let media_type = parsed["mediaType"].as_str().unwrap_or(OCI_MANIFEST).into();
        Manifest {
            digest: format!("sha256:{}", sha256(&bytes)),
            bytes,
            media_type,
        }
    }

    /// Its descriptor: media type, digest and size (for a `subject` or an index entry).
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.bytes.len()})
    }

    /// Its descriptor as a referrers index lists it: with its `artifactType` (for cosign's,
    /// none) and annotations.
    pub fn entry(&self) -> Value {
        let parsed: Value = serde_json::from_slice(&self.bytes).unwrap();
        let mut entry = self.descriptor();
        for field in ["artifactType", "annotations"] {
            if !parsed[field].is_null() {
                entry[field] = parsed[field].clone();
            }
        }
        entry
    }

    /// Its sha256 hex.
    pub fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }
}

/// Where referrers are pushed: a plain-HTTP registry or front, and a scratch folder for the
/// bodies curl sends.
pub struct Producer {
    host: String,
    scratch: TempDir,
}

impl Producer {
    /// A producer pushing to `host` (`127.0.0.1:<port>`).
    pub fn new(host: &str) -> Producer {
        Producer {
            host: host.to_string(),
            scratch: TempDir::new("producer"),
        }
    }

    fn scratch(&self, name: &str) -> PathBuf {
        self.scratch.join(name)
    }

    /// Stores `bytes` as a blob of `repository`; returns its descriptor of `media_type`.
    pub fn blob(&self, repository: &str, media_type: &str, bytes: &[u8]) -> Value {
        let digest = put_blob_at(&self.host, &self.scratch("blob"), repository, bytes);
        json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
    }

    /// Stores `manifest` as `reference` (a tag, or its digest when `None`) of `repository`.
    pub fn put(&self, repository: &str, reference: Option<&str>, manifest: &Manifest) {
        let reference = reference.unwrap_or(&manifest.digest);
        let file = self.scratch("manifest.json");
        let at = (repository, reference);
        put_manifest_at(&self.host, &file, at, &manifest.media_type, &manifest.bytes);
    }

    /// A small image of one layer, `seed` making it unlike any other, stored as `tag` of
    /// `repository` (made with curl: quicker than umoci for tests that need many).
    pub fn image(&self, repository: &str, tag: &str, seed: &str) -> Manifest {
        let config = json!({"architecture": "amd64", "os": "linux", "config": {"Env": [seed]},
            "rootfs": {"type": "layers", "diff_ids": []}});
        let layer_type = "application/vnd.oci.image.layer.v1.tar";
        let layer = self.blob(
            repository,
            layer_type,
            format!("layer of {seed}").as_bytes(),
        );
        let manifest = self.image_manifest(repository, &config, layer);
        self.put(repository, Some(tag), &manifest);
        manifest
    }

    /// An image manifest of `config` (stored as its blob) and the one layer `layer`.
    fn image_manifest(&self, repository: &str, config: &Value, layer: Value) -> Manifest {
        let config = self.blob(
            repository,
            "application/vnd.oci.image.config.v1+json",
            &serde_json::to_vec(config).unwrap(),
        );
        Manifest::of(
            serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config,
                "layers": [layer],
            }))
            .unwrap(),
        )
    }

    /// An artifact of `artifact_type` about `subject`, as oras attaches one: the empty
    /// config, one layer of `layer_type` holding `content`, a creation time; pushed by
    /// digest.
    pub fn artifact(
        &self,
        repository: &str,
        subject: &Manifest,
        (artifact_type, layer_type): (&str, &str),
        content: &[u8],
    ) -> Manifest {
        let (config_type, _, config) = EMPTY_CONFIG;
        let config = self.blob(repository, config_type, config);
        let layer = self.blob(repository, layer_type, content);
        let manifest = Manifest::of(
            serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": artifact_type,
                "config": config,
                "layers": [layer],
                "subject": subject.descriptor(),
                "annotations": {"org.opencontainers.image.created": "2026-01-02T03:04:05Z"},
            }))
            .unwrap(),
        );
        self.put(repository, None, &manifest);
        manifest
    }

    /// An SPDX SBOM of `subject` (`name` is the document's name, to tell two apart).
    pub fn sbom(&self, repository: &str, subject: &Manifest, name: &str) -> Manifest {
        let document = json!({"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT",
            "name": name, "dataLicense": "CC0-1.0", "packages": []});
        let content = serde_json::to_vec(&document).unwrap();
        self.artifact(repository, subject, (SPDX, SPDX), &content)
    }

    /// An in-toto attestation (an SLSA provenance statement) of `subject`.
    pub fn attestation(&self, repository: &str, subject: &Manifest) -> Manifest {
        let statement = json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": repository, "digest": {"sha256": subject.hex()}}],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {"buildDefinition": {"buildType": "test"}},
        });
        let content = serde_json::to_vec(&statement).unwrap();
        self.artifact(repository, subject, (IN_TOTO, IN_TOTO), &content)
    }

    /// cosign's signature of `subject` at `sha256-<hex>.sig`: an image config, one
    /// simple-signing layer with its signature in an annotation. `signature` tells two
    /// signings apart (a re-signing gives a new manifest digest).
    pub fn cosign_signature(
        &self,
        repository: &str,
        subject: &Manifest,
        signature: &str,
    ) -> Manifest {
        let config = json!({"architecture": "", "os": "", "config": {},
            "rootfs": {"type": "layers", "diff_ids": []}});
        let payload = json!({"critical": {"identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": subject.digest},
            "type": "cosign container image signature"}, "optional": null});
        let mut layer = self.blob(
            repository,
            SIMPLE_SIGNING,
            &serde_json::to_vec(&payload).unwrap(),
        );
        layer["annotations"] = json!({"dev.cosignproject.cosign/signature": signature});
        let manifest = self.image_manifest(repository, &config, layer);
        self.put(
            repository,
            Some(&format!("sha256-{}.sig", subject.hex())),
            &manifest,
        );
        manifest
    }

    /// Adds `referrers` to `subject`'s fallback index at `sha256-<hex>` (made when there is
    /// none), keeping what it lists, as oras and regctl do on a registry without the
    /// Referrers API; returns the index stored.
    pub fn link_fallback(
        &self,
        repository: &str,
        subject: &Manifest,
        referrers: &[&Manifest],
    ) -> Manifest {
        let tag = format!("sha256-{}", subject.hex());
        let mut index = match self.try_fetch(repository, &tag) {
            Some(there) => serde_json::from_slice(&there.bytes).unwrap(),
            None => json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
        };
        let listed = index["manifests"].as_array_mut().unwrap();
        for referrer in referrers {
            if !listed.iter().any(|had| had["digest"] == *referrer.digest) {
                listed.push(referrer.entry());
            }
        }
        let index = Manifest::of(serde_json::to_vec(&index).unwrap());
        self.put(repository, Some(&tag), &index);
        index
    }

    /// The manifest `reference` names in `repository`, its exact bytes.
    pub fn fetch(&self, repository: &str, reference: &str) -> Manifest {
        self.try_fetch(repository, reference)
            .unwrap_or_else(|| panic!("{}/{repository}:{reference} is not there", self.host))
    }

    /// The same, or `None` when the registry answers 404.
    pub fn try_fetch(&self, repository: &str, reference: &str) -> Option<Manifest> {
        fetch(&self.host, &self.scratch("fetched"), repository, reference)
    }
}

/// The manifest `reference` names in `repository` at the plain-HTTP `host`, its exact bytes
/// (written through the scratch file `file`), or `None` when it answers 404.
pub fn fetch(host: &str, file: &Path, repository: &str, reference: &str) -> Option<Manifest> {
    let accept = format!(
        "Accept: {OCI_MANIFEST}, {OCI_INDEX}, \
         application/vnd.docker.distribution.manifest.v2+json, \
         application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let url = format!("http://{host}/v2/{repository}/manifests/{reference}");
    let out = file.to_str().unwrap();
    let status = tool(
        "curl",
        &["-sS", "-H", &accept, "-o", out, "-w", "%{http_code}", &url],
    );
    match status.trim() {
        "200" => Some(Manifest::of(std::fs::read(file).unwrap())),
        "404" => None,
        other => panic!("GET {url}: {other}"),
    }
}
