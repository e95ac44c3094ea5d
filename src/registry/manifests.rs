//! Manifests on a registry: `GET` with every modern media type accepted, classified and
//! checked (digest when pulled by digest, size cap, schema 1 refused), and `PUT` with the
//! manifest's own media type (whose answer may tell that the registry has the Referrers API).

use super::Registry;
use super::blobs::{delete_scope, pull_scope, push_scope};
use super::http::Body;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{self, MAX_MANIFEST_SIZE, Parsed, RawManifest, media_type};

/// What a client accepts: without these, registries fall back to schema 1 or rewrite lists.
const ACCEPT: [&str; 4] = [
    media_type::OCI_INDEX,
    media_type::OCI_MANIFEST,
    media_type::DOCKER_LIST,
    media_type::DOCKER_MANIFEST,
];

impl Registry {
    /// The manifest `reference` (tag or digest) of `repository`, as the registry stores it.
    pub fn get_manifest(&self, repository: &str, reference: &str) -> Result<RawManifest> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let headers = [("Accept", ACCEPT.join(", "))];
        let scope = pull_scope(repository);
        let (answered, bytes) = self
            .get_whole(&url, &scope, &headers, MAX_MANIFEST_SIZE, "the manifest")
            .map_err(|e| match e.status() {
                Some(404) => {
                    let host = crate::reference::without_scheme(&self.base);
                    let at = if reference.contains(':') { '@' } else { ':' };
                    Error::NotFound(format!("no image {host}/{repository}{at}{reference} ({e})"))
                }
                _ => e,
            })?;
        let content_type = (answered.get("content-type").and_then(|v| v.to_str().ok()))
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_string())
            .unwrap_or_default();
        let bad =
            |why: String| Error::BadInput(format!("manifest {repository}:{reference}: {why}"));
        let parsed = manifest::parse(&bytes).map_err(bad)?;
        let media_type = media_type_of(&bytes, &parsed, &content_type).map_err(bad)?;
        let raw = RawManifest::new(bytes, &media_type);
        if let Ok(expected) = Digest::parse(reference)
            && raw.digest != expected
        {
            return Err(bad(format!("its bytes hash to {}", raw.digest)));
        }
        Ok(raw)
    }

    /// The digest of manifest `reference` (tag or digest) of `repository`, or `None` when it
    /// is not there, asked with `HEAD` (with the push scope's token when `for_push`, as a
    /// destination is asked). A registry whose answer carries no valid `Docker-Content-Digest`
    /// has the manifest fetched and hashed instead.
    pub fn manifest_digest(
        &self,
        repository: &str,
        reference: &str,
        for_push: bool,
    ) -> Result<Option<Digest>> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let scope = match for_push {
            true => push_scope(repository),
            false => pull_scope(repository),
        };
        let headers = [("Accept", ACCEPT.join(", "))];
        let response = self.request("HEAD", &url, &scope, &headers, Body::Empty, &[200, 404])?;
        if response.status().as_u16() == 404 {
            return Ok(None);
        }
        let stated = (response.headers().get("docker-content-digest"))
            .and_then(|value| value.to_str().ok())
            .and_then(|value| Digest::parse(value.trim()).ok());
        match stated {
            Some(digest) => Ok(Some(digest)),
            None => Ok(Some(self.get_manifest(repository, reference)?.digest)),
        }
    }

    /// Deletes the manifest `digest` of `repository` (and so every tag pointing at it). A
    /// registry that does not allow deleting says so plainly.
    pub fn delete_manifest(&self, repository: &str, digest: &Digest) -> Result<()> {
        let url = format!("{}/v2/{repository}/manifests/{digest}", self.base);
        let scope = delete_scope(repository);
        let deleted = self.request("DELETE", &url, &scope, &[], Body::Empty, &[200, 202]);
        match deleted {
            Err(e) if e.status() == Some(405) => Err(Error::Registry(format!(
                "{e}; this registry does not allow deleting manifests (Distribution: \
                 storage.delete.enabled: true turns it on; Harbor: the project's immutability \
                 and retention rules decide)"
            ))),
            other => other.map(drop),
        }
    }

    /// Stores `manifest` as `reference` (tag or digest) of `repository`.
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &RawManifest,
    ) -> Result<()> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let headers = [("Content-Type", manifest.media_type.clone())];
        let stored = self.request(
            "PUT",
            &url,
            &push_scope(repository),
            &headers,
            Body::Bytes(&manifest.bytes),
            &[201],
        )?;
        // Only a registry with the Referrers API says which subject a manifest names.
        if stored.headers().contains_key("oci-subject") {
            self.learn_referrers_api(true);
        }
        Ok(())
    }
}

/// The media type of a manifest served as `content_type`: the one its body states, when it
/// states one; else the `Content-Type` when that names the kind (index or image) the body is;
/// else the OCI type of that kind. A `Content-Type` naming the other kind is refused: the
/// manifest would be kept as what it is not.
fn media_type_of(bytes: &[u8], parsed: &Parsed, content_type: &str) -> Result<String, String> {
    let kind = |media_type: &str| match media_type {
        media_type::OCI_INDEX | media_type::DOCKER_LIST => Some("an index"),
        media_type::OCI_MANIFEST | media_type::DOCKER_MANIFEST => Some("an image manifest"),
        _ => None,
    };
    let (is, own) = match parsed {
        Parsed::Index(_) => ("an index", media_type::OCI_INDEX),
        Parsed::Image(_) => ("an image manifest", media_type::OCI_MANIFEST),
    };
    match kind(content_type) {
        Some(served) if served != is => Err(format!(
            "served as {served} ({content_type}) but it is {is}"
        )),
        served => Ok(stated_media_type(bytes)
            .or_else(|| served.map(|_| content_type.to_string()))
            .unwrap_or_else(|| own.to_string())),
    }
}

/// The `mediaType` a manifest states about itself, if any.
fn stated_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Stated {
        media_type: Option<String>,
    }
    serde_json::from_slice::<Stated>(bytes).ok()?.media_type
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: &str = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[]}"#;

    fn served(body: &str, content_type: &str) -> Result<String, String> {
        let parsed = manifest::parse(body.as_bytes())?;
        media_type_of(body.as_bytes(), &parsed, content_type)
    }

    #[test]
    fn the_body_decides_and_the_other_kind_is_refused() {
        let stated = IMAGE.replacen(
            '{',
            r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","#,
            1,
        );
        assert_eq!(
            served(&stated, media_type::DOCKER_MANIFEST).as_deref(),
            Ok(media_type::OCI_MANIFEST)
        );
        assert_eq!(
            served(IMAGE, media_type::DOCKER_MANIFEST).as_deref(),
            Ok(media_type::DOCKER_MANIFEST)
        );
        assert_eq!(
            served(IMAGE, "text/plain").as_deref(),
            Ok(media_type::OCI_MANIFEST)
        );
        for body in [IMAGE, &stated] {
            let refused = served(body, media_type::OCI_INDEX);
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|e| e.contains("served as an index")),
                "{refused:?}"
            );
        }
    }
}
