//! Archives split into numbered parts (`--split SIZE` of `save` and `bundle`), for media that
//! cap the size of a file (FAT32: 4 GiB − 1 byte) or of a disc. `FILE.000`, `FILE.001`, …
//! concatenate to the archive; they are written in one pass, each hashed on the way, and
//! read back as one seekable stream, so nothing ever needs the space to join them.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::create;
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, Result};

/// At most this many parts (three digits): a larger `--split` is asked for past it.
const MAX_PARTS: usize = 1000;
/// FAT32's limit on a file: `--split 4G` means parts that fit it.
const FAT32_MAX: u64 = (4 << 30) - 1;

/// The name of part `index` of `base` (`images.tar.000`).
pub fn part_name(base: &str, index: usize) -> String {
    format!("{base}.{index:03}")
}

/// The largest part `--split SIZE` allows: SIZE, but 4 GiB means the 4 GiB − 1 byte that
/// FAT32 holds, which is what a user asking for 4G wants.
pub fn part_limit(size: u64) -> u64 {
    match size {
        size if size == 4 << 30 => FAT32_MAX,
        size => size.max(1),
    }
}

/// One part written.
pub struct Part {
    /// Its file name (no folder).
    pub name: String,
    pub digest: Digest,
}

/// Writes one stream as numbered parts of at most `limit` bytes each in `dir`, named
/// `BASE.NNN` followed by `suffix` (`.partial` while they are not whole yet).
pub struct PartsWriter {
    dir: PathBuf,
    base: String,
    suffix: String,
    limit: u64,
    current: Option<(HashingWriter<File>, u64)>,
    done: Vec<Part>,
}

impl PartsWriter {
    /// A writer of the parts of `base` in `dir`.
    pub fn new(dir: &Path, base: &str, suffix: &str, limit: u64) -> PartsWriter {
        PartsWriter {
            dir: dir.to_path_buf(),
            base: base.to_string(),
            suffix: suffix.to_string(),
            limit: limit.max(1),
            current: None,
            done: Vec::new(),
        }
    }

    /// The path of part `index` as it is being written.
    fn path(&self, index: usize) -> PathBuf {
        self.dir
            .join(format!("{}{}", part_name(&self.base, index), self.suffix))
    }

    /// Ends the part being written: synced, hashed, recorded.
    fn close(&mut self) -> io::Result<()> {
        if let Some((writer, _)) = self.current.take() {
            let (digest, file) = writer.finish();
            file.sync_all()?;
            let name = part_name(&self.base, self.done.len());
            self.done.push(Part { name, digest });
        }
        Ok(())
    }

    /// Ends the last part; returns every part, in order (one, empty, for an empty stream).
    pub fn finish(mut self) -> Result<Vec<Part>> {
        if self.current.is_none() && self.done.is_empty() {
            self.open_next().map_err(|e| self.error(e))?;
        }
        self.close().map_err(|e| self.error(e))?;
        Ok(self.done)
    }

    fn open_next(&mut self) -> io::Result<()> {
        let index = self.done.len();
        if index >= MAX_PARTS {
            return Err(io::Error::other(format!(
                "more than {MAX_PARTS} parts; give a larger --split"
            )));
        }
        let path = self.path(index);
        // Whatever a failed run left there (a link, say) is replaced, never written through.
        let _ = fs::remove_file(&path);
        let file = create::new_file(&path, create::ORDINARY_FILE)?;
        self.current = Some((HashingWriter::new(file), 0));
        Ok(())
    }

    fn error(&self, e: io::Error) -> Error {
        Error::io(
            format!("writing {}", self.path(self.done.len()).display()),
            e,
        )
    }
}

impl Write for PartsWriter {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        if buffer.is_empty() {
            return Ok(0);
        }
        if self
            .current
            .as_ref()
            .is_some_and(|(_, size)| *size >= self.limit)
        {
            self.close()?;
        }
        if self.current.is_none() {
            self.open_next()?;
        }
        let limit = self.limit;
        let Some((writer, size)) = self.current.as_mut() else {
            return Err(io::Error::other("no part open"));
        };
        let room = (limit - *size).min(buffer.len() as u64) as usize;
        let written = writer.write(&buffer[..room])?;
        *size += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.current.as_mut() {
            Some((writer, _)) => writer.flush(),
            None => Ok(()),
        }
    }
}

/// The parts of a split archive, found on disk.
#[derive(Clone, Debug)]
pub struct Parts {
    paths: Vec<PathBuf>,
    sizes: Vec<u64>,
}

