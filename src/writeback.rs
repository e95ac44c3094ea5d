//! Writing a file that will be synced when it is whole, without letting it fill the page
//! cache: every few megabytes the kernel is asked to start writing the window just filled, then
//! the window before it is waited for and dropped from memory. The disk works while the next
//! bytes are read and hashed, the final `fsync` waits for one window instead of the whole file,
//! and a 20 GB blob uses two windows of page cache rather than 20 GB of it.
//!
//! Without this, Linux keeps a blob's pages dirty until the sync (a 1 GB blob fits well under
//! the dirty limits of most hosts), all the write-back happens after the copy, not during it,
//! and the blob pushes other files out of memory on a small host.

use std::fs::File;
use std::io::{self, Write};

/// The bytes written between two requests to start write-back.
const WINDOW: u64 = 8 * 1024 * 1024;

/// Windows end on a multiple of this (the usual page size): a page that is still being filled
/// must not be under write-back, or the next write to it waits for the disk and the page goes
/// out twice (tar entries, for one, are read in pieces that are not whole pages).
const PAGE: u64 = 4096;

/// A file being written from a known offset, written back and dropped from the page cache
/// one [`WINDOW`] at a time.
pub struct WriteBehind<'a> {
    file: &'a File,
    /// Where the window being filled starts.
    window_start: u64,
    /// Where the bytes written so far end.
    written_end: u64,
    /// The window before, `(offset, len)`, whose write-back was started and which is still
    /// to be dropped.
    started: Option<(u64, u64)>,
}

impl<'a> WriteBehind<'a> {
    /// Writes to `file`, whose writes land at `offset` onwards (its length when opened to
    /// append, 0 when new).
    pub fn new(file: &'a File, offset: u64) -> WriteBehind<'a> {
        WriteBehind {
            file,
            window_start: offset,
            written_end: offset,
            started: None,
        }
    }
}

impl Write for WriteBehind<'_> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let mut file = self.file;
        let n = file.write(buffer)?;
        self.written_end += n as u64;
        if self.written_end - self.window_start >= WINDOW {
            let window_end = self.written_end / PAGE * PAGE;
            let window = (self.window_start, window_end - self.window_start);
            start_writeback(self.file, window);
            if let Some(previous) = self.started.replace(window) {
                drop_written(self.file, previous);
            }
            self.window_start = window_end;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Asks the kernel to start writing the `len` bytes at `offset`, without waiting. Only hints
/// here: the sync that follows is what makes the file durable, so failures are ignored.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, (offset, len): (u64, u64)) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: the descriptor is open while `file` is borrowed; the call only starts write-back.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Waits until the `len` bytes at `offset` are written back, then drops them from the page cache.
#[cfg(target_os = "linux")]
fn drop_written(file: &File, (offset, len): (u64, u64)) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    let wait = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: as above; dropping clean pages from the cache never changes the file.
    unsafe {
        if libc::sync_file_range(file.as_raw_fd(), offset, len, wait) == 0 {
            libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_DONTNEED);
        }
    }
}

/// Other systems get no hints; the final sync does all the work.
#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _window: (u64, u64)) {}

/// Other systems get no hints; the page cache is theirs to manage.
#[cfg(not(target_os = "linux"))]
fn drop_written(_file: &File, _window: (u64, u64)) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn writes_every_byte_across_windows() {
        let dir = std::env::temp_dir().join(format!("writeback-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("file");
        std::fs::write(&path, b"head").unwrap();
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let bytes: Vec<u8> = (0..(WINDOW as usize * 3 + 12345))
            .map(|i| i as u8)
            .collect();
        let mut writer = WriteBehind::new(&file, 4);
        for chunk in bytes.chunks(1 << 20) {
            writer.write_all(chunk).unwrap();
        }
        file.sync_data().unwrap();
        let mut read = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut read).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            read[..4] == *b"head" && read[4..] == bytes,
            "the file differs from what was written"
        );
    }
}
