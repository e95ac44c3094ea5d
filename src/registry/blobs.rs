//! Blobs on a registry: `HEAD` to see what is there, a streamed `GET` that can start at an
//! offset, and uploads: one request for small blobs, resumable chunks for large ones.

use std::io::{self, Read};

use super::http::{Body, Response};
use super::{Registry, url};
use crate::digest::{Digest, Hasher, Verified};
use crate::error::{Error, Result};
use crate::gzip::gzip_reader;
use crate::manifest::{Descriptor, MAX_MANIFEST_SIZE};
use crate::retry::Headway;
use crate::transfer::{self, Open};

/// `repository:<name>:pull`.
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// `repository:<name>:pull,push`.
pub fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// The token scope for deleting from `repository`.
pub fn delete_scope(repository: &str) -> String {
    format!("repository:{repository}:delete")
}

/// The content type of every upload request's body.
fn octets() -> (&'static str, String) {
    ("Content-Type", "application/octet-stream".to_string())
}

impl Registry {
    /// Whether the repository has the blob, asked before pushing it (with the push scope's
    /// token, so a push needs one token, not one for looking and one for pushing).
    pub fn has_blob(&self, repository: &str, digest: &Digest) -> Result<bool> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let response = self.request(
            "HEAD",
            &url,
            &push_scope(repository),
            &[],
            Body::Empty,
            &[200, 404],
        )?;
        Ok(response.status().as_u16() == 200)
    }

    /// A small blob (a config) of `repository` whole, checked as
    /// [`transfer::read_small_blob`] checks it: asked for again, as a request that stands
    /// alone, when its answer is cut short.
    pub fn small_blob(&self, repository: &str, blob: &Descriptor) -> Result<Vec<u8>> {
        if blob.size > MAX_MANIFEST_SIZE {
            // Refused as read_small_blob refuses it, before anything is asked for.
            return transfer::read_small_blob(io::empty(), blob);
        }
        let url = format!("{}/v2/{repository}/blobs/{}", self.base, blob.digest);
        let noun = format!("blob {}", blob.digest);
        let (_, bytes) = self.get_whole(&url, &pull_scope(repository), &[], blob.size, &noun)?;
        transfer::read_small_blob(&bytes[..], blob)
    }

    /// A stream of the blob's bytes from `offset` on, asked for with `Range` (a redirect to
    /// storage is followed without credentials). A server that ignores the range and sends
    /// the whole blob has the first `offset` bytes skipped. Asked once: the blob transfer
    /// owns the retries.
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
        let response = self.attempt(
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
    /// Tries once to upload one blob. `session` is the upload a failed try left open: its
    /// registry is asked how much it holds, and it goes on from there (a new session is
    /// opened only when the registry lost it); a try that fails leaves its session there for
    /// the next. Small blobs go in one request: a `PUT` when their digest is known (or, when
    /// compressed on the way, likely), else one streamed `PATCH` closed by `PUT ?digest=`.
    /// Blobs larger than `plan.threshold` go in `plan.chunk_size` `PATCH`es, so a failure
    /// costs at most one chunk. Every request is sent once: the caller owns the retries. Each
    /// answer that moves the upload on (a session opened, its status read, bytes taken) is
    /// counted in `headway`. Returns the digest and size the registry stored.
    pub fn upload_blob<'s>(
        &self,
        repository: &str,
        open: &mut Open<'s>,
        bytes: &Bytes,
        plan: &UploadPlan,
        session: &mut Option<UploadSession>,
        headway: &Headway,
    ) -> Result<(Digest, u64)> {
        let scope = push_scope(repository);
        let mut upload = match session.take() {
            Some(previous) => match self.upload_status(&previous.location, &scope, previous.sent) {
                Ok(Some((held, location))) if held >= previous.sent => {
                    headway.made();
                    UploadSession {
                        location,
                        held,
                        ..previous
                    }
                }
                Ok(_) => self.start_upload(repository, &scope, headway)?,
                Err(error) => {
                    *session = Some(previous);
                    return Err(error);
                }
            },
            None => self.start_upload(repository, &scope, headway)?,
        };
        let sent = self.send_upload(repository, open, bytes, plan, &mut upload, headway);
        if sent.is_err() {
            *session = Some(upload);
        }
        sent
    }

    /// Sends the blob's bytes from where `upload` stands, then closes the upload; `upload`
    /// follows what the registry acknowledged.
    fn send_upload<'s>(
        &self,
        repository: &str,
        open: &mut Open<'s>,
        bytes: &Bytes,
        plan: &UploadPlan,
        upload: &mut UploadSession,
        headway: &Headway,
    ) -> Result<(Digest, u64)> {
        let scope = &push_scope(repository);
        let mut stream = bytes.open(open, upload.sent)?;
        if upload.held > upload.sent {
            catch_up(&mut *stream, upload)?;
        }
        let small = bytes.size <= plan.threshold;
        if let Some(digest) = bytes.known().filter(|_| small && upload.sent == 0) {
            match self.put_whole(scope, &mut *stream, bytes, digest, &upload.location)? {
                Some(stored) => return Ok(stored),
                // Compressed, the bytes were not the form the memo knew (another level, or an
                // older version's): the registry dropped that upload; they go again, streamed.
                None => {
                    *upload = self.start_upload(repository, scope, headway)?;
                    stream = bytes.open(open, 0)?;
                }
            }
        }
        let chunk_size = if small { u64::MAX } else { plan.chunk_size };
        while !upload.complete {
            self.patch_chunk(scope, &mut *stream, chunk_size, upload)?;
            headway.made();
        }
        let digest = upload.hasher.clone().finish();
        let url = url::with_query(&upload.location, "digest", &digest.to_string());
        let headers = [("Content-Length", "0".to_string())];
        self.attempt("PUT", &url, scope, &headers, Body::Empty, &[201])?;
        checked(upload.hasher.clone(), bytes)
    }

    /// The monolithic upload: the whole blob, whose digest is known, in the closing `PUT`.
    /// `None` when the blob was compressed on the way and its bytes did not hash to the
    /// likely digest (the registry refuses them, whatever it says).
    fn put_whole(
        &self,
        scope: &str,
        stream: &mut dyn Read,
        bytes: &Bytes,
        digest: &Digest,
        location: &str,
    ) -> Result<Option<(Digest, u64)>> {
        let mut hasher = Hasher::default();
        let mut outgoing = Outgoing {
            inner: stream,
            hasher: &mut hasher,
            error: None,
        };
        let url = url::with_query(location, "digest", &digest.to_string());
        // The size of compressed bytes is known only once they are made: sent chunked.
        let length = ("Content-Length", bytes.size.to_string());
        let headers = match bytes.gzip {
            None => vec![octets(), length],
            Some(_) => vec![octets()],
        };
        let put = self.attempt(
            "PUT",
            &url,
            scope,
            &headers,
            Body::Stream(&mut outgoing),
            &[201],
        );
        outgoing.into_result()?;
        if bytes.gzip.is_some() && hasher.clone().finish() != *digest {
            return Ok(None);
        }
        put?;
        checked(hasher, bytes).map(Some)
    }

    /// One streamed `PATCH` of up to `chunk_size` bytes (the rest of the blob, for a small
    /// one); `upload` moves on by what the registry acknowledged, and is complete once the
    /// stream ran out within a chunk.
    fn patch_chunk(
        &self,
        scope: &str,
        stream: &mut dyn Read,
        chunk_size: u64,
        upload: &mut UploadSession,
    ) -> Result<()> {
        let mut hasher = upload.hasher.clone();
        let mut outgoing = Outgoing {
            inner: &mut stream.take(chunk_size),
            hasher: &mut hasher,
            error: None,
        };
        let patch = self.attempt(
            "PATCH",
            &upload.location,
            scope,
            &[octets()],
            Body::Stream(&mut outgoing),
            &[202],
        );
        outgoing.into_result()?;
        let response = patch?;
        upload.location = location_after(&response, &upload.location)?;
        upload.complete = hasher.len() - upload.sent < chunk_size;
        upload.sent = hasher.len();
        upload.hasher = hasher;
        Ok(())
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
            Err(error) if matches!(error.status(), Some(400 | 401 | 403 | 404)) => {
                return Ok(false);
            }
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

    /// `POST` a new upload session (a step of `headway`).
    fn start_upload(
        &self,
        repository: &str,
        scope: &str,
        headway: &Headway,
    ) -> Result<UploadSession> {
        let start = format!("{}/v2/{repository}/blobs/uploads/", self.base);
        let response = self.attempt("POST", &start, scope, &[], Body::Empty, &[202])?;
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Error::Registry(format!(
                    "POST {start}: the registry gave no upload Location"
                ))
            })?;
        headway.made();
        Ok(UploadSession {
            location: url::resolve(&start, location),
            sent: 0,
            held: 0,
            hasher: Hasher::default(),
            complete: false,
        })
    }

    /// How many bytes an upload session holds (`GET` gives `Range: 0-<last>`) and its newest
    /// `Location`, whose state matches what it holds; `None` when the registry lost it.
    /// `sent` is what it acknowledged before.
    fn upload_status(
        &self,
        location: &str,
        scope: &str,
        sent: u64,
    ) -> Result<Option<(u64, String)>> {
        let response = match self.attempt("GET", location, scope, &[], Body::Empty, &[204]) {
            Ok(response) => response,
            Err(error) if error.status() == Some(404) => return Ok(None),
            Err(error) => return Err(error),
        };
        let range = response
            .headers()
            .get("range")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("0-");
        let held = held_by_range(range, sent);
        Ok(Some((held, location_after(&response, location)?)))
    }
}

