//! Gzip compression of a stream, as a reader. The deflate stream is made of segments of
//! about 1 MiB, each compressed on its own and ended on a byte boundary (a sync flush), so a
//! segment of data that does not compress (random bytes, files compressed already) can be
//! stored instead: deflating it costs as much as deflating text and saves nothing, while
//! storing runs at memory speed. After a run of stored segments, one is compressed again to
//! see whether the data has changed. The segments make one ordinary gzip member.
//!
//! The output depends only on the input and the level: resuming an upload compresses again
//! from the start and must get the same bytes, and the cache remembers compressed digests. So
//! the compressor is always given whole pieces of [`PIECE`] bytes, whatever sizes the reads
//! return, and stored segments are written as stored blocks of one piece each. A stream holds
//! one piece of input and a little output besides its compressor, so many at once stay small.

use std::cell::RefCell;
use std::io::{self, Read};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

mod parallel;

pub use parallel::{compress_ahead_pays, gzip_reader};

/// Input in one segment.
const SEGMENT: u64 = 1024 * 1024;
/// Input given to the compressor at once, and in one stored block (at most 65 535).
const PIECE: usize = 32 * 1024;
/// Room for output made and not yet returned.
const OUTPUT: usize = 64 * 1024;
/// A segment that compresses to more than this share of its size is deemed incompressible.
const INCOMPRESSIBLE: f64 = 0.97;
/// How many segments are stored after an incompressible one before compressing again.
const STORED_RUN: u32 = 8;
/// The gzip header: deflate, no name or time, unknown OS.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// Where the stream is.
#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Header,
    Body,
    Trailer,
    Done,
}

/// What one gzip stream works with: the deflater and the buffers, a few hundred KB. glibc
/// keeps what is freed, so allocating them for every layer grew a push of 127 small layers to
/// 92 MB; each thread keeps the last one for its next stream instead.
struct Workspace {
    level: u32,
    /// Raw deflate at the level asked for; each segment starts from a reset.
    compressor: Compress,
    /// Room for one piece of input.
    input: Vec<u8>,
    /// Made and not yet returned.
    output: Vec<u8>,
}

thread_local! {
    /// The workspace of the last stream this thread finished, for the next one.
    static SPARE: RefCell<Option<Workspace>> = const { RefCell::new(None) };
}

impl Workspace {
    /// This thread's spare workspace, reset, when it is for `level`; else a new one.
    fn take(level: u32) -> Workspace {
        let spare = SPARE.with(|spare| spare.borrow_mut().take());
        match spare.filter(|spare| spare.level == level) {
            Some(mut work) => {
                work.compressor.reset();
                work.output.clear();
                work
            }
            None => Workspace {
                level,
                compressor: Compress::new(Compression::new(level), false),
                input: vec![0; PIECE],
                output: Vec::with_capacity(OUTPUT),
            },
        }
    }
}

/// A reader of the gzip compression of `inner`.
pub struct GzipReader<R> {
    inner: R,
    /// Always there until the reader is dropped, when it goes back to this thread's spare.
    work: Option<Workspace>,
    level: u32,
    /// Segments still to store before compressing again (0: compressing).
    stored_left: u32,
    /// Input taken into the current segment.
    segment_in: u64,
    crc: Crc,
    /// Read from `inner` and not yet deflated: `input[start..end]`, at most one piece.
    start: usize,
    end: usize,
    eof: bool,
    /// Made and not yet returned: `output[taken..]`.
    taken: usize,
    phase: Phase,
}

impl<R: Read> GzipReader<R> {
    /// Compresses `inner` at `level` (0 to 9).
    pub fn new(inner: R, level: u32) -> GzipReader<R> {
        GzipReader {
            inner,
            work: Some(Workspace::take(level)),
            level,
            stored_left: 0,
            segment_in: 0,
            crc: Crc::new(),
            start: 0,
            end: 0,
            eof: false,
            taken: 0,
            phase: Phase::Header,
        }
    }

