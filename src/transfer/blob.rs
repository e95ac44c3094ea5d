//! Copying one blob: skipped when the destination has it (or, for a layer it compresses, the
//! compressed form the memo knows), mounted from a sibling repository when the memo knows one,
//! else streamed, with retries that resume where the last attempt stopped.

use std::io::{self, Read};

use crate::digest::{Bounded, Digest};
use crate::error::{Context, Result};
use crate::manifest::{Descriptor, media_type};
use crate::progress::{Board, Progress, human_bytes};
use crate::retry;

use super::{Adjustment, Destination, Options, Source};

/// What copying one blob did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Done {
    /// Sent (or, in a dry run, would be), this many bytes read from the source.
    Copied(u64),
    /// The destination had it.
    Present,
    /// Linked from another repository of the same registry.
    Mounted,
}

/// Copies `blob` from `source` to `destination`; returns the descriptor the destination holds,
/// what was done, and how many times it was tried again.
pub fn copy(
    source: &dyn Source,
    destination: &dyn Destination,
    blob: &Descriptor,
    options: Options<'_>,
    progress: &Progress,
) -> Result<(Descriptor, Done, u32)> {
    // Each outcome is said once: on the board when there is one, else as a detail line.
    let finished = |outcome: &str, line: String| match options.board {
        Some(board) => board.finished(blob, outcome),
        None => progress.detail(line),
    };
    let transforms = destination.transforms(blob);
    let wanted = match (transforms, options.memo) {
        (false, _) => Some(blob.clone()),
        // The memo's form may come from an image of the other family (a Docker layer type
        // where this manifest is OCI): the type is always this layer's own family's.
        (true, Some(memo)) => memo.compressed(&blob.digest).and_then(|found| {
            let media_type = media_type::gzipped(&blob.media_type)?.to_string();
            Some(Descriptor {
                media_type,
                ..found
            })
        }),
        (true, None) => None,
    };
    if !options.force
        && let Some(wanted) = wanted
    {
        if destination.has_blob(&wanted)? {
            match options.dry_run {
                true => progress.info(format_args!("would skip {} (present)", wanted.digest)),
                false => {
                    remember_holders(source, destination, blob, &wanted, options)?;
                    finished("present", format!("{} present, skipped", wanted.digest));
                }
            }
            return Ok((wanted, Done::Present, 0));
        }
        if let Some(from) = mount_source(source, destination, &wanted, blob, options) {
            if options.dry_run {
                progress.info(format_args!("would mount {} from {from}", wanted.digest));
                return Ok((wanted, Done::Mounted, 0));
            }
            if destination.mount(&wanted, &from)? {
                remember_holders(source, destination, blob, &wanted, options)?;
                finished("mounted", format!("{} mounted from {from}", wanted.digest));
                return Ok((wanted, Done::Mounted, 0));
            }
        }
    }
    if options.dry_run {
        progress.info(format_args!(
            "would copy {} ({})",
            blob.digest,
            human_bytes(blob.size)
        ));
        return Ok((blob.clone(), Done::Copied(blob.size), 0));
    }
    if let Some(board) = options.board {
        board.started(blob);
    }
    let what = || format!("copying blob {} from {}", blob.digest, source.describe());
    let mut attempt = 1;
    let stored = loop {
        let mut open = |offset| {
            let mut reader: Box<dyn Read + Send> = Box::new(Bounded::new(
                source.open_blob(blob, offset)?,
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
                    source,
                    destination,
                });
            }
            Ok(reader)
        };
        match destination.put_blob(blob, &mut open) {
            Ok(stored) => break stored,
            Err(error) if error.is_retryable() && attempt < options.attempts => {
                let (pause, why) = retry::pause(attempt, &error);
                let said = format!("{error}; trying again in {:.1}s{why}", pause.as_secs_f64());
                match options.board {
                    Some(board) => board.retried(blob, &said),
                    None => progress.warn(format_args!("{}: {said}", what())),
                }
                if let Some(adjustment) =
                    options.governor.and_then(|g| g.trouble(&error.to_string()))
                {
                    show(options.board, &adjustment);
                }
                std::thread::sleep(pause);
                attempt += 1;
            }
            Err(error) => {
                if let Some(board) = options.board {
                    board.failed(blob, &error.to_string());
                }
                return Err(error).context(what);
            }
        }
    };
    if transforms && let Some(memo) = options.memo {
        memo.remember_compressed(&blob.digest, &stored)?;
    }
    remember_holders(source, destination, blob, &stored, options)?;
    let line = format!("{} copied ({})", stored.digest, human_bytes(stored.size));
    finished("copied", line);
    Ok((stored, Done::Copied(blob.size), attempt - 1))
}

/// A source reader that tells the board and the governor how many bytes passed.
struct Counted<'a> {
    inner: Box<dyn Read + Send + 'a>,
    options: Options<'a>,
    digest: &'a Digest,
    source: &'a dyn Source,
    destination: &'a dyn Destination,
}

impl Read for Counted<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buffer)?;
        if let Some(board) = self.options.board {
            board.moved(self.digest, n as u64);
        }
        if let Some(governor) = self.options.governor {
            let pushbacks = self.source.pushbacks() + self.destination.pushbacks();
            for adjustment in [governor.pushbacks(pushbacks), governor.moved(n as u64)]
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

/// Another repository of the destination's registry known to hold `blob`: the source's own
/// (when the blob is the source's, as it is) or one the memo remembers.
fn mount_source(
    source: &dyn Source,
    destination: &dyn Destination,
    blob: &Descriptor,
    original: &Descriptor,
    options: Options<'_>,
) -> Option<String> {
    let here = destination.repository()?;
    let from_source = source.repository().filter(|_| blob == original);
    let remembered = options
        .memo
        .map(|memo| memo.holders(&blob.digest))
        .unwrap_or_default();
    (from_source.into_iter().chain(remembered))
        .find(|holder| holder.registry == here.registry && *holder != here)
        .map(|holder| holder.path)
}

/// Records in the memo that the source's repository holds `blob` and the destination's now
/// holds `stored` (its form there), for later mounts.
fn remember_holders(
    source: &dyn Source,
    destination: &dyn Destination,
    blob: &Descriptor,
    stored: &Descriptor,
    options: Options<'_>,
) -> Result<()> {
    let Some(memo) = options.memo.filter(|_| !options.dry_run) else {
        return Ok(());
    };
    if let Some(repository) = source.repository() {
        memo.remember_holder(&blob.digest, &repository)?;
    }
    if let Some(repository) = destination.repository() {
        memo.remember_holder(&stored.digest, &repository)?;
    }
    Ok(())
}
