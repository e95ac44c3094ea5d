//! Blobs on a registry: `HEAD` to see what is there, a streamed `GET` that can start at an
//! offset, and uploads: one request for small blobs, resumable chunks for large ones.

use std::io::{self, Read};

use super::http::{Body, Response};
use super::{Registry, url};
use crate::digest::{Digest, Hasher, Verified};
use crate::error::{Error, Result};
use crate::gzip::GzipReader;
use crate::transfer::Open;

/// `repository:<name>:pull`.
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// `repository:<name>:pull,push`.
pub fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

impl Registry {
    /// Whether the repository has the blob.
    pub fn has_blob(&self, repository: &str, digest: &Digest) -> Result<bool> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let response = self.request(
            "HEAD",
            &url,
            &pull_scope(repository),
            &[],
            Body::Empty,
            &[200, 404],
        )?;
        Ok(response.status().as_u16() == 200)
    }

    /// A stream of the blob's bytes from `offset` on, asked for with `Range` (a redirect to
    /// storage is followed without credentials). A server that ignores the range and sends
    /// the whole blob has the first `offset` bytes skipped.
    pub fn open_blob(
        &self,
        repository: &str,
        digest: &Digest,
        offset: u64,
    ) -> Result<Box<dyn Read + Send>> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let headers: Vec<(&str, String)> = match offset {
            0 => Vec::new(),
            _ => vec![("Range", format!("bytes={offset}-"))],
        };
        let response = self.request(
            "GET",
            &url,
            &pull_scope(repository),
            &headers,
            Body::Empty,
            &[200, 206],
        )?;
        let partial = response.status().as_u16() == 206;
        if partial {
            let range = response
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !range.starts_with(&format!("bytes {offset}-")) {
                return Err(Error::Network(format!(
                    "GET {url}: asked for bytes {offset}- but got \"{range}\""
                )));
            }
        }
        let what = format!("downloading blob {digest}");
        let mut reader = NetworkReader {
            inner: response.into_body().into_reader(),
            what,
        };
        if !partial && offset > 0 {
            io::copy(&mut (&mut reader).take(offset), &mut io::sink()).map_err(|e| {
                Error::from_io(format!("skipping to byte {offset} of blob {digest}"), e)
            })?;
        }
        Ok(Box::new(reader))
    }
    /// Uploads one blob. Small blobs go in one request: a `PUT` when their digest is known,
    /// else (compressed on the way) one streamed `PATCH` closed by `PUT ?digest=`. Blobs
    /// larger than `plan.threshold` go in `plan.chunk_size` `PATCH`es; after a failure the
    /// upload asks the registry how much it holds and goes on from there, so a failure costs
    /// at most one chunk. Returns the digest and size the registry stored.
    pub fn upload_blob<'s>(
        &self,
        repository: &str,
        open: &mut Open<'s>,
        bytes: &Bytes,
        plan: &UploadPlan,
    ) -> Result<(Digest, u64)> {
        let scope = push_scope(repository);
        let mut location = self.start_upload(repository, &scope)?;
        let mut hasher = Hasher::default();
        let mut stream = bytes.open(open, 0)?;
        let octets = ("Content-Type", "application/octet-stream".to_string());
        if bytes.size <= plan.threshold {
            let mut outgoing = Outgoing {
                inner: &mut *stream,
                hasher: &mut hasher,
                error: None,
            };
            let sent = match bytes.known() {
                Some(digest) => {
                    let url = url::with_query(&location, "digest", &digest.to_string());
                    let headers = [octets, ("Content-Length", bytes.size.to_string())];
                    self.request(
                        "PUT",
                        &url,
                        &scope,
                        &headers,
                        Body::Stream(&mut outgoing),
                        &[201],
                    )
                    .map(|_| None)
                }
                None => (self.request(
                    "PATCH",
                    &location,
                    &scope,
                    &[octets],
                    Body::Stream(&mut outgoing),
                    &[202],
                ))
                .and_then(|response| location_after(&response, &location).map(Some)),
            };
            outgoing.into_result()?;
            if let Some(next) = sent? {
                location = next;
                self.finish_upload(&location, &scope, &hasher)?;
            }
            return checked(hasher, bytes);
        }
        let mut sent = 0;
        let mut failures = 0;
        loop {
            let before = hasher.clone();
            let mut chunk = (&mut *stream).take(plan.chunk_size);
            let mut outgoing = Outgoing {
                inner: &mut chunk,
                hasher: &mut hasher,
                error: None,
            };
            let result = self.request(
                "PATCH",
                &location,
                &scope,
                std::slice::from_ref(&octets),
                Body::Stream(&mut outgoing),
                &[202],
            );
            outgoing.into_result()?;
            match result {
                Ok(response) => {
                    location = location_after(&response, &location)?;
                    let now = hasher.len();
                    let ended = now - sent < plan.chunk_size;
                    sent = now;
                    if ended {
                        break;
                    }
                }
                Err(error)
                    if (error.is_retryable() || session_lost(&error))
                        && failures + 1 < plan.attempts =>
                {
                    failures += 1;
                    self.progress
                        .warn(format_args!("{error}; resuming the upload"));
                    hasher = before;
                    let held = match self.upload_status(&location, &scope)? {
                        Some((held, newest)) if held >= sent => {
                            location = newest;
                            held
                        }
                        _ => {
                            location = self.start_upload(repository, &scope)?;
                            hasher = Hasher::default();
                            sent = 0;
                            0
                        }
                    };
                    stream = bytes.open(open, sent)?;
                    let mut acknowledged = (&mut *stream).take(held - sent);
                    let mut nothing = Outgoing {
                        inner: &mut acknowledged,
                        hasher: &mut hasher,
                        error: None,
                    };
                    io::copy(&mut nothing, &mut io::sink())
                        .map_err(|e| Error::from_io("re-reading the blob", e))?;
                    nothing.into_result()?;
                    sent = held;
                }
                Err(error) => return Err(error),
            }
        }
        self.finish_upload(&location, &scope, &hasher)?;
        checked(hasher, bytes)
    }

    /// Asks the registry to link `digest` from repository `from` into `repository` (a
    /// cross-repository mount). `false` when it declines: it opened an ordinary upload instead
    /// (202, cancelled here), or `from` is not readable (400, 401, 403, 404).
    pub fn mount_blob(&self, repository: &str, digest: &Digest, from: &str) -> Result<bool> {
        let scope = format!("{} {}", push_scope(repository), pull_scope(from));
        let url = format!(
            "{}/v2/{repository}/blobs/uploads/?mount={}&from={}",
            self.base,
            url::encode(&digest.to_string()),
            url::encode(from)
        );
        let response = match self.request("POST", &url, &scope, &[], Body::Empty, &[201, 202]) {
            Ok(response) => response,
            Err(Error::BadInput(_) | Error::Denied(_) | Error::NotFound(_)) => return Ok(false),
            Err(error) => return Err(error),
        };
        if response.status().as_u16() == 202 {
            if let Some(location) = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
            {
                let _ = self.request(
                    "DELETE",
                    &url::resolve(&url, location),
                    &scope,
                    &[],
                    Body::Empty,
                    &[204],
                );
            }
            return Ok(false);
        }
        Ok(true)
    }

    /// `POST` a new upload session; returns its URL.
    fn start_upload(&self, repository: &str, scope: &str) -> Result<String> {
        let start = format!("{}/v2/{repository}/blobs/uploads/", self.base);
        let response = self.request("POST", &start, scope, &[], Body::Empty, &[202])?;
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Error::Registry(format!(
                    "POST {start}: the registry gave no upload Location"
                ))
            })?;
        Ok(url::resolve(&start, location))
    }

    /// How many bytes an upload session holds (`GET` gives `Range: 0-<last>`) and its newest
    /// `Location`, whose state matches what it holds; `None` when the registry lost it.
    fn upload_status(&self, location: &str, scope: &str) -> Result<Option<(u64, String)>> {
        let response = self.request("GET", location, scope, &[], Body::Empty, &[204, 404])?;
        if response.status().as_u16() == 404 {
            return Ok(None);
        }
        let range = response
            .headers()
            .get("range")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("0-");
        let held = held_by_range(range);
        Ok(Some((held, location_after(&response, location)?)))
    }
    /// `PUT ?digest=` closing an upload whose bytes were all sent.
    fn finish_upload(&self, location: &str, scope: &str, hasher: &Hasher) -> Result<()> {
        let url = url::with_query(location, "digest", &hasher.clone().finish().to_string());
        self.request(
            "PUT",
            &url,
            scope,
            &[("Content-Length", "0".to_string())],
            Body::Empty,
            &[201],
        )
        .map(|_| ())
    }
}