    /// Makes the next piece of output (into the emptied output buffer); false at the end.
    fn step(&mut self) -> io::Result<bool> {
        let level = self.level;
        let work = self.work.get_or_insert_with(|| Workspace::take(level));
        work.output.clear();
        self.taken = 0;
        match self.phase {
            Phase::Header => {
                work.output.extend_from_slice(&HEADER);
                self.phase = Phase::Body;
            }
            Phase::Body => self.deflate()?,
            Phase::Trailer => {
                work.output.extend_from_slice(&self.crc.sum().to_le_bytes());
                work.output
                    .extend_from_slice(&self.crc.amount().to_le_bytes());
                self.phase = Phase::Done;
            }
            Phase::Done => return Ok(false),
        }
        Ok(true)
    }

    /// Deflates more input into the current segment, ending it (and choosing how the next
    /// one is made) when it is full, or ending the stream at the end of the input.
    fn deflate(&mut self) -> io::Result<()> {
        if self.start == self.end && !self.eof {
            self.refill()?;
        }
        let room = (SEGMENT - self.segment_in) as usize;
        let take = room.min(self.end - self.start);
        if self.level == 0 || self.stored_left > 0 {
            self.store(take);
            return Ok(());
        }
        let level = self.level;
        let work = self.work.get_or_insert_with(|| Workspace::take(level));
        let flush = match (take == room, self.eof) {
            (true, _) => FlushCompress::Sync,
            (false, true) => FlushCompress::Finish,
            (false, false) => FlushCompress::None,
        };
        let before = work.compressor.total_in();
        let status = (work.compressor)
            .compress_vec(
                &work.input[self.start..self.start + take],
                &mut work.output,
                flush,
            )
            .map_err(io::Error::other)?;
        let consumed = (work.compressor.total_in() - before) as usize;
        self.start += consumed;
        self.segment_in += consumed as u64;
        let output_full = work.output.len() == work.output.capacity();
        match flush {
            FlushCompress::Finish if status == Status::StreamEnd => self.phase = Phase::Trailer,
            FlushCompress::Sync if consumed == take && !output_full => {
                self.stored_left = next_segment(work, self.stored_left);
                self.segment_in = 0;
            }
            _ => {}
        }
        Ok(())
    }

    /// Writes `take` bytes of input as one stored block (the stream is on a byte boundary
    /// after every segment), and at the end of the input the final, empty one.
    fn store(&mut self, take: usize) {
        let level = self.level;
        let work = self.work.get_or_insert_with(|| Workspace::take(level));
        if take > 0 {
            stored_block(&mut work.output, &work.input[self.start..self.start + take]);
            self.start += take;
            self.segment_in += take as u64;
        }
        if self.eof && self.start == self.end {
            work.output.extend_from_slice(&FINAL_STORED);
            self.phase = Phase::Trailer;
        } else if self.segment_in == SEGMENT {
            self.stored_left = self.stored_left.saturating_sub(1);
            self.segment_in = 0;
        }
    }

    /// Reads the next piece of input into the emptied buffer: a whole one, or what is left
    /// before the end. The compressor is then always given whole pieces, so its output
    /// depends on the bytes alone, never on the sizes the reads happened to return.
    fn refill(&mut self) -> io::Result<()> {
        let level = self.level;
        let work = self.work.get_or_insert_with(|| Workspace::take(level));
        let (filled, ended) = read_up_to(&mut self.inner, &mut work.input)?;
        self.crc.update(&work.input[..filled]);
        self.eof = ended;
        (self.start, self.end) = (0, filled);
        Ok(())
    }
}

/// Reads into `buffer` until it is full or `reader` ends; returns how much was read, and
/// whether the end was met (a buffer filled exactly is not known to end the input).
fn read_up_to(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<(usize, bool)> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => return Ok((filled, true)),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((filled, false))
}

/// The compressed segment just ended: store the next ones if it did not compress; the
/// compressor starts afresh. Returns the segments left to store.
fn next_segment(work: &mut Workspace, stored_left: u32) -> u32 {
    let (read, made) = (work.compressor.total_in(), work.compressor.total_out());
    work.compressor.reset();
    stored_after(read, made, stored_left)
}

/// The segments left to store after a compressed segment of `read` bytes made `made`: a run
/// when it did not compress, else as many as before.
fn stored_after(read: u64, made: u64, stored_left: u32) -> u32 {
    match made as f64 > read as f64 * INCOMPRESSIBLE {
        true => STORED_RUN,
        false => stored_left,
    }
}

/// The last block of a stream that ends while storing: final, stored, empty.
const FINAL_STORED: [u8; 5] = [1, 0, 0, 0xff, 0xff];

