//! Content digests (`sha256:<hex>`), and streaming a reader into a file named by its digest
//! while hashing it, so no blob is ever hashed in a second pass.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::create::{self, SHAREABLE_FILE};
use crate::error::{Error, Result};
use crate::inert::inert;
use crate::writeback::WriteBehind;

/// Bytes moved per read and write when streaming a blob.
pub const COPY_BUFFER: usize = 256 * 1024;

/// A sha256 content digest, written `sha256:<64 lowercase hex>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`; other algorithms are refused by name.
    pub fn parse(text: &str) -> Result<Digest, String> {
        let Some((algorithm, hex)) = text.split_once(':') else {
            return Err(format!(
                "invalid digest \"{}\": expected sha256:<64 hex digits>",
                inert(text)
            ));
        };
        if algorithm != "sha256" {
            return Err(format!(
                "invalid digest \"{}\": unsupported algorithm (only sha256)",
                inert(text)
            ));
        }
        Digest::from_hex(hex).ok_or_else(|| {
            format!(
                "invalid digest \"{}\": expected 64 lowercase hex digits after sha256:",
                inert(text)
            )
        })
    }

    /// A digest from its 64 lowercase hex digits, if they are that.
    pub fn from_hex(hex: &str) -> Option<Digest> {
        let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| Digest {
            hex: hex.to_string(),
        })
    }

    /// The sha256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        let mut hasher = Hasher::default();
        hasher.update(bytes);
        hasher.finish()
    }

    /// The 64 hex digits, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Where an OCI layout (and the cache, which is one) keeps this blob: `blobs/sha256/<hex>`.
    pub fn layout_path(&self) -> String {
        format!("blobs/sha256/{}", self.hex)
    }

    /// The first 12 hex digits, as shown to people.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A running sha256 and byte count; cloned to keep a resumable point.
#[derive(Clone, Default)]
pub struct Hasher {
    sha: Sha256,
    len: u64,
}

impl Hasher {
    /// Adds `bytes` to the digest.
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// The number of bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The digest of everything hashed.
    pub fn finish(self) -> Digest {
        let bytes = self.sha.finalize();
        let mut hex = String::with_capacity(64);
        for byte in bytes {
            hex.push_str(&format!("{byte:02x}"));
        }
        Digest { hex }
    }
}

/// What [`write_addressed`] stored: the file is `<dir>/<digest hex>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addressed {
    pub digest: Digest,
    pub size: u64,
}

/// Streams `source` into `<dir>/<hex of its sha256>`, hashing on the way, through a temporary
/// file that is synced before it is renamed, so the name always matches the content.
///
/// A read error is returned as the reader reported it (an [`Error`] carried in an `io::Error`
/// keeps its exit code); a write error names the file.
pub fn write_addressed(dir: &Path, source: &mut dyn Read) -> Result<Addressed> {
    write_addressed_as(dir, source, SHAREABLE_FILE)
}

/// [`write_addressed`], the file created with `mode` (a layout folder's blobs are ordinary
/// files, where the cache's are shareable ones).
pub fn write_addressed_as(dir: &Path, source: &mut dyn Read, mode: u32) -> Result<Addressed> {
    let (file, partial) = create::new_temporary(dir, "partial", mode)
        .map_err(|e| Error::io(format!("creating a file in {}", dir.display()), e))?;
    let result = copy_into(file, &partial, source).and_then(|(digest, size)| {
        let target = dir.join(digest.hex());
        fs::rename(&partial, &target)
            .map_err(|e| Error::io(format!("renaming {}", partial.display()), e))?;
        Ok(Addressed { digest, size })
    });
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result
}

/// Copies `source` into the new `file` at `path`, syncs it, and returns its digest and size.
fn copy_into(file: File, path: &Path, source: &mut dyn Read) -> Result<(Digest, u64)> {
    let write_error = |e| Error::io(format!("writing {}", path.display()), e);
    let mut hasher = Hasher::default();
    append_hashed(source, &mut WriteBehind::new(&file, 0), path, &mut hasher)?;
    file.sync_all().map_err(write_error)?;
    let size = hasher.len();
    Ok((hasher.finish(), size))
}

/// Streams `source` to the end of `file` (named `path` in errors), adding every byte to
/// `hasher` as it is written, so the hash always covers exactly what the file received.
pub fn append_hashed(
    source: &mut dyn Read,
    file: &mut dyn Write,
    path: &Path,
    hasher: &mut Hasher,
) -> Result<()> {
    let mut buffer = vec![0; COPY_BUFFER];
    loop {
        let n = match source.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::from_io("reading", e)),
        };
        file.write_all(&buffer[..n])
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        hasher.update(&buffer[..n]);
    }
}

