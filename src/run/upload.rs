//! What `push`, `copy` and `sync` share: uploads to a registry, set up once from their parsed
//! flags and run once per image.

use crate::archive::{Archive, Input};
use crate::args::{Globals, UploadArgs, UploadFlags};
use crate::cache::{MemoStore, Session};
use crate::digest::Digest;
use crate::error::Result;
use crate::gzip;
use crate::manifest::Descriptor;
use crate::manifest::Platforms;
use crate::progress::{Board, count, human_bytes};
use crate::reference::{Reference, RepositoryName};
use crate::registry::{Mirrors, Registry, RegistryDestination, RegistryOptions, RegistrySource};
use crate::transfer::{self, ImageCopy, Ledger, Options, ReferrerPolicy, Source, Summary};

use super::context::RunContext;
use super::digestfile;

/// A run of uploads: the run's context, and what the upload flags add to it (the registry
/// options with their credentials, the memo of blobs), built once and shared by every upload
/// of the run.
pub struct Uploads<'a> {
    /// Progress, cache, rate limit, governor.
    pub run: RunContext<'a>,
    upload_args: &'a UploadArgs,
    options: RegistryOptions,
    /// Which platforms of an index every upload takes.
    platforms: Platforms,
    /// Which referrers go with each image (none with `--no-referrers`).
    referrers: Option<ReferrerPolicy>,
    dry_run: bool,
    /// What the cache remembers of blobs: compressed forms, repositories holding them.
    memo: MemoStore,
    /// The mirrors registry images are read from first.
    pub mirrors: Mirrors,
    /// Where the blobs of this run's uploads landed, so each crosses once.
    ledger: Ledger,
}

impl<'a> Uploads<'a> {
    /// Sets up uploads as the flags say; reads a password from standard input once if
    /// `--password-stdin` asks for it.
    pub fn new(globals: &Globals, flags: &'a UploadFlags) -> Result<Uploads<'a>> {
        let run = RunContext::new(globals, &flags.transfer)?;
        let options = run.registry_options(&flags.registry)?;
        Ok(Uploads {
            mirrors: Mirrors::new(&options, run.progress),
            options,
            memo: run.cache.memo()?,
            run,
            upload_args: &flags.upload,
            platforms: flags.platform.choice(Platforms::All)?,
            referrers: flags.referrers.policy()?,
            dry_run: flags.dry_run,
            ledger: Ledger::default(),
        })
    }

    /// Connects to the registry `host` (`scheme`: as a URL gave it, else found out).
    pub fn connect(&self, host: &str, scheme: Option<&str>) -> Result<Registry> {
        self.run.connect(&self.options, host, scheme)
    }

    /// The registry image `reference` to read: from a mirror, else from its registry, whose
    /// connection goes in `upstream`.
    pub fn source<'s>(
        &'s self,
        (scheme, reference): (Option<&str>, &Reference),
        upstream: &'s mut Option<Registry>,
    ) -> Result<RegistrySource<'s>> {
        (self.mirrors).source_or(reference, upstream, || {
            self.connect(reference.registry(), scheme)
        })
    }

    /// The transfer options, showing progress on `board`, with the cache's memo of blobs.
    pub fn options<'b>(&'b self, board: Option<&'b Board>) -> Options<'b> {
        Options {
            force: self.upload_args.force(),
            dry_run: self.dry_run,
            memo: Some(&self.memo),
            gzip_level: Some(self.upload_args.level()),
            ledger: Some(&self.ledger),
            referrers: self.referrers.as_ref(),
            ..self.run.options(board, self.options.attempts)
        }
    }

    /// The layers a push of `source` sends (of the image the platform flags choose).
    pub fn layers_to_push(&self, source: &dyn Source) -> Result<Vec<Descriptor>> {
        transfer::chosen_layers(source, &self.platforms)
    }

    /// Records that `holder` has `digest` already: uploads that need it mount it from there.
    pub fn known_holder(&self, digest: &Digest, holder: RepositoryName) {
        self.ledger.record(digest, holder);
    }

    /// Whether `--force-upload` asks for every blob and manifest to be written again.
    pub fn forced(&self) -> bool {
        self.upload_args.force()
    }

    /// Whether the destination's manifest `there` is what a copy of `remote` would write:
    /// the source's own (an index kept whole, read without its children), or what the
    /// platform flags choose in an index.
    pub fn would_write(&self, remote: &dyn Source, there: &Digest) -> Result<bool> {
        let written = match self.platforms {
            Platforms::All => remote.manifest()?,
            _ => transfer::chosen(remote, &self.platforms)?,
        };
        Ok(written.digest == *there)
    }

    /// Copies `source` to `target` on `registry`, showing progress on `board`.
    pub fn upload(
        &self,
        source: &dyn Source,
        registry: &Registry,
        target: &Reference,
        board: &Board,
    ) -> Result<Summary> {
        let compress = self.upload_args.compress(source.saved_layers());
        // From a registry, the memo learns where each blob landed, so that a later run's copy
        // to another repository of that registry mounts it (as the ledger does within a run);
        // but only in a cache that exists: a copy between registries creates nothing on disk.
        let mut options = self.options(Some(board));
        if source.repository().is_some() && !self.memo.has_cache() {
            options.memo = None;
        }
        let plan = (self.upload_args).plan(gzip::compress_ahead_pays(options.workers));
        let destination = RegistryDestination::new(registry, target, compress, plan);
        let copy = ImageCopy {
            source,
            names: vec![target.clone()],
            platforms: &self.platforms,
        };
        let summary = transfer::copy(&[copy], &destination, options, &self.run.progress)?;
        if self.upload_args.reencodes()
            && !source.saved_layers()
            && let Some(outcome) = summary.outcomes.first()
            && outcome.manifest != outcome.original
        {
            self.run.progress.warn(format_args!(
                "--compress re-encoded the layers: {target} is {}, not the source's {}",
                outcome.manifest, outcome.original
            ));
        }
        Ok(summary)
    }

    /// Copies the registry image `remote` (named `source`) to `target` on `to` (the same
    /// connection when both are on one registry, so blobs are mounted); with `via_cache`,
    /// through the cache.
    pub fn copy(
        &self,
        (remote, source): (&RegistrySource<'_>, &Reference),
        via_cache: bool,
        (to, target): (&Registry, &Reference),
        board: &Board,
    ) -> Result<Summary> {
        if !via_cache || self.dry_run {
            return self.upload(remote, to, target, board);
        }
        let session = self.run.cache.begin()?;
        let into_cache = session.destination(format!("registry:{source}"));
        let pull = ImageCopy {
            source: remote,
            names: vec![source.clone()],
            platforms: &self.platforms,
        };
        transfer::copy(&[pull], &into_cache, self.options(None), &self.run.progress)?;
        drop(session);
        self.upload(
            &self.run.cache.image(&source.to_string())?,
            to,
            target,
            board,
        )
    }

    /// Opens an archive for uploading (a stream is spooled into `session`).
    pub fn open_archive(&self, session: &Session<'_>, input: &Input) -> Result<Archive> {
        Archive::open(input, session.staging_dir())
    }
}

