//! Blobs on a registry: `HEAD` to see what is there, a streamed `GET`, and uploads: one `PUT`
//! when the digest is known beforehand, or one streamed `PATCH` and a closing `PUT ?digest=`
//! when the bytes are made on the way (compressed) and their digest is known only at the end.

use std::io::{self, Read};

use super::http::{Body, Response};
use super::{Registry, url};
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};

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

    /// A stream of the blob's bytes (a redirect to storage is followed without credentials).
    pub fn open_blob(&self, repository: &str, digest: &Digest) -> Result<Box<dyn Read + Send>> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let response = self.request(
            "GET",
            &url,
            &pull_scope(repository),
            &[],
            Body::Empty,
            &[200],
        )?;
        let what = format!("downloading blob {digest}");
        Ok(Box::new(NetworkReader {
            inner: response.into_body().into_reader(),
            what,
        }))
    }

    /// Uploads one blob from `data`. With `known` (digest and size) it goes in one `PUT`;
    /// without, it is streamed in one `PATCH` and its digest, computed on the way, closes the
    /// upload. Returns the digest and size the registry stored.
    pub fn upload_blob(
        &self,
        repository: &str,
        data: &mut dyn Read,
        known: Option<(&Digest, u64)>,
    ) -> Result<(Digest, u64)> {
        let scope = push_scope(repository);
        let start = format!("{}/v2/{repository}/blobs/uploads/", self.base);
        let response = self.request("POST", &start, &scope, &[], Body::Empty, &[202])?;
        let location = location(&response, &start)?;
        let mut outgoing = Outgoing {
            inner: data,
            hasher: Hasher::default(),
            error: None,
        };
        let octets = ("Content-Type", "application/octet-stream".to_string());
        let sent = match known {
            Some((digest, size)) => {
                let url = url::with_query(&location, "digest", &digest.to_string());
                let headers = [octets, ("Content-Length", size.to_string())];
                self.request(
                    "PUT",
                    &url,
                    &scope,
                    &headers,
                    Body::Stream(&mut outgoing),
                    &[201],
                )
                .map(|_| url)
            }
            None => self
                .request(
                    "PATCH",
                    &location,
                    &scope,
                    &[octets],
                    Body::Stream(&mut outgoing),
                    &[202],
                )
                .and_then(|response| location_after(&response, &location)),
        };
        if let Some(read_error) = outgoing.error.take() {
            return Err(Error::from_io("reading the blob to upload", read_error));
        }
        let size = outgoing.hasher.len();
        let digest = outgoing.hasher.finish();
        let closing = sent?;
        if let Some((expected, expected_size)) = known {
            if &digest != expected || size != expected_size {
                return Err(Error::BadInput(format!(
                    "the source gave {size} bytes hashing to {digest}, expected {expected_size} bytes, {expected}"
                )));
            }
        } else {
            let url = url::with_query(&closing, "digest", &digest.to_string());
            self.request(
                "PUT",
                &url,
                &scope,
                &[("Content-Length", "0".to_string())],
                Body::Empty,
                &[201],
            )?;
        }
        Ok((digest, size))
    }
}

/// The upload URL a `POST` answered with.
fn location(response: &Response, request_url: &str) -> Result<String> {
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            Error::Registry(format!(
                "POST {request_url}: the registry gave no upload Location"
            ))
        })?;
    Ok(url::resolve(request_url, location))
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
    hasher: Hasher,
    error: Option<io::Error>,
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