/// Reads exactly `size` bytes of a blob and fails at their end unless they hash to the
/// blob's digest, so a blob that changed after it was stored never goes out as if whole. The
/// failure is a bad-input [`Error`] carried in the `io::Error` ([`Error::from_io`] gets it
/// back), so it exits 3 wherever the reader is used.
pub struct Verified<R> {
    inner: io::Take<R>,
    hasher: Hasher,
    digest: Digest,
    size: u64,
}

impl<R: Read> Verified<R> {
    /// The blob `digest` of `size` bytes, read from `inner`.
    pub fn new(inner: R, digest: &Digest, size: u64) -> Verified<R> {
        Verified {
            inner: inner.take(size),
            hasher: Hasher::default(),
            digest: digest.clone(),
            size,
        }
    }
}

impl<R: Read> Read for Verified<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..n]);
        if n == 0 && !buffer.is_empty() {
            if self.hasher.len() != self.size {
                let message = format!(
                    "{} ends after {} of its {} bytes",
                    self.digest,
                    self.hasher.len(),
                    self.size
                );
                return Err(Error::BadInput(message).into_io());
            }
            let found = self.hasher.clone().finish();
            if found != self.digest {
                let message = format!("the bytes of {} hash to {found}", self.digest);
                return Err(Error::BadInput(message).into_io());
            }
        }
        Ok(n)
    }
}

/// Reads at most the `size` bytes a blob's descriptor declares (from `offset` on), then asks
/// its source for one byte more: a source that has it is lying about the blob, and the read
/// fails with a bad-input [`Error`] (exit 3) instead of filling a disk with what was never
/// declared. Nothing past the declared size is ever passed on.
pub struct Bounded<R> {
    inner: R,
    remaining: u64,
    digest: Digest,
    size: u64,
}

impl<R: Read> Bounded<R> {
    /// The bytes of blob `digest` of `size` bytes, from byte `offset` on, read from `inner`.
    pub fn new(inner: R, digest: &Digest, size: u64, offset: u64) -> Bounded<R> {
        Bounded {
            inner,
            remaining: size.saturating_sub(offset),
            digest: digest.clone(),
            size,
        }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if buffer.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            let mut extra = [0u8; 1];
            return match self.inner.read(&mut extra)? {
                0 => Ok(0),
                _ => Err(Error::BadInput(format!(
                    "the source of {} sent more than the {} bytes its descriptor declares",
                    self.digest, self.size
                ))
                .into_io()),
            };
        }
        let room = buffer
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buffer[..room])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// A writer that hashes what it passes on to `inner`.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> HashingWriter<W> {
    /// Hashes what is written to `inner`.
    pub fn new(inner: W) -> HashingWriter<W> {
        HashingWriter {
            inner,
            hasher: Hasher::default(),
        }
    }

    /// The digest of everything written, and the writer.
    pub fn finish(self) -> (Digest, W) {
        (self.hasher.finish(), self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buffer)?;
        self.hasher.update(&buffer[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn hashes_the_empty_string() {
        assert_eq!(Digest::of(b"").hex(), EMPTY);
    }

    #[test]
    fn parses_and_prints_sha256() {
        let digest = Digest::parse(&format!("sha256:{EMPTY}")).unwrap();
        assert_eq!(digest.to_string(), format!("sha256:{EMPTY}"));
        assert_eq!(digest.short(), "e3b0c44298fc");
    }

    #[test]
    fn verified_reads_pass_whole_blobs_and_fail_changed_ones() {
        let read = |bytes: &[u8], size: u64| {
            let mut out = Vec::new();
            io::copy(
                &mut Verified::new(bytes, &Digest::of(b"hello"), size),
                &mut out,
            )
            .map(|_| out)
        };
        assert_eq!(read(b"hello", 5).unwrap(), b"hello");
        assert_eq!(
            read(b"hello, world", 5).unwrap(),
            b"hello",
            "reads stop at the size"
        );
        let failure = |bytes: &[u8]| Error::from_io("reading", read(bytes, 5).unwrap_err());
        let short = failure(b"hel");
        assert_eq!(short.exit_code(), 3, "{short}");
        assert!(
            short.to_string().contains("ends after 3 of its 5 bytes"),
            "{short}"
        );
        let changed = failure(b"jello");
        assert_eq!(changed.exit_code(), 3, "{changed}");
        assert!(changed.to_string().contains("hash to sha256:"), "{changed}");
    }

    #[test]
    fn refuses_bad_digests() {
        for bad in [
            "",
            EMPTY,
            "sha256:abc",
            "sha512:abc",
            &format!("sha256:{}", EMPTY.to_uppercase()),
            &format!("sha256:{EMPTY}0"),
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn write_addressed_names_the_file_by_its_content() {
        let dir = std::env::temp_dir().join(format!("dip-digest-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let stored = write_addressed(&dir, &mut &b"hello"[..]).unwrap();
        assert_eq!(stored.size, 5);
        assert_eq!(fs::read(dir.join(stored.digest.hex())).unwrap(), b"hello");
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "the partial file was left behind"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