/// The bytes of a blob to upload: the source's, or gzip-compressed from them on the way.
pub struct Bytes {
    /// The source's digest.
    pub digest: Digest,
    /// The source's size (an upper bound of what compression sends, for choosing chunks).
    pub size: u64,
    /// The gzip level, when compressing on the way.
    pub gzip: Option<u32>,
}

impl Bytes {
    /// The digest of the bytes sent, when they are the source's own (not compressed).
    fn known(&self) -> Option<&Digest> {
        self.gzip.is_none().then_some(&self.digest)
    }

    /// The bytes from `offset` on. Compressed bytes are made again from the start (gzip is
    /// deterministic) and the first `offset` skipped; the source's bytes are checked against
    /// its digest on the way in, as the registry can only check what it receives.
    fn open<'s>(&self, open: &mut Open<'s>, offset: u64) -> Result<Box<dyn Read + Send + 's>> {
        let Some(level) = self.gzip else {
            return open(offset);
        };
        let source = Verified::new(open(0)?, &self.digest, self.size);
        let mut compressed = GzipReader::new(source, level);
        io::copy(&mut (&mut compressed).take(offset), &mut io::sink())
            .map_err(|e| Error::from_io("compressing the blob again", e))?;
        Ok(Box::new(compressed))
    }
}