impl Parts {
    /// The parts of `path` (`path.000`, `path.001`, … up to the first missing number), when
    /// `path` itself is not there and `path.000` is.
    pub fn find(path: &Path) -> Option<Parts> {
        if path.exists() {
            return None;
        }
        let base = path.file_name()?.to_string_lossy().into_owned();
        let dir = path.parent().unwrap_or(Path::new(""));
        let mut parts = Parts {
            paths: Vec::new(),
            sizes: Vec::new(),
        };
        for index in 0..MAX_PARTS {
            let part = dir.join(part_name(&base, index));
            let Ok(metadata) = fs::metadata(&part) else {
                break;
            };
            if !metadata.is_file() {
                break;
            }
            parts.paths.push(part);
            parts.sizes.push(metadata.len());
        }
        (!parts.paths.is_empty()).then_some(parts)
    }

    /// The whole stream, from its start.
    pub fn open(&self) -> PartsReader {
        PartsReader {
            parts: self.clone(),
            position: 0,
            current: None,
        }
    }
}

/// The parts of a split archive read as one seekable stream.
pub struct PartsReader {
    parts: Parts,
    position: u64,
    /// The part open now and where in the whole stream it starts.
    current: Option<(usize, File)>,
}

impl PartsReader {
    fn total(&self) -> u64 {
        self.parts.sizes.iter().sum()
    }

    /// The part holding byte `position` of the whole, and the offset in it.
    fn locate(&self, position: u64) -> Option<(usize, u64)> {
        let mut start = 0;
        for (index, size) in self.parts.sizes.iter().enumerate() {
            if position < start + size {
                return Some((index, position - start));
            }
            start += size;
        }
        None
    }
}

impl Read for PartsReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let Some((index, offset)) = self.locate(self.position) else {
            return Ok(0);
        };
        if self.current.as_ref().is_none_or(|(open, _)| *open != index) {
            let mut file = File::open(&self.parts.paths[index])?;
            file.seek(SeekFrom::Start(offset))?;
            self.current = Some((index, file));
        }
        let room = (self.parts.sizes[index] - offset).min(buffer.len() as u64) as usize;
        let Some((_, file)) = self.current.as_mut() else {
            return Ok(0);
        };
        let n = file.read(&mut buffer[..room])?;
        if n == 0 && room > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} is shorter than when it was found",
                    self.parts.paths[index].display()
                ),
            ));
        }
        self.position += n as u64;
        Ok(n)
    }
}

impl Seek for PartsReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(delta) => self.total().checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        if let Some((index, offset)) = self.locate(target)
            && let Some((open, file)) = self.current.as_mut()
            && *open == index
        {
            file.seek(SeekFrom::Start(offset))?;
        } else {
            self.current = None;
        }
        self.position = target;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch;

    #[test]
    fn parts_hold_the_stream_within_the_limit_and_read_back_whole() {
        let dir = scratch::dir("parts-roundtrip");
        let data: Vec<u8> = (0..10_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut writer = PartsWriter::new(&dir, "images.tar", "", 4096);
        for chunk in data.chunks(1000) {
            writer.write_all(chunk).unwrap();
        }
        let parts = writer.finish().unwrap();
        assert_eq!(parts.len(), 10);
        let size = |name: &str| fs::metadata(dir.join(name)).unwrap().len();
        assert!(parts.iter().all(|p| size(&p.name) <= 4096));
        assert_eq!(parts[3].name, "images.tar.003");
        let first = fs::read(dir.join("images.tar.000")).unwrap();
        assert_eq!(parts[0].digest, Digest::of(&first));

        let found = Parts::find(&dir.join("images.tar")).unwrap();
        assert_eq!(found.paths.len(), 10);
        let mut whole = Vec::new();
        found.open().read_to_end(&mut whole).unwrap();
        assert_eq!(whole, data);
        let mut reader = found.open();
        reader.seek(SeekFrom::Start(4090)).unwrap();
        let mut across = [0u8; 20];
        reader.read_exact(&mut across).unwrap();
        assert_eq!(
            &across[..],
            &data[4090..4110],
            "a read crosses into the next part"
        );
        reader.seek(SeekFrom::End(-4)).unwrap();
        let mut last = Vec::new();
        reader.read_to_end(&mut last).unwrap();
        assert_eq!(last, &data[data.len() - 4..]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_whole_file_is_not_taken_for_parts_and_4g_fits_fat32() {
        let dir = scratch::dir("parts-whole");
        fs::write(dir.join("app.tar"), b"x").unwrap();
        fs::write(dir.join("app.tar.000"), b"y").unwrap();
        assert!(Parts::find(&dir.join("app.tar")).is_none());
        assert!(Parts::find(&dir.join("other.tar")).is_none());
        assert_eq!(part_limit(4 << 30), (4 << 30) - 1);
        assert_eq!(part_limit(700 << 20), 700 << 20);
        fs::remove_dir_all(&dir).unwrap();
    }
}
