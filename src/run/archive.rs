//! An archive of cached images (`save`, `bundle`), written through the copy loop: one blob
//! at a time (an archive is one stream), gzip-compressed if asked, a delta if asked.

use std::collections::HashSet;
use std::io::{BufWriter, Write};

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::archive::{ArchiveDestination, Omitted, Since, WrittenReferrer};
use crate::cache::{Cache, CachedImage};
use crate::digest::COPY_BUFFER;
use crate::error::{Context, Error, Result};
use crate::manifest::Platforms;
use crate::progress::{Board, Progress};
use crate::transfer::{self, Destination, ImageCopy, Options, ReferrerPolicy, Summary};

/// The cached images `queries` name, each once however many names it is given by.
pub fn cached_images<'c>(cache: &'c Cache, queries: &[String]) -> Result<Vec<CachedImage<'c>>> {
    let mut cached = (queries.iter())
        .map(|query| cache.image(query))
        .collect::<Result<Vec<_>>>()?;
    let mut seen = HashSet::new();
    cached.retain(|image| seen.insert(image.key.clone()));
    Ok(cached)
}

/// What a delta archive leaves out (`bundle --since`): the earlier bundle and its blobs.
pub type LeaveOut = Option<(Since, Vec<Omitted>)>;

/// What an archive takes: the images, what a delta leaves out, and which referrers of the
/// images go with them.
pub type Taken<'a> = (&'a [CachedImage<'a>], LeaveOut, Option<&'a ReferrerPolicy>);

/// What writing an archive did: the copy, the blobs a delta left out that the images use,
/// the referrers written with them, and the output.
pub struct Archived<W> {
    pub summary: Summary,
    pub left_out: Vec<Omitted>,
    pub referrers: Vec<WrittenReferrer>,
    pub out: W,
}

/// Writes the archive of `images` to `out`, gzip-compressed when `gzip`, through the copy
/// loop (one blob at a time: an archive is one stream), showing progress on `board`; a delta
/// when `leave_out` says what to leave out; the referrers the policy takes go with them.
pub fn write_archive<W: Write + Send>(
    out: W,
    gzip: bool,
    taken: Taken<'_>,
    shown: (&Board, &Progress),
) -> Result<Archived<W>> {
    let out = BufWriter::with_capacity(COPY_BUFFER, out);
    let archived = if gzip {
        let compressing = GzEncoder::new(out, Compression::default());
        copy_into(compressing, taken, shown)?
            .then(|out| out.finish().context(|| "compressing the archive"))?
    } else {
        copy_into(out, taken, shown)?
    };
    archived.then(|out| {
        (out.into_inner()).map_err(|e| Error::io("writing the archive", e.into_error()))
    })
}

impl<W> Archived<W> {
    /// The same, with the output as `finish` leaves it.
    pub fn then<V>(self, finish: impl FnOnce(W) -> Result<V>) -> Result<Archived<V>> {
        Ok(Archived {
            summary: self.summary,
            left_out: self.left_out,
            referrers: self.referrers,
            out: finish(self.out)?,
        })
    }
}

/// Copies cached `images` whole (every platform they hold) into `destination`, one blob at a
/// time (a file being written is one stream), with their referrers as `referrers` says.
pub fn copy_cached(
    images: &[CachedImage<'_>],
    destination: &dyn Destination,
    referrers: Option<&ReferrerPolicy>,
    (board, progress): (&Board, &Progress),
) -> Result<Summary> {
    let copies: Vec<ImageCopy<'_>> = (images.iter())
        .map(|image| ImageCopy {
            platforms: &Platforms::All,
            source: image,
            names: image.name().into_iter().collect(),
        })
        .collect();
    let options = Options {
        workers: 1,
        board: Some(board),
        referrers,
        ..Options::default()
    };
    transfer::copy(&copies, destination, options, progress)
}

/// Copies `images` into an archive written to `out`.
fn copy_into<W: Write + Send>(
    out: W,
    (images, leave_out, referrers): Taken<'_>,
    (board, progress): (&Board, &Progress),
) -> Result<Archived<W>> {
    let destination = match leave_out {
        Some((since, omitted)) => ArchiveDestination::new(out).leaving_out(since, omitted),
        None => ArchiveDestination::new(out),
    };
    let summary = copy_cached(images, &destination, referrers, (board, progress))?;
    Ok(Archived {
        summary,
        left_out: destination.left_out(),
        referrers: destination.referrers()?,
        out: destination.finish()?,
    })
}
