//! Copying one blob: skipped when the destination has it (or, for a layer it compresses, the
//! compressed form the memo knows), mounted from a sibling repository when the memo or the
//! run's ledger knows one, else streamed, with retries that resume where the last attempt
//! stopped and count the failures in a row (see [`retry::Budget`]).

use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::digest::{Bounded, Digest};
use crate::error::{Context, Error, Result};
use crate::manifest::{Descriptor, media_type};
use crate::progress::{Board, Progress, human_bytes};
use crate::reference::RepositoryName;
use crate::retry::{self, Budget, Headway};

use super::ledger::{Claim, Claimed, Ledger};
use super::{Adjustment, Destination, Options, Source};

/// The bytes of one blob copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moved {
    /// The blob's size at the source.
    pub bytes: u64,
    /// Its size as stored (compressed on the way, it differs).
    pub sent: u64,
    /// Bytes an interrupted try had moved already, not read from the source again.
    pub resumed: u64,
}

/// What copying one blob did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Done {
    /// Copied (or, in a dry run, would be).
    Copied(Moved),
    /// The destination had it.
    Present,
    /// Linked from another repository of the same registry.
    Mounted,
}

/// What copying one blob ends with: the descriptor the destination holds, what was done,
/// and how many times it was tried again.
type Copied = (Descriptor, Done, u32);

/// Copies `blob` from `source` to `destination`: skipped when there, else mounted when a
/// sibling repository holds it, else streamed.
pub fn copy(
    source: &dyn Source,
    destination: &dyn Destination,
    blob: &Descriptor,
    options: Options<'_>,
    progress: &Progress,
) -> Result<Copied> {
    let one = OneBlob {
        source,
        destination,
        blob,
        options,
        progress,
        moving: Mutex::new(None),
        resumed: AtomicU64::new(0),
        headway: Headway::default(),
    };
    let Some(wanted) = one.wanted().filter(|_| !options.force) else {
        return one.stream(None);
    };
    let here = destination.repository();
    let (claimed, holder) = match (options.ledger, &here) {
        (Some(ledger), Some(here)) => consult(ledger, here, &wanted.digest, options.dry_run),
        _ => (None, None),
    };
    // Another copy of this run put it in this very repository: there, with nothing to ask
    // (a sync of many tags over shared blobs asks for each blob once, not once a tag).
    if holder.is_some() && holder == here {
        return Ok(one.landed_here(&wanted));
    }
    // Or in a sibling repository: mounted from there.
    if let Some(holder) = holder
        && let Some(copied) = one.mount(&wanted, &holder.path)?
    {
        return Ok(copied);
    }
    let copied = match one.skip(&wanted)? {
        Some(copied) => copied,
        None => {
            let mounted = match one.mount_source(&wanted) {
                Some(from) => one.mount(&wanted, &from)?,
                None => None,
            };
            mounted.map_or_else(|| one.stream(Some(&wanted)), Ok)?
        }
    };
    if !matches!(copied.1, Done::Copied(_)) {
        one.say_kept_level(&wanted);
    }
    if copied.0.digest == wanted.digest
        && let Some(here) = here
    {
        match (claimed, options.ledger) {
            (Some(claim), _) => claim.landed(here),
            // A dry run moves nothing, but the run's later copies are told where this one
            // would have put it, so they say "would mount" where the real run would mount.
            (None, Some(ledger)) if options.dry_run => ledger.record(&wanted.digest, here),
            _ => {}
        }
    }
    Ok(copied)
}

/// What the run's ledger says of `digest` in the registry of `here`: the claim to move it, or
/// where another copy put it. A dry run claims nothing; it only looks.
fn consult<'l>(
    ledger: &'l Ledger,
    here: &RepositoryName,
    digest: &Digest,
    dry_run: bool,
) -> (Option<Claimed<'l>>, Option<RepositoryName>) {
    if dry_run {
        return (None, ledger.landed(&here.registry, digest));
    }
    match ledger.claim(&here.registry, digest) {
        Claim::Mine(claimed) => (Some(claimed), None),
        Claim::Landed(holder) => (None, Some(holder)),
    }
}

/// One blob being copied, and where from and to.
struct OneBlob<'a> {
    source: &'a dyn Source,
    destination: &'a dyn Destination,
    blob: &'a Descriptor,
    options: Options<'a>,
    progress: &'a Progress,
    /// When the source's first and (so far) last bytes passed, for the governor.
    moving: Mutex<Option<(Instant, Instant)>>,
    /// The offset the source was last opened at: bytes the try that ended did not read again
    /// (none when it started over from the first byte).
    resumed: AtomicU64,
    /// The steps that moved the transfer on: a try reopening the source further on is one.
    headway: Headway,
}