/// How to upload blobs.
pub struct UploadPlan {
    /// Blobs larger than this go in chunks.
    pub threshold: u64,
    pub chunk_size: u64,
    /// Tries for a chunk that fails in a way that may pass.
    pub attempts: u32,
}

/// The stored digest and size, checked against what was expected.
fn checked(hasher: Hasher, bytes: &Bytes) -> Result<(Digest, u64)> {
    let size = hasher.len();
    let digest = hasher.finish();
    if let Some(expected) = bytes.known()
        && (&digest != expected || size != bytes.size)
    {
        return Err(Error::BadInput(format!(
            "the source gave {size} bytes hashing to {digest}, expected {} bytes, {expected}",
            bytes.size
        )));
    }
    Ok((digest, size))
}

/// Whether the registry says the upload session is gone or out of step (it is then checked,
/// and started again when it is gone).
fn session_lost(error: &Error) -> bool {
    let text = error.to_string();
    text.contains("BLOB_UPLOAD_UNKNOWN") || text.contains("BLOB_UPLOAD_INVALID")
}

/// How many bytes a `Range: 0-<last>` (or `bytes=0-<last>`) says are held.
fn held_by_range(range: &str) -> u64 {
    let range = range.trim().trim_start_matches("bytes=");
    match range
        .split_once('-')
        .and_then(|(_, last)| last.parse::<u64>().ok())
    {
        Some(last) => last + 1,
        None => 0,
    }
}

/// The newest upload URL after a `PATCH` (the old one when the registry sends none).
fn location_after(response: &Response, previous: &str) -> Result<String> {
    Ok(
        match response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
        {
            Some(location) => url::resolve(previous, location),
            None => previous.to_string(),
        },
    )
}

/// The bytes of an upload: hashed and counted as they are sent. A read error is kept, so the
/// source's own error (a bad archive: exit 3) is reported rather than the transport's.
struct Outgoing<'a> {
    inner: &'a mut dyn Read,
    hasher: &'a mut Hasher,
    error: Option<io::Error>,
}

impl Outgoing<'_> {
    /// The source's own error, if reading it failed.
    fn into_result(self) -> Result<()> {
        match self.error {
            Some(error) => Err(Error::from_io("reading the blob to upload", error)),
            None => Ok(()),
        }
    }
}

impl Read for Outgoing<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buffer) {
            Ok(n) => {
                self.hasher.update(&buffer[..n]);
                Ok(n)
            }
            Err(e) => {
                let summary = io::Error::new(e.kind(), "reading the source failed");
                self.error = Some(e);
                Err(summary)
            }
        }
    }
}
/// A blob download whose failures are network errors (retryable), not bad input.
struct NetworkReader<R> {
    inner: R,
    what: String,
}

impl<R: Read> Read for NetworkReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.inner
            .read(buffer)
            .map_err(|e| Error::Network(format!("{}: {e}", self.what)).into_io())
    }
}
