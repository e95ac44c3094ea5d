//! Gzip with the segments of one stream deflated ahead on helper threads, as pigz does, when
//! the run asked for concurrency and the process has room: byte for byte what [`GzipReader`]
//! makes. Each segment starts from a reset compressor and is fed the same pieces with the
//! same flushes and the same output room, and whether a segment is stored depends only on the
//! segments before it, so each is compressed on its own and the results are put in order.
//! A segment whose fate is known when it is read (inside a stored run) is never compressed;
//! one read while an earlier segment's ratio is still unknown is compressed on speculation,
//! and stored after all if the rule says so.
//!
//! A segment in flight holds its input and its output, about 2 MiB: the whole process has at
//! most [`max_slots`] of them, so memory stays bounded however many streams run at once; a
//! stream that finds no slot free is compressed on its own thread, as always.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

use super::{FINAL_STORED, GzipReader, HEADER, OUTPUT, PIECE, SEGMENT, stored_after, stored_block};

/// Segments one stream keeps in flight at most.
const AHEAD: usize = 2;

/// Segments in flight in the whole process.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// The most segments in flight in the process: the cores, up to three (about 7 MiB).
fn max_slots() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(3)
    })
}

/// A reader of the gzip compression of `inner` at `level`: with `parallel` (the run moves
/// blobs concurrently) and a slot free, its segments are deflated ahead on helper threads.
pub fn gzip_reader<'a, R: Read + Send + 'a>(
    inner: R,
    level: u32,
    parallel: bool,
) -> Box<dyn Read + Send + 'a> {
    match (parallel && level > 0)
        .then(|| Slots::take(AHEAD))
        .flatten()
    {
        Some(slots) => Box::new(ParallelGzip::new(inner, level, slots)),
        None => Box::new(GzipReader::new(inner, level)),
    }
}

/// Slots taken from the process's budget, given back when dropped.
struct Slots(usize);

impl Slots {
    /// Up to `wanted` free slots, at least one; `None` when none is free.
    fn take(wanted: usize) -> Option<Slots> {
        let mut free = IN_FLIGHT.load(Ordering::Relaxed);
        loop {
            let n = wanted.min(max_slots().saturating_sub(free));
            if n == 0 {
                return None;
            }
            match IN_FLIGHT.compare_exchange(free, free + n, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Some(Slots(n)),
                Err(now) => free = now,
            }
        }
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(self.0, Ordering::AcqRel);
    }
}

/// One segment read, and its compression when it may be needed.
struct Segment {
    input: Arc<Vec<u8>>,
    /// Whether it ends the input (then shorter than a segment, maybe empty).
    last: bool,
    /// `None` when it was known to be stored when it was read.
    compressed: Option<JoinHandle<io::Result<Vec<u8>>>>,
}

/// The gzip reader with segments compressed ahead.
pub struct ParallelGzip<R> {
    inner: R,
    level: u32,
    /// Segments in flight at most (the slots held).
    ahead: usize,
    _slots: Option<Slots>,
    crc: Crc,
    /// Whether the input's end has been read.
    read_all: bool,
    pending: VecDeque<Segment>,
    stored_left: u32,
    /// Made and not yet returned: `out[taken..]`.
    out: Vec<u8>,
    taken: usize,
    started: bool,
    done: bool,
}

impl<R: Read> ParallelGzip<R> {
    fn new(inner: R, level: u32, slots: Slots) -> ParallelGzip<R> {
        let mut reader = ParallelGzip::with_ahead(inner, level, slots.0);
        reader._slots = Some(slots);
        reader
    }

    /// A reader keeping `ahead` segments in flight, with no slot of the budget (tests).
    fn with_ahead(inner: R, level: u32, ahead: usize) -> ParallelGzip<R> {
        ParallelGzip {
            inner,
            level,
            ahead: ahead.max(1),
            _slots: None,
            crc: Crc::new(),
            read_all: false,
            pending: VecDeque::new(),
            stored_left: 0,
            out: Vec::new(),
            taken: 0,
            started: false,
            done: false,
        }
    }