/// An upload session a failed try leaves open for the next: where it is, and what the
/// registry acknowledged of it.
pub struct UploadSession {
    /// The newest upload URL.
    location: String,
    /// Bytes acknowledged, and their hash.
    sent: u64,
    hasher: Hasher,
    /// Bytes the registry said it holds when asked (at least `sent`): those past `sent` are
    /// read past, and hashed, before more are sent.
    held: u64,
    /// Whether every byte was acknowledged (only the closing `PUT` is left).
    complete: bool,
}

/// The bytes of a blob to upload: the source's, or gzip-compressed from them on the way.
pub struct Bytes {
    /// The source's digest.
    pub digest: Digest,
    /// The source's size (an upper bound of what compression sends, for choosing chunks).
    pub size: u64,
    /// The gzip level, when compressing on the way.
    pub gzip: Option<u32>,
    /// The digest the compressed bytes had when last made (the memo's), when compressing.
    pub likely: Option<Digest>,
    /// Whether its segments may be compressed ahead on helper threads.
    pub compress_ahead: bool,
}

impl Bytes {
    /// The digest of the bytes sent, when they are the source's own (not compressed).
    fn own(&self) -> Option<&Digest> {
        self.gzip.is_none().then_some(&self.digest)
    }

    /// The digest of the bytes sent before they are made: their own, or the likely one.
    fn known(&self) -> Option<&Digest> {
        self.own().or(self.likely.as_ref())
    }