impl OneBlob<'_> {
    /// The form the destination would hold: the blob itself, or for a layer it compresses the
    /// compressed form the memo knows (`None` when there is none to look for).
    fn wanted(&self) -> Option<Descriptor> {
        let blob = self.blob;
        if !self.destination.transforms(blob) {
            return Some(blob.clone());
        }
        // The memo's form may come from an image of the other family (a Docker layer type
        // where this manifest is OCI): the type is always this layer's own family's.
        let found = self.options.memo?.compressed(&blob.digest)?;
        let media_type = media_type::gzipped(&blob.media_type)?.to_string();
        Some(Descriptor {
            media_type,
            ..found
        })
    }

    /// Says so when `wanted`, the compressed form the memo knows and the destination holds
    /// (or mounted), was made at another gzip level than this run's: that form is kept, and
    /// the level given does not apply to this layer.
    fn say_kept_level(&self, wanted: &Descriptor) {
        let (Some(memo), Some(level)) = (self.options.memo, self.options.gzip_level) else {
            return;
        };
        if wanted == self.blob {
            return;
        }
        if let Some(made) = memo
            .compressed_at(&wanted.digest)
            .filter(|&made| made != level)
        {
            self.progress.info(format_args!(
                "layer {}: the registry has its gzip form {} made at level {made} by an earlier \
                 push (the cache remembers it), so that form is kept and --compress-level \
                 {level} does not apply to it; --force-upload compresses it again",
                self.blob.digest.short(),
                wanted.digest.short()
            ));
        }
    }

    /// Says an outcome once: on the board when there is one, else as a detail line.
    fn finished(&self, outcome: &str, line: String) {
        match self.options.board {
            Some(board) => board.finished(self.blob, outcome),
            None => self.progress.detail(line),
        }
    }

    /// The blob as another copy of this run left it in the destination's repository.
    fn landed_here(&self, wanted: &Descriptor) -> Copied {
        match self.options.dry_run {
            true => (self.progress).info(format_args!(
                "would skip {} (this run puts it there)",
                wanted.digest
            )),
            false => self.finished(
                "present",
                format!("{} present (this run put it there), skipped", wanted.digest),
            ),
        }
        (wanted.clone(), Done::Present, 0)
    }

    /// Skips the blob when the destination holds `wanted`.
    fn skip(&self, wanted: &Descriptor) -> Result<Option<Copied>> {
        if !self.destination.has_blob(wanted)? {
            return Ok(None);
        }
        match self.options.dry_run {
            true => (self.progress).info(format_args!("would skip {} (present)", wanted.digest)),
            false => {
                self.remember_holders(wanted)?;
                self.finished("present", format!("{} present, skipped", wanted.digest));
            }
        }
        Ok(Some((wanted.clone(), Done::Present, 0)))
    }

    /// Mounts `wanted` from `from`, a sibling repository known to hold it, if the registry
    /// agrees.
    fn mount(&self, wanted: &Descriptor, from: &str) -> Result<Option<Copied>> {
        if self.options.dry_run {
            (self.progress).info(format_args!("would mount {} from {from}", wanted.digest));
            return Ok(Some((wanted.clone(), Done::Mounted, 0)));
        }
        if !self.destination.mount(wanted, from)? {
            return Ok(None);
        }
        self.remember_holders(wanted)?;
        self.finished("mounted", format!("{} mounted from {from}", wanted.digest));
        Ok(Some((wanted.clone(), Done::Mounted, 0)))
    }

    /// Streams the blob, trying again (resuming where the last try stopped) while it fails in
    /// a way that may pass; `likely` is the form the destination is expected to store.
    fn stream(&self, likely: Option<&Descriptor>) -> Result<Copied> {
        let (blob, options) = (self.blob, self.options);
        if options.dry_run {
            return Ok(self.would_copy());
        }
        if let Some(board) = options.board {
            board.started(blob);
        }
        let what = || {
            format!(
                "copying blob {} from {}",
                blob.digest,
                self.source.describe()
            )
        };
        let started = Instant::now();
        let mut budget = Budget::new(options.attempts);
        let stored = retry::retried(
            || {
                (self.destination).put_blob(
                    blob,
                    likely,
                    &mut |offset| self.open(offset),
                    &self.headway,
                )
            },
            |_| budget.failed(&self.headway),
            |error, said| self.say_pause(error, said, what),
        );
        let stored = match stored {
            Ok(stored) => stored,
            Err(error) => {
                if let Some(board) = options.board {
                    board.failed(blob, &error.to_string());
                }
                let spent = budget.spent().filter(|_| error.is_retryable());
                return Err(error).context(|| match spent {
                    Some(spent) => format!("{} (given up after {spent})", what()),
                    None => what(),
                });
            }
        };
        self.tell_governor(started);
        if self.destination.transforms(blob)
            && let Some(memo) = options.memo
        {
            memo.remember_compressed(&blob.digest, &stored, options.gzip_level)?;
        }
        self.remember_holders(&stored)?;
        let line = format!("{} copied ({})", stored.digest, human_bytes(stored.size));
        self.finished("copied", line);
        let moved = Moved {
            bytes: blob.size,
            sent: stored.size,
            resumed: self.resumed.load(Ordering::Relaxed),
        };
        Ok((stored, Done::Copied(moved), budget.failures()))
    }

    /// What a dry run says and counts for the blob: copied, as a real run would.
    fn would_copy(&self) -> Copied {
        let blob = self.blob;
        (self.progress).info(format_args!(
            "would copy {} ({})",
            blob.digest,
            human_bytes(blob.size)
        ));
        let moved = Moved {
            bytes: blob.size,
            sent: blob.size,
            resumed: 0,
        };
        (blob.clone(), Done::Copied(moved), 0)
    }

    /// Tells the governor (when there is one) how long the blob spent on round trips and how
    /// long on bytes, since `started`.
    fn tell_governor(&self, started: Instant) {
        let Some(governor) = self.options.governor else {
            return;
        };
        let moving = (self.moving.lock().unwrap_or_else(|e| e.into_inner()))
            .map_or(Duration::ZERO, |(first, last)| last - first);
        if let Some(adjustment) =
            governor.blob_moved(started.elapsed().saturating_sub(moving), moving)
        {
            show(self.options.board, &adjustment);
        }
    }

    /// The source's bytes of the blob from `offset`: bounded by its size, held to the rate
    /// limit, counted for the board and the governor.
    fn open(&self, offset: u64) -> Result<Box<dyn Read + Send + '_>> {
        let (blob, options) = (self.blob, self.options);
        if self.resumed.swap(offset, Ordering::Relaxed) < offset {
            self.headway.made();
        }
        let mut reader: Box<dyn Read + Send> = Box::new(Bounded::new(
            self.source.open_blob(blob, offset)?,
            &blob.digest,
            blob.size,
            offset,
        ));
        if let Some(limit) = options.limit {
            reader = limit.wrap(reader);
        }
        if options.board.is_some() || options.governor.is_some() {
            reader = Box::new(Counted {
                inner: reader,
                options,
                digest: &blob.digest,
                moving: &self.moving,
            });
        }
        Ok(reader)
    }

    /// Says that a try failed with `error`, in the retry policy's words `said`, and tells the
    /// governor.
    fn say_pause(&self, error: &Error, said: &str, what: impl Fn() -> String) {
        match self.options.board {
            Some(board) => board.retried(self.blob, &error.to_string(), said),
            None => self.progress.warn(format_args!("{}: {said}", what())),
        }
        if let Some(adjustment) =
            (self.options.governor).and_then(|g| g.trouble(&error.to_string()))
        {
            show(self.options.board, &adjustment);
        }
    }

    /// Another repository of the destination's registry known to hold `wanted`: the source's
    /// own (when the blob is the source's, as it is) or one the memo remembers.
    fn mount_source(&self, wanted: &Descriptor) -> Option<String> {
        let here = self.destination.repository()?;
        let from_source = self.source.repository().filter(|_| wanted == self.blob);
        let remembered = (self.options.memo)
            .map(|memo| memo.holders(&wanted.digest))
            .unwrap_or_default();
        (from_source.into_iter().chain(remembered))
            .find(|holder| holder.registry == here.registry && *holder != here)
            .map(|holder| holder.path)
    }

    /// Records in the memo that the source's repository holds the blob and the destination's
    /// now holds `stored` (its form there), for later mounts.
    fn remember_holders(&self, stored: &Descriptor) -> Result<()> {
        let Some(memo) = self.options.memo.filter(|_| !self.options.dry_run) else {
            return Ok(());
        };
        if let Some(repository) = self.source.repository() {
            memo.remember_holder(&self.blob.digest, &repository)?;
        }
        if let Some(repository) = self.destination.repository() {
            memo.remember_holder(&stored.digest, &repository)?;
        }
        Ok(())
    }
}

/// A source reader that tells the board and the governor how many bytes passed, and notes
/// when the first and last bytes did.
struct Counted<'a> {
    inner: Box<dyn Read + Send + 'a>,
    options: Options<'a>,
    digest: &'a Digest,
    moving: &'a Mutex<Option<(Instant, Instant)>>,
}

impl Read for Counted<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buffer)?;
        if let Some(board) = self.options.board {
            board.moved(self.digest, n as u64);
        }
        if let Some(governor) = self.options.governor {
            if n > 0 {
                let now = Instant::now();
                let mut moving = self.moving.lock().unwrap_or_else(|e| e.into_inner());
                *moving = Some((moving.map_or(now, |(first, _)| first), now));
            }
            for adjustment in [governor.watch_pushbacks(), governor.moved(n as u64)]
                .into_iter()
                .flatten()
            {
                show(self.options.board, &adjustment);
            }
        }
        Ok(n)
    }
}

/// Puts a change of the worker count on the board.
fn show(board: Option<&Board>, adjustment: &Adjustment) {
    if let Some(board) = board {
        board.adjusted(adjustment.from, adjustment.to, &adjustment.reason);
    }
}
