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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

use super::{
    FINAL_STORED, GzipReader, HEADER, OUTPUT, PIECE, SEGMENT, read_up_to, stored_after,
    stored_block,
};

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

/// Whether a run of `workers` blobs at once gains by compressing segments ahead: it has two
/// to four workers (threads were asked for; more keep the cores busy themselves, and the
/// segments' memory adds to theirs) and at least two cores beyond them (one for the helpers,
/// one for the rest: on two cores, with the registry on the same host, a push of the bench
/// image was 7 % slower with them, a 200 MB text layer 1.6 times faster).
pub fn compress_ahead_pays(workers: u32) -> bool {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (2..=4).contains(&workers) && cores >= workers as usize + 2
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

/// One segment read: known to be stored, or being compressed on a helper thread.
enum Pending {
    Stored(SegmentWork, bool),
    Compressing(JoinHandle<io::Result<SegmentWork>>, bool),
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
    pending: VecDeque<Pending>,
    stored_left: u32,
    /// The segment whose bytes are being returned: `serving.made[taken..]`.
    serving: Option<SegmentWork>,
    /// Or the header or trailer: `edge[taken..]`.
    edge: Vec<u8>,
    taken: usize,
    started: bool,
    /// Whether the last segment was made (only the trailer is left).
    ended: bool,
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
            serving: None,
            edge: Vec::new(),
            taken: 0,
            started: false,
            ended: false,
            done: false,
        }
    }

    /// Reads segments and starts compressing them until `ahead` are in flight or the input
    /// has ended.
    fn fill(&mut self) -> io::Result<()> {
        while self.pending.len() < self.ahead && !self.read_all {
            let mut work = SegmentWork::take(self.level);
            work.input.resize(SEGMENT as usize, 0);
            let (filled, _) = read_up_to(&mut self.inner, &mut work.input)?;
            work.input.truncate(filled);
            self.crc.update(&work.input);
            let last = filled < SEGMENT as usize;
            self.read_all = last;
            let pending = match self.surely_stored() {
                true => Pending::Stored(work, last),
                false => Pending::Compressing(
                    std::thread::spawn(move || work.compress(last).map(|()| work)),
                    last,
                ),
            };
            self.pending.push_back(pending);
        }
        Ok(())
    }

    /// Whether the segment read next is sure to be stored: every segment before it in flight
    /// is inside the stored run (none has a ratio still to learn), and the run goes past them.
    fn surely_stored(&self) -> bool {
        self.stored_left as usize > self.pending.len()
    }

    /// Makes the next bytes to return; false at the end.
    fn step(&mut self) -> io::Result<bool> {
        self.taken = 0;
        self.edge.clear();
        if let Some(work) = self.serving.take() {
            work.give_back();
        }
        if !self.started {
            self.started = true;
            self.edge.extend_from_slice(&HEADER);
            return Ok(true);
        }
        if self.done {
            return Ok(false);
        }
        if self.ended {
            self.edge.extend_from_slice(&self.crc.sum().to_le_bytes());
            self.edge
                .extend_from_slice(&self.crc.amount().to_le_bytes());
            self.done = true;
            return Ok(true);
        }
        self.fill()?;
        let (mut work, last, compressed) = match self.pending.pop_front() {
            None => return Ok(false),
            Some(Pending::Stored(work, last)) => (work, last, false),
            Some(Pending::Compressing(thread, last)) => {
                let work = (thread.join())
                    .map_err(|_| io::Error::other("a compressing thread failed"))??;
                (work, last, true)
            }
        };
        if self.stored_left > 0 {
            work.made.clear();
            for piece in work.input.chunks(PIECE) {
                stored_block(&mut work.made, piece);
            }
            if last {
                work.made.extend_from_slice(&FINAL_STORED);
            }
            self.stored_left -= 1;
        } else {
            if !compressed {
                work.compress(last)?;
            }
            let (read, made) = (work.input.len() as u64, work.made.len() as u64);
            self.stored_left = stored_after(read, made, 0);
        }
        self.ended = last;
        self.serving = Some(work);
        Ok(true)
    }
}

impl<R: Read> Read for ParallelGzip<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        loop {
            let ready = match &self.serving {
                Some(work) => &work.made[..],
                None => &self.edge[..],
            };
            if self.taken < ready.len() {
                let n = buffer.len().min(ready.len() - self.taken);
                buffer[..n].copy_from_slice(&ready[self.taken..self.taken + n]);
                self.taken += n;
                return Ok(n);
            }
            if !self.step()? {
                return Ok(0);
            }
        }
    }
}