    /// Reads segments and starts compressing them until `ahead` are in flight or the input
    /// has ended.
    fn fill(&mut self) -> io::Result<()> {
        while self.pending.len() < self.ahead && !self.read_all {
            let mut input = vec![0; SEGMENT as usize];
            let mut filled = 0;
            while filled < input.len() {
                match self.inner.read(&mut input[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            input.truncate(filled);
            self.crc.update(&input);
            let last = filled < SEGMENT as usize;
            self.read_all = last;
            let input = Arc::new(input);
            let (shared, level) = (input.clone(), self.level);
            let compressed = (!self.surely_stored())
                .then(|| std::thread::spawn(move || compress_segment(&shared, level, last)));
            self.pending.push_back(Segment {
                input,
                last,
                compressed,
            });
        }
        Ok(())
    }

    /// Whether the segment read next is sure to be stored: every segment before it in flight
    /// is inside the stored run (none has a ratio still to learn), and the run goes past them.
    fn surely_stored(&self) -> bool {
        // Each segment in flight takes one of the run; one outside a run is compressed, and
        // what it will make is not known yet.
        self.stored_left as usize > self.pending.len()
    }

    /// Makes the next piece of output; false at the end.
    fn step(&mut self) -> io::Result<bool> {
        (self.out, self.taken) = (Vec::new(), 0);
        if !self.started {
            self.started = true;
            self.out.extend_from_slice(&HEADER);
            return Ok(true);
        }
        if self.done {
            return Ok(false);
        }
        self.fill()?;
        let Some(segment) = self.pending.pop_front() else {
            return Ok(false);
        };
        if self.stored_left > 0 {
            let pieces = segment.input.len().div_ceil(PIECE);
            self.out.reserve(segment.input.len() + 5 * pieces + 5 + 8);
            for piece in segment.input.chunks(PIECE) {
                stored_block(&mut self.out, piece);
            }
            if segment.last {
                self.out.extend_from_slice(&FINAL_STORED);
            }
            self.stored_left -= 1;
        } else {
            let compressed = match segment.compressed {
                Some(work) => {
                    (work.join()).map_err(|_| io::Error::other("a compressing thread failed"))??
                }
                None => compress_segment(&segment.input, self.level, segment.last)?,
            };
            let (read, made) = (segment.input.len() as u64, compressed.len() as u64);
            self.stored_left = stored_after(read, made, 0);
            self.out = compressed;
        }
        if segment.last {
            self.out.extend_from_slice(&self.crc.sum().to_le_bytes());
            self.out.extend_from_slice(&self.crc.amount().to_le_bytes());
            self.done = true;
        }
        Ok(true)
    }
}

impl<R: Read> Read for ParallelGzip<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        while self.taken == self.out.len() {
            if !self.step()? {
                return Ok(0);
            }
        }
        let n = buffer.len().min(self.out.len() - self.taken);
        buffer[..n].copy_from_slice(&self.out[self.taken..self.taken + n]);
        self.taken += n;
        Ok(n)
    }
}

/// The deflate bytes [`GzipReader`] makes for one segment when compressing it: a reset
/// compressor fed `input` piece by piece (a sync flush with the piece that fills the segment,
/// a finish with the last piece of the input, or after it when it ended on a piece's edge),
/// each call with [`OUTPUT`] bytes of room, as the sequential reader gives it.
fn compress_segment(input: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    let mut compressor = Compress::new(Compression::new(level), false);
    // Room for data that does not compress, stored by deflate: no growing, no doubling.
    let mut made = Vec::with_capacity(input.len() + input.len() / 64 + 1024);
    let mut room = Vec::with_capacity(OUTPUT);
    let mut call = |data: &[u8], flush: FlushCompress| -> io::Result<(usize, Status, bool)> {
        room.clear();
        let before = compressor.total_in();
        let status = (compressor.compress_vec(data, &mut room, flush)).map_err(io::Error::other)?;
        made.extend_from_slice(&room);
        let full = room.len() == room.capacity();
        Ok(((compressor.total_in() - before) as usize, status, full))
    };
    let mut fed = 0;
    for piece in input.chunks(PIECE) {
        fed += piece.len();
        let flush = match (fed == SEGMENT as usize, last && piece.len() < PIECE) {
            (true, _) => FlushCompress::Sync,
            (false, true) => FlushCompress::Finish,
            (false, false) => FlushCompress::None,
        };
        let mut consumed = 0;
        loop {
            let (n, status, full) = call(&piece[consumed..], flush)?;
            consumed += n;
            let ended = match flush {
                FlushCompress::Finish => status == Status::StreamEnd,
                FlushCompress::Sync => consumed == piece.len() && !full,
                _ => consumed == piece.len(),
            };
            if ended {
                break;
            }
            if consumed == piece.len() && flush == FlushCompress::Sync {
                // The flush did not fit: it goes on with no input, as the sequential reader
                // does once it has read past the segment.
                while call(&[], FlushCompress::Sync)?.2 {}
                break;
            }
        }
        if flush == FlushCompress::Finish {
            return Ok(made);
        }
    }
    if last {
        // The input ended on a piece's edge: the finish comes with no input.
        while call(&[], FlushCompress::Finish)?.1 != Status::StreamEnd {}
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    }

    fn text(len: usize) -> Vec<u8> {
        let line = b"2026-11-26 INFO request path=/api/v1/items status=200\n";
        line.iter().copied().cycle().take(len).collect()
    }

    fn read_all(mut reader: impl Read) -> Vec<u8> {
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn segments_compressed_ahead_give_the_sequential_bytes() {
        let segment = SEGMENT as usize;
        let mut mixed = text(3 * segment);
        mixed.extend(noise(10 * segment, 5));
        mixed.extend(text(2 * segment + 77));
        let inputs: Vec<Vec<u8>> = vec![
            Vec::new(),
            text(100),
            text(PIECE),
            text(3 * PIECE),
            text(segment),
            text(segment + 1),
            text(3 * segment),
            noise(2 * segment + PIECE, 6),
            mixed,
        ];
        for input in &inputs {
            for level in [1, 6, 9] {
                let sequential = read_all(GzipReader::new(input.as_slice(), level));
                for ahead in [1, 2, 3] {
                    let parallel =
                        read_all(ParallelGzip::with_ahead(input.as_slice(), level, ahead));
                    assert!(
                        parallel == sequential,
                        "{} bytes at level {level}, {ahead} ahead: other bytes",
                        input.len()
                    );
                }
            }
        }
    }

    #[test]
    fn the_budget_bounds_the_segments_in_flight() {
        let all: Vec<Slots> = std::iter::from_fn(|| Slots::take(AHEAD)).collect();
        let held: usize = all.iter().map(|slots| slots.0).sum();
        assert!(held <= max_slots() && !all.is_empty());
        assert!(Slots::take(1).is_none(), "none left");
        drop(all);
        assert!(Slots::take(1).is_some(), "given back");
    }
}