    /// The bytes from `offset` on. Compressed bytes are made again from the start (gzip is
    /// deterministic) and the first `offset` skipped; the source's bytes are checked against
    /// its digest on the way in, as the registry can only check what it receives.
    fn open<'s>(&self, open: &mut Open<'s>, offset: u64) -> Result<Box<dyn Read + Send + 's>> {
        let Some(level) = self.gzip else {
            return open(offset);
        };
        let source = Verified::new(open(0)?, &self.digest, self.size);
        let mut compressed = gzip_reader(source, level, self.compress_ahead);
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
    /// Whether a layer gzipped on the way may have its segments compressed ahead on helper
    /// threads (the run moves two to four blobs at once).
    pub compress_ahead: bool,
}

/// Reads past the bytes the registry took from a try that failed before it could say so
/// (`upload.held` in all), hashing them, so the upload goes on from there.
fn catch_up(stream: &mut dyn Read, upload: &mut UploadSession) -> Result<()> {
    let held = upload.held;
    let mut taken = Outgoing {
        inner: &mut stream.take(held - upload.sent),
        hasher: &mut upload.hasher,
        error: None,
    };
    io::copy(&mut taken, &mut io::sink()).map_err(|e| Error::from_io("re-reading the blob", e))?;
    taken.into_result()?;
    upload.sent = held;
    Ok(())
}

/// The stored digest and size, checked against what was expected.
fn checked(hasher: Hasher, bytes: &Bytes) -> Result<(Digest, u64)> {
    let size = hasher.len();
    let digest = hasher.finish();
    if let Some(expected) = bytes.own()
        && (&digest != expected || size != bytes.size)
    {
        return Err(Error::BadInput(format!(
            "the source gave {size} bytes hashing to {digest}, expected {} bytes, {expected}",
            bytes.size
        )));
    }
    Ok((digest, size))
}

/// How many bytes a `Range: 0-<last>` (or `bytes=0-<last>`) says are held: `last + 1`, the
/// range being inclusive. Distribution says `0-0` of an empty session as of one holding a
/// byte: it is taken as one byte only when one was acknowledged (`sent`).
fn held_by_range(range: &str, sent: u64) -> u64 {
    let range = range.trim().trim_start_matches("bytes=");
    match range
        .split_once('-')
        .and_then(|(_, last)| last.parse::<u64>().ok())
    {
        Some(0) => sent.min(1),
        Some(last) => last.saturating_add(1),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_holds_its_last_byte_and_an_empty_session_holds_none() {
        assert_eq!(held_by_range("0-400141", 400_142), 400_142);
        assert_eq!(held_by_range("bytes=0-99", 0), 100);
        assert_eq!(
            held_by_range("0-0", 0),
            0,
            "Distribution's answer for nothing held"
        );
        assert_eq!(held_by_range("0-0", 1), 1);
        assert_eq!(held_by_range("0-0", 500), 1);
        assert_eq!(held_by_range("0-18446744073709551615", 0), u64::MAX);
        assert_eq!(held_by_range("0-", 7), 0);
    }
}
