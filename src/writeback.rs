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

/// A byte range of the file, `(offset, len)`.
type Window = (u64, u64);

/// A file being written from a known offset, written back and dropped from the page cache
/// one [`WINDOW`] at a time.
pub struct WriteBehind<'a> {
    file: &'a File,
    windows: Windows,
}

impl<'a> WriteBehind<'a> {
    /// Writes to `file`, whose writes land at `offset` onwards (its length when opened to
    /// append, 0 when new).
    pub fn new(file: &'a File, offset: u64) -> WriteBehind<'a> {
        WriteBehind {
            file,
            windows: Windows::new(offset),
        }
    }
}

impl Write for WriteBehind<'_> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let mut file = self.file;
        let n = file.write(buffer)?;
        if let Some((filled, previous)) = self.windows.wrote(n as u64) {
            start_writeback(self.file, filled);
            if let Some(previous) = previous {
                drop_written(self.file, previous);
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where the windows of a file being written stand.
struct Windows {
    /// Where the window being filled starts.
    start: u64,
    /// Where the bytes written so far end.
    written_end: u64,
    /// The window before, whose write-back was started and which is still to be dropped.
    started: Option<Window>,
}

impl Windows {
    /// The windows of a file written from `offset` on.
    fn new(offset: u64) -> Windows {
        Windows {
            start: offset,
            written_end: offset,
            started: None,
        }
    }

    /// Counts `n` more bytes written. When that fills a window, returns it (to start its
    /// write-back) and the window before it (to wait for and drop).
    fn wrote(&mut self, n: u64) -> Option<(Window, Option<Window>)> {
        self.written_end += n;
        if self.written_end - self.start < WINDOW {
            return None;
        }
        let end = self.written_end / PAGE * PAGE;
        let filled = (self.start, end - self.start);
        self.start = end;
        Some((filled, self.started.replace(filled)))
    }
}

/// Makes everything written to the file system that holds the open folder `directory`
/// durable at once: one `syncfs(2)` for a batch of files written or renamed into place
/// without a sync each (the cache's staged blobs and manifests), instead of a sync or two a
/// file. It reports a write-back error of any file there since `directory` was opened (Linux
/// 5.8 on), so a folder opened before the files are written catches them all. Other systems
/// sync everything.
pub fn sync_file_system(directory: &File) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is open while `directory` lives; syncfs only flushes.
        if unsafe { libc::syncfs(directory.as_raw_fd()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = directory;
        // SAFETY: sync takes no arguments and only flushes.
        unsafe { libc::sync() };
    }
    Ok(())
}

/// Asks the kernel to start writing `window`, without waiting. Only hints here: the sync
/// that follows is what makes the file durable, so failures are ignored.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, window: Window) {
    sync_range(file, window, libc::SYNC_FILE_RANGE_WRITE);
}

/// Waits until `window` is written back, then drops it from the page cache.
#[cfg(target_os = "linux")]
fn drop_written(file: &File, window: Window) {
    let wait = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    if let Some((fd, offset, len)) = sync_range(file, window, wait) {
        // SAFETY: as in `sync_range`; dropping clean pages from the cache never changes the file.
        unsafe { libc::posix_fadvise(fd, offset, len, libc::POSIX_FADV_DONTNEED) };
    }
}

/// `sync_file_range(2)` on `window` with `flags`; on success, the arguments it took.
#[cfg(target_os = "linux")]
fn sync_range(file: &File, (offset, len): Window, flags: u32) -> Option<(i32, i64, i64)> {
    use std::os::fd::AsRawFd;
    let (fd, offset, len) = (
        file.as_raw_fd(),
        offset.try_into().ok()?,
        len.try_into().ok()?,
    );
    // SAFETY: the descriptor is open while `file` is borrowed, and the call only writes back
    // or waits for pages of that file.
    let done = unsafe { libc::sync_file_range(fd, offset, len, flags) };
    (done == 0).then_some((fd, offset, len))
}

/// Other systems get no hints; the final sync does all the work.
#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _window: Window) {}

/// Other systems get no hints; the page cache is theirs to manage.
#[cfg(not(target_os = "linux"))]
fn drop_written(_file: &File, _window: Window) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn windows_follow_each_other_on_page_boundaries() {
        // Written from an odd offset in pieces that are not whole pages, as tar entries are.
        let mut windows = Windows::new(1000);
        let mut seen: Vec<(Window, Option<Window>)> = Vec::new();
        for _ in 0..200 {
            seen.extend(windows.wrote(100_000 + 512));
        }
        assert!(seen.len() >= 2, "{seen:?}");
        assert_eq!(
            seen[0].0.0, 1000,
            "the first window starts where writing began"
        );
        assert_eq!(seen[0].1, None, "nothing to drop before the first window");
        for pair in seen.windows(2) {
            let ((offset, len), _) = pair[0];
            let (next, previous) = pair[1];
            assert_eq!((offset + len) % PAGE, 0, "{pair:?}: ends mid-page");
            assert!(len >= WINDOW - PAGE, "{pair:?}: a short window");
            assert_eq!(next.0, offset + len, "{pair:?}: a gap or an overlap");
            assert_eq!(
                previous,
                Some((offset, len)),
                "{pair:?}: drops the window before"
            );
        }
    }

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