/// How an upload to `target` (`push`, `copy`; `done` is its past tense) ended: the JSON
/// result with `--json`, else a summary line on stderr.
pub fn report_upload(
    run: &RunContext<'_>,
    (command, done): (&str, &str),
    target: &Reference,
    summary: &Summary,
    board: &Board,
) -> Result<()> {
    let blobs = count(summary.blobs_copied, "blob");
    let size = human_bytes(summary.bytes_copied);
    let (present, mounted) = (summary.blobs_present, summary.blobs_mounted);
    run.finish((command, &[target.to_string()]), summary, board, |took| {
        match summary.outcomes.first() {
            None => format!(
                "would {command} {target}: {blobs} to upload ({size}), {mounted} to mount, {present} already there"
            ),
            Some(outcome) => format!(
                "{done} {target} (manifest {}): {blobs} uploaded ({size}), {mounted} mounted, {present} already there{}{took}",
                outcome.manifest,
                referrers_said(summary.referrers)
            ),
        }
    })
}

/// `, 2 referrers` for a summary line, when any went with the image.
pub fn referrers_said(referrers: usize) -> String {
    match referrers {
        0 => String::new(),
        n => format!(", {}", count(n, "referrer")),
    }
}

/// With `--digestfile`, writes the manifest a `push` or `copy` stored (nothing in a dry run).
pub fn write_digestfile(flags: &UploadFlags, summary: &Summary) -> Result<()> {
    match (&flags.digestfile, summary.outcomes.first()) {
        (Some(path), Some(outcome)) => digestfile::write(path, &[outcome.manifest.to_string()]),
        _ => Ok(()),
    }
}

/// Whether SOURCE, not being a file, was meant as one rather than as an image name.
pub fn looks_like_a_file(source: &str) -> bool {
    source.starts_with(['/', '.'])
        || [".tar", ".tar.gz", ".tgz"]
            .iter()
            .any(|suffix| source.ends_with(suffix))
}
