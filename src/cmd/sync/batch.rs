//! A sync under way: its work run one unit after another, or `--jobs N` at a time, over
//! connections kept for the run; a row per image. An image whose destination already holds
//! what a copy would write is left alone after one `HEAD` at each end, and one more at each
//! end per referrer tag of it (fallback index, cosign's tags) its source's tag list named:
//! a new signature or SBOM of an unchanged image is copied all the same.

use std::sync::Arc;

use crate::archive::{Archive, ArchiveImage, Input};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::progress::Board;
use crate::reference::Reference;
use crate::registry::{Registry, RegistrySource};
use crate::transfer::Summary;

use super::connections::Connections;
use super::plan::Plan;
use super::results::{Row, Synced, say_failures};
use super::rows::Rows;
use super::work::{Named, Work, under_to};
use crate::run::delta;
use crate::run::remote::target_reference;
use crate::run::upload::{Uploads, report_upload};

/// The units of a sync, run `jobs` at a time.
pub struct Batch<'a> {
    pub uploads: &'a Uploads<'a>,
    pub connections: &'a Connections,
    /// Where archive images without a TARGET go.
    pub to: Option<&'a str>,
    pub jobs: usize,
}

impl Batch<'_> {
    /// Runs every unit of `plan`, made one at a time as its turn comes; returns their rows.
    pub fn run(&self, plan: &Plan<'_>) -> Rows {
        let rows = Rows::new();
        let total = plan.len();
        let jobs = self.jobs.clamp(1, total.max(1));
        let worker = || {
            while let Some((i, made)) = plan.next() {
                rows.add(i, self.unit(i, total, made));
            }
        };
        match jobs {
            1 => worker(),
            _ => std::thread::scope(|scope| {
                for _ in 0..jobs {
                    scope.spawn(worker);
                }
            }),
        }
        rows
    }

    /// Runs unit `i` of `total`, as `plan` made it; the failed row when it could not be made.
    fn unit(&self, i: usize, total: usize, made: std::result::Result<Work, Row>) -> Vec<Row> {
        match made {
            Ok(work) => self.work(i, total, &work),
            Err(row) => {
                let rows = vec![row];
                say_failures(self.uploads.run.progress, &rows);
                rows
            }
        }
    }

    /// Runs unit `i` of `total`; says each failure at once.
    fn work(&self, i: usize, total: usize, work: &Work) -> Vec<Row> {
        let progress = self.uploads.run.progress;
        progress.info(format_args!(
            "[{}/{total}] line {}: {}",
            i + 1,
            work.line(),
            work.shown()
        ));
        let rows = match work {
            Work::Image {
                line,
                source,
                target,
            } => vec![Row {
                line: *line,
                source: source.1.to_string(),
                target: target.1.to_string(),
                result: self.image(*line, source, target),
            }],
            Work::Archive {
                line,
                source,
                path,
                target,
            } => self.archive(*line, source, path, target.as_deref()),
        };
        say_failures(progress, &rows);
        rows
    }

    /// A board for the transfer of list line `line`: plain lines, each saying its line, when
    /// others run beside it.
    fn board(&self, line: usize) -> Board {
        match self.jobs > 1 {
            true => (self.uploads.run.board_alongside()).labelled(&format!("line {line}")),
            false => self.uploads.run.board(),
        }
    }

    /// Pushes the images of the archive at `path` to `target`, or each under --to.
    fn archive(
        &self,
        line: usize,
        source: &str,
        path: &std::path::Path,
        target: Option<&str>,
    ) -> Vec<Row> {
        let failed = |error: Error| {
            let target = target.unwrap_or_default();
            let target = crate::reference::hide_credentials(target);
            vec![Row {
                line,
                source: source.into(),
                target,
                result: Err(error),
            }]
        };
        let input = Input::Path(path.to_path_buf());
        let session = match self.uploads.run.cache.begin() {
            Ok(session) => session,
            Err(error) => return failed(error),
        };
        let archive = match self.uploads.open_archive(&session, &input) {
            Ok(archive) => archive,
            Err(error) => return failed(error),
        };
        let targets = match self.archive_targets(&archive, target) {
            Ok(targets) => targets,
            Err(error) => return failed(error),
        };
        if archive.delta().is_some()
            && let Err(error) = self.check_delta(&archive, &targets)
        {
            return failed(error);
        }
        let row = |(image, target): (&ArchiveImage, Result<Named>)| Row {
            line,
            source: source.into(),
            target: (target.as_ref())
                .map(|(_, t)| t.to_string())
                .unwrap_or_default(),
            result: target.and_then(|target| self.push_image(line, &archive, image, target)),
        };
        targets.into_iter().map(row).collect()
    }

    /// The images of `archive` to push and where: its one image to `target`, or each named
    /// image under --to (an image without a name cannot go there: its row fails).
    fn archive_targets<'a>(
        &self,
        archive: &'a Archive,
        target: Option<&str>,
    ) -> Result<Vec<(&'a ArchiveImage, Result<Named>)>> {
        if let Some(target) = target {
            return Ok(vec![(archive.select_one(None)?, target_reference(target))]);
        }
        let mut targets = Vec::new();
        for image in archive.images() {
            if image.names.is_empty() {
                let why = "an image in it has no name; give TARGET on this line";
                targets.push((image, Err(Error::Usage(why.into()))));
            }
            targets.extend((image.names.iter()).map(|name| (image, under_to(self.to, name))));
        }
        Ok(targets)
    }

    /// Pushes `image` of `archive` (list line `line`) to `target`: present when the target
    /// held its manifest already and no blob had to move.
    fn push_image(
        &self,
        line: usize,
        archive: &Archive,
        image: &ArchiveImage,
        (scheme, target): Named,
    ) -> Result<Synced> {
        let uploads = self.uploads;
        let registry = self.connections.open(uploads, target.registry(), scheme)?;
        // What the target held before, to tell an unchanged archive from a push.
        let there = match uploads.forced() {
            true => None,
            false => registry.manifest_digest(target.repository(), &target.reference(), true)?,
        };
        let board = self.board(line);
        let summary = uploads.upload(&archive.source(image), &registry, &target, &board)?;
        // A dry run stores nothing, so it has no outcomes and is never "present" here.
        let unchanged = summary.blobs_copied + summary.blobs_mounted == 0
            && !summary.outcomes.is_empty()
            && (summary.outcomes.iter()).all(|o| Some(&o.manifest) == there.as_ref());
        match (unchanged, there) {
            (true, Some(there)) => Ok(self.present(&target, &there)),
            _ => {
                report(uploads, ("push", "pushed"), &target, &summary, &board)?;
                Ok(Synced::copied(summary))
            }
        }
    }

    /// Checks, before any upload, that the registries hold what the delta archive `archive`
    /// leaves out for the images of `jobs` (those with a target).
    fn check_delta(
        &self,
        archive: &Archive,
        targets: &[(&ArchiveImage, Result<Named>)],
    ) -> Result<()> {
        let mut connected = Vec::new();
        for (image, target) in targets {
            if let Ok((scheme, target)) = target {
                let registry = (self.connections).open(self.uploads, target.registry(), *scheme)?;
                connected.push((*image, target.clone(), registry));
            }
        }
        let pushes: Vec<_> = (connected.iter())
            .map(|(image, target, registry)| (*image, target.clone(), &**registry))
            .collect();
        let went = |earlier: &Reference| match self.to {
            Some(_) => under_to(self.to, earlier).map(|(_, went)| went),
            None => Ok(earlier.clone()),
        };
        delta::check(self.uploads, archive, &pushes, &went)
    }

    /// Copies the registry image `source` (of list line `line`) to `target`, unless `target`
    /// holds it already.
    fn image(
        &self,
        line: usize,
        (source_scheme, source): &Named,
        (target_scheme, target): &Named,
    ) -> Result<Synced> {
        let uploads = self.uploads;
        let to = (self.connections).open(uploads, target.registry(), *target_scheme)?;
        let there = match uploads.forced() {
            true => None,
            false => to.manifest_digest(target.repository(), &target.reference(), true)?,
        };
        // Set when the target holds the image but not all of its referrers.
        let mut fresh = false;
        let upstream: Arc<Registry>;
        let (remote, from) = match uploads.mirrors.source(source) {
            Some(mirrored) => (mirrored, None),
            None => {
                upstream = (self.connections).open(uploads, source.registry(), *source_scheme)?;
                if let Some(there) = &there {
                    let here = upstream.manifest_digest(
                        source.repository(),
                        &source.reference(),
                        false,
                    )?;
                    if here.as_ref() == Some(there) {
                        if !self.new_referrers(&upstream, &to, (source, target), there)? {
                            return Ok(self.present(target, there));
                        }
                        fresh = true;
                    }
                }
                (RegistrySource::new(&upstream, source)?, Some(&*upstream))
            }
        };
        // An index copied for one platform: its chosen image is what the target would hold.
        if !fresh
            && let Some(there) = &there
            && uploads.would_write(&remote, there)?
        {
            let news = match from {
                Some(from) => self.new_referrers(from, &to, (source, target), there)?,
                None => false,
            };
            if !news {
                return Ok(self.present(target, there));
            }
        }
        let board = self.board(line);
        let summary = uploads.copy((&remote, source), false, (&to, target), &board)?;
        report(uploads, ("copy", "copied"), target, &summary, &board)?;
        Ok(Synced::copied(summary))
    }

    /// Whether `from`'s image `source` (`subject`, which `to`'s `target` holds already) has
    /// referrers that `target` lacks (see [`Registry::has_new_referrers`]): false when they
    /// stay behind.
    fn new_referrers(
        &self,
        from: &Registry,
        to: &Registry,
        (source, target): (&Reference, &Reference),
        subject: &Digest,
    ) -> Result<bool> {
        match self.uploads.options(None).referrers {
            None => Ok(false),
            Some(policy) => from.has_new_referrers(
                (source.repository(), subject),
                (to, target.repository()),
                policy,
            ),
        }
    }

    /// Says that `target` already holds `digest`.
    fn present(&self, target: &Reference, digest: &Digest) -> Synced {
        if !self.uploads.run.json() {
            (self.uploads.run.progress).info(format_args!(
                "up to date: {target} is {} already; nothing sent",
                digest.short()
            ));
        }
        Synced::Present(digest.clone())
    }
}

/// The summary line of one transfer on stderr (with --json, the final document says it).
fn report(
    uploads: &Uploads<'_>,
    verbs: (&str, &str),
    target: &Reference,
    summary: &Summary,
    board: &Board,
) -> Result<()> {
    match uploads.run.json() {
        true => Ok(()),
        false => report_upload(&uploads.run, verbs, target, summary, board),
    }
}