impl<R> Drop for ParallelGzip<R> {
    fn drop(&mut self) {
        let pending = self.pending.drain(..).filter_map(|pending| match pending {
            Pending::Stored(work, _) => Some(work),
            Pending::Compressing(thread, _) => thread.join().ok().and_then(Result::ok),
        });
        for work in pending.chain(self.serving.take()) {
            work.give_back();
        }
    }
}

/// The buffers and compressor one segment in flight uses. Made once per slot of the process's
/// budget and kept for the next segment, whichever stream it is for: glibc keeps what each
/// thread frees in an arena of its own, so buffers made and freed per segment would grow the
/// process well past its bound.
struct SegmentWork {
    level: u32,
    compressor: Compress,
    /// The segment's input.
    input: Vec<u8>,
    /// Room for each call's output, as the sequential reader gives it.
    room: Vec<u8>,
    /// The segment's bytes, compressed or stored (room for data that does not compress).
    made: Vec<u8>,
}

/// The segment workspaces not in use.
static SPARE_WORK: Mutex<Vec<SegmentWork>> = Mutex::new(Vec::new());

impl SegmentWork {
    /// A spare workspace (its compressor reset for `level`), or a new one.
    fn take(level: u32) -> SegmentWork {
        let spare = SPARE_WORK.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match spare {
            Some(mut work) => {
                if work.level != level {
                    (work.level, work.compressor) =
                        (level, Compress::new(Compression::new(level), false));
                }
                work
            }
            None => {
                let segment = SEGMENT as usize;
                SegmentWork {
                    level,
                    compressor: Compress::new(Compression::new(level), false),
                    input: Vec::with_capacity(segment),
                    room: Vec::with_capacity(OUTPUT),
                    made: Vec::with_capacity(segment + segment / 64 + 1024),
                }
            }
        }
    }

    /// Keeps the workspace for the next segment.
    fn give_back(self) {
        SPARE_WORK
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self);
    }

    /// One call of the compressor on `input[from..to]` with `flush`, with [`OUTPUT`] bytes of
    /// room, as the sequential reader makes it: the bytes it took, its status, and whether the
    /// room was filled.
    fn call(
        &mut self,
        (from, to): (usize, usize),
        flush: FlushCompress,
    ) -> io::Result<(usize, Status, bool)> {
        self.room.clear();
        let before = self.compressor.total_in();
        let status = (self.compressor)
            .compress_vec(&self.input[from..to], &mut self.room, flush)
            .map_err(io::Error::other)?;
        self.made.extend_from_slice(&self.room);
        let full = self.room.len() == self.room.capacity();
        Ok(((self.compressor.total_in() - before) as usize, status, full))
    }

    /// Makes in `made` the deflate bytes [`GzipReader`] makes for the segment in `input` when
    /// compressing it: a reset compressor fed it piece by piece (a sync flush with the piece
    /// that fills the segment, a finish with the last piece of the input, or after it when it
    /// ended on a piece's edge), each call with [`OUTPUT`] bytes of room.
    fn compress(&mut self, last: bool) -> io::Result<()> {
        self.compressor.reset();
        self.made.clear();
        let len = self.input.len();
        let mut start = 0;
        while start < len {
            let end = (start + PIECE).min(len);
            let flush = match (end == SEGMENT as usize, last && end - start < PIECE) {
                (true, _) => FlushCompress::Sync,
                (false, true) => FlushCompress::Finish,
                (false, false) => FlushCompress::None,
            };
            let mut at = start;
            loop {
                let (n, status, full) = self.call((at, end), flush)?;
                at += n;
                let ended = match flush {
                    FlushCompress::Finish => status == Status::StreamEnd,
                    FlushCompress::Sync => at == end && !full,
                    _ => at == end,
                };
                if ended {
                    break;
                }
                if at == end && flush == FlushCompress::Sync {
                    // The flush did not fit: it goes on with no input, as the sequential
                    // reader does once it has read past the segment.
                    while self.call((end, end), FlushCompress::Sync)?.2 {}
                    break;
                }
            }
            if flush == FlushCompress::Finish {
                return Ok(());
            }
            start = end;
        }
        if last {
            // The input ended on a piece's edge: the finish comes with no input.
            while self.call((len, len), FlushCompress::Finish)?.1 != Status::StreamEnd {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gzip::tests::{noise, text};

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
