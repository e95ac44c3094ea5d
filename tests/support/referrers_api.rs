//! The OCI 1.1 Referrers API, for a [`Front`](super::front::Front) that stands in for a
//! registry WITH it (no such registry is packaged here; Distribution 2.8 answers 404 there).
//! Manifests PUT through the front that name a `subject` are recorded, and their PUT is
//! answered with `OCI-Subject: <digest>`; `GET /v2/<name>/referrers/<digest>` is answered with
//! an OCI index of the recorded descriptors (artifact type, annotations), filtered on
//! `?artifactType=` (saying `OCI-Filters-Applied: artifactType`) and paged with
//! `Link: <...?last=...>; rel="next"`. A hook may turn each page hostile.

use std::sync::Mutex;

use serde_json::{Value, json};

/// One page of an answer, as the hook may change it before it is sent.
pub struct Page {
    /// The descriptors listed.
    pub entries: Vec<Value>,
    /// Where the `Link` to the next page points (a path on the front, or any URL).
    pub next: Option<String>,
}

/// Called with the subject's digest and each page before it is sent.
pub type Hook = dyn Fn(&str, &mut Page) + Send + Sync;

/// The referrers recorded by a front and how it lists them.
pub struct ReferrersApi {
    page_size: usize,
    hook: Box<Hook>,
    /// (repository, subject digest, descriptor) of each manifest PUT with a subject, in order.
    recorded: Mutex<Vec<(String, String, Value)>>,
}

impl ReferrersApi {
    /// An honest API paging `page_size` referrers at a time.
    pub fn new(page_size: usize) -> ReferrersApi {
        ReferrersApi::with_hook(page_size, |_, _| {})
    }

    /// An API whose pages `hook` changes (a hostile registry).
    pub fn with_hook(
        page_size: usize,
        hook: impl Fn(&str, &mut Page) + Send + Sync + 'static,
    ) -> ReferrersApi {
        ReferrersApi {
            page_size: page_size.max(1),
            hook: Box::new(hook),
            recorded: Mutex::new(Vec::new()),
        }
    }

    /// How many manifests with a subject were PUT through the front.
    pub fn recorded(&self) -> usize {
        self.recorded.lock().unwrap().len()
    }

    /// Records the manifest `body` PUT to `path` (`/v2/<name>/manifests/<ref>`) as
    /// `content_type`, when it names a subject; returns the subject's digest.
    pub fn record(&self, path: &str, content_type: Option<&str>, body: &[u8]) -> Option<String> {
        let repository = path.strip_prefix("/v2/")?.rsplit_once("/manifests/")?.0;
        let manifest: Value = serde_json::from_slice(body).ok()?;
        let subject = manifest["subject"]["digest"].as_str()?.to_string();
        let media_type = (manifest["mediaType"].as_str())
            .or(content_type)
            .unwrap_or_default();
        let mut entry = json!({
            "mediaType": media_type,
            "digest": format!("sha256:{}", super::sha256(body)),
            "size": body.len(),
        });
        // The spec: the artifactType, else the config's media type.
        let kind = (manifest.get("artifactType")).or(manifest.pointer("/config/mediaType"));
        if let Some(kind) = kind {
            entry["artifactType"] = kind.clone();
        }
        if let Some(annotations) = manifest.get("annotations") {
            entry["annotations"] = annotations.clone();
        }
        let mut recorded = self.recorded.lock().unwrap();
        let digest = entry["digest"].clone();
        if !recorded.iter().any(|(_, _, had)| had["digest"] == digest) {
            recorded.push((repository.to_string(), subject.clone(), entry));
        }
        Some(subject)
    }

    /// The whole HTTP answer to `target`, when it is a `GET` of the Referrers API.
    pub fn answer(&self, method: &str, target: &str) -> Option<String> {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let (repository, subject) = path.strip_prefix("/v2/")?.rsplit_once("/referrers/")?;
        if method != "GET" {
            return None;
        }
        let param = |name: &str| {
            (query.split('&'))
                .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
                .map(decoded)
        };
        let (kind, last) = (param("artifactType"), param("last"));
        let mut entries: Vec<Value> = (self.recorded.lock().unwrap().iter())
            .filter(|(name, about, _)| name == repository && about == subject)
            .map(|(_, _, entry)| entry.clone())
            .filter(|entry| kind.as_ref().is_none_or(|k| entry["artifactType"] == **k))
            .collect();
        if let Some(last) = &last
            && let Some(at) = entries.iter().position(|e| e["digest"] == **last)
        {
            entries.drain(..=at);
        }
        let next = (entries.len() > self.page_size).then(|| {
            let last = entries[self.page_size - 1]["digest"].as_str().unwrap();
            let filter = (kind.as_ref()).map_or(String::new(), |k| format!("&artifactType={k}"));
            format!("{path}?last={last}{filter}")
        });
        entries.truncate(self.page_size);
        let mut page = Page { entries, next };
        (self.hook)(subject, &mut page);
        let body = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": page.entries,
        })
        .to_string();
        let mut headers = String::new();
        if let Some(next) = page.next {
            headers.push_str(&format!("Link: <{next}>; rel=\"next\"\r\n"));
        }
        if kind.is_some() {
            headers.push_str("OCI-Filters-Applied: artifactType\r\n");
        }
        Some(format!(
            "HTTP/1.1 200 OK\r\n{headers}Content-Type: application/vnd.oci.image.index.v1+json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ))
    }
}

/// A query value with its `%XX` escapes undone.
fn decoded(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| value.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