/// Appends `data` (at most 65 535 bytes; the stream is on a byte boundary) as one stored,
/// not final, deflate block.
fn stored_block(out: &mut Vec<u8>, data: &[u8]) {
    let len = data.len() as u16;
    out.push(0);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
}

impl<R> Drop for GzipReader<R> {
    fn drop(&mut self) {
        if let Some(work) = self.work.take() {
            SPARE.with(|spare| *spare.borrow_mut() = Some(work));
        }
    }
}

impl<R: Read> Read for GzipReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        loop {
            let level = self.level;
            let output = &self
                .work
                .get_or_insert_with(|| Workspace::take(level))
                .output;
            if self.taken < output.len() {
                let n = buffer.len().min(output.len() - self.taken);
                buffer[..n].copy_from_slice(&output[self.taken..self.taken + n]);
                self.taken += n;
                return Ok(n);
            }
            if !self.step()? {
                return Ok(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;

    /// Bytes no compressor can shrink, from a fixed seed.
    pub(super) fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    }

    /// Log lines, which compress well.
    pub(super) fn text(len: usize) -> Vec<u8> {
        let line = b"2026-11-23 INFO request path=/api/v1/items status=200\n";
        line.iter().copied().cycle().take(len).collect()
    }

    fn gzip(data: &[u8], level: u32) -> Vec<u8> {
        let mut out = Vec::new();
        GzipReader::new(data, level).read_to_end(&mut out).unwrap();
        out
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        GzDecoder::new(data).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn round_trips_mixed_data_at_every_level() {
        let mut data = text(3 * SEGMENT as usize);
        data.extend(noise(20 * SEGMENT as usize, 1));
        data.extend(text(2 * SEGMENT as usize + 123));
        for level in [0, 1, 6, 9] {
            assert_eq!(gunzip(&gzip(&data, level)), data, "level {level}");
        }
        assert_eq!(gunzip(&gzip(b"", 6)), b"");
    }

    #[test]
    fn stores_what_does_not_compress_and_compresses_what_does() {
        let random = noise(16 * SEGMENT as usize, 2);
        let stored = gzip(&random, 6).len() as f64 / random.len() as f64;
        assert!(stored < 1.001, "random data grew by {stored}");
        let mut mixed = random.clone();
        mixed.extend(text(16 * SEGMENT as usize));
        let compressed = gzip(&mixed, 6).len();
        // At worst, one stored run of text before a segment is compressed again.
        let bound = random.len() + (STORED_RUN as usize + 1) * SEGMENT as usize;
        assert!(
            compressed < bound,
            "text after noise compresses again: {compressed}"
        );
    }

    /// A reader that returns `data` in pieces of sizes from `sizes`, in turn (a network
    /// stream returns odd sizes).
    struct Pieces<'a> {
        data: &'a [u8],
        sizes: std::iter::Cycle<std::vec::IntoIter<usize>>,
    }

    impl Read for Pieces<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            let n = self
                .sizes
                .next()
                .unwrap_or(1)
                .min(buffer.len())
                .min(self.data.len());
            buffer[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn the_bytes_do_not_depend_on_the_sizes_reads_return() {
        let mut data = text(3 * SEGMENT as usize);
        data.extend(noise(12 * SEGMENT as usize, 4));
        data.extend(text(2 * SEGMENT as usize + 77));
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let random_sizes: Vec<usize> = (0..997)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                1 + (seed % 200_000) as usize
            })
            .collect();
        for level in [1, 2, 6] {
            let whole = gzip(&data, level);
            for sizes in [
                vec![SEGMENT as usize],
                vec![1, 4095, 65_537],
                random_sizes.clone(),
            ] {
                let mut out = Vec::new();
                let pieces = Pieces {
                    data: &data,
                    sizes: sizes.into_iter().cycle(),
                };
                GzipReader::new(pieces, level)
                    .read_to_end(&mut out)
                    .unwrap();
                assert!(
                    out == whole,
                    "level {level}: other bytes for other read sizes"
                );
            }
        }
    }

    #[test]
    fn the_same_input_gives_the_same_bytes() {
        let mut data = noise(10 * SEGMENT as usize, 3);
        data.extend(text(SEGMENT as usize));
        assert_eq!(gzip(&data, 6), gzip(&data, 6));
    }
}
