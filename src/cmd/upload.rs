//! What `push`, `copy` and `sync` share: uploads to a registry, set up once from their parsed
//! flags and run once per image.

use lexopt::{Arg, Parser};

use crate::archive::{Archive, Input};
use crate::args::{FlagGroup, Globals, RegistryArgs, TransferArgs, UploadArgs};
use crate::cache::{Cache, MemoStore, Session};
use crate::error::Result;
use crate::manifest::Platforms;
use crate::progress::{Board, Progress, Verbosity};
use crate::reference::Reference;
use crate::registry::{Registry, RegistryDestination, RegistryOptions, RegistrySource};
use crate::transfer::{self, Governor, Job, Options, RateLimit, Source, Summary};

/// The flags of every command that uploads to a registry: the registry, transfer and upload
/// groups, and `-n/--dry-run` (each command's help describes it in its own words).
pub struct UploadFlags {
    pub registry: RegistryArgs,
    pub transfer: TransferArgs,
    pub upload: UploadArgs,
    pub dry_run: bool,
}

impl UploadFlags {
    /// The defaults, overridden by the environment.
    pub fn from_env() -> Result<UploadFlags> {
        Ok(UploadFlags {
            registry: RegistryArgs::from_env()?,
            transfer: TransferArgs::from_env()?,
            upload: UploadArgs::from_env()?,
            dry_run: false,
        })
    }
}

impl FlagGroup for UploadFlags {
    fn claim(&mut self, arg: &Arg<'_>, parser: &mut Parser) -> Result<bool> {
        if let Arg::Short('n') | Arg::Long("dry-run") = arg {
            self.dry_run = true;
            return Ok(true);
        }
        Ok(self.registry.claim(arg, parser)?
            || self.transfer.claim(arg, parser)?
            || self.upload.claim(arg, parser)?)
    }
}

/// The settings of a run of uploads: what the flags say, and what is built from them once
/// (credentials, rate limit, concurrency governor) and shared by every upload of the run.
pub struct Uploads<'a> {
    transfer_args: &'a TransferArgs,
    upload_args: &'a UploadArgs,
    options: RegistryOptions,
    verbosity: Verbosity,
    limit: Option<RateLimit>,
    governor: Option<Governor>,
    dry_run: bool,
    /// Where progress and remarks go.
    pub progress: Progress,
    /// The cache: staging for archives read from streams, `--via-cache`.
    pub cache: Cache,
    /// What the cache remembers of blobs: compressed forms, repositories holding them.
    memo: MemoStore,
}

impl<'a> Uploads<'a> {
    /// Sets up uploads as the flags say; reads a password from standard input once if
    /// `--password-stdin` asks for it.
    pub fn new(globals: &Globals, flags: &'a UploadFlags) -> Result<Uploads<'a>> {
        let progress = globals.progress();
        for caution in flags.registry.cautions() {
            progress.warn(caution);
        }
        Ok(Uploads {
            transfer_args: &flags.transfer,
            upload_args: &flags.upload,
            options: flags.registry.options()?,
            verbosity: globals.verbosity,
            limit: flags.transfer.rate_limit(),
            governor: flags.transfer.governor()?,
            dry_run: flags.dry_run,
            progress,
            memo: globals.cache().memo(),
            cache: globals.cache(),
        })
    }

    /// Connects to the registry `host` (`scheme`: as a URL gave it, else found out).
    pub fn connect(&self, host: &str, scheme: Option<&str>) -> Result<Registry> {
        Registry::connect(host, scheme, &self.options, self.progress)
    }

    /// A fresh progress board for one upload.
    pub fn board(&self) -> Board {
        self.transfer_args.board(self.verbosity)
    }

    /// The transfer options, showing progress on `board`, with the cache's memo of blobs.
    pub fn options<'b>(&'b self, board: Option<&'b Board>) -> Options<'b> {
        Options {
            workers: self.transfer_args.workers(),
            limit: self.limit.as_ref(),
            board,
            governor: self.governor.as_ref(),
            force: self.upload_args.force(),
            dry_run: self.dry_run,
            attempts: self.options.attempts,
            memo: Some(&self.memo),
        }
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
        let destination =
            RegistryDestination::new(registry, target, compress, self.upload_args.plan());
        let job = Job {
            source,
            names: vec![target.clone()],
        };
        // From a registry the memo has nothing to add (the source's repository is the mount
        // source), and a copy between registries writes nothing to disk.
        let mut options = self.options(Some(board));
        if source.repository().is_some() {
            options.memo = None;
        }
        let summary = transfer::copy(&[job], &destination, options, &self.progress)?;
        if self.upload_args.reencodes()
            && !source.saved_layers()
            && let Some(outcome) = summary.outcomes.first()
        {
            let from = source.manifest()?.digest;
            if outcome.manifest != from {
                self.progress.warn(format_args!(
                    "--compress re-encoded the layers: {target} is {}, not the source's {from}",
                    outcome.manifest
                ));
            }
        }
        Ok(summary)
    }

    /// Copies `source` from `from` (a registry) to `target` on `to` (the same connection when
    /// both are on one registry, so blobs are mounted); with `via_cache`, through the cache.
    pub fn copy(
        &self,
        (from, source): (&Registry, &Reference),
        platforms: &Platforms,
        via_cache: bool,
        (to, target): (&Registry, &Reference),
        board: &Board,
    ) -> Result<Summary> {
        let remote = RegistrySource::open(from, source, platforms)?;
        if !via_cache || self.dry_run {
            return self.upload(&remote, to, target, board);
        }
        let session = self.cache.begin()?;
        let into_cache = session.destination(format!("registry:{source}"));
        let pull = Job {
            source: &remote,
            names: vec![source.clone()],
        };
        transfer::copy(&[pull], &into_cache, self.options(None), &self.progress)?;
        drop(session);
        self.upload(&self.cache.image(&source.to_string())?, to, target, board)
    }

    /// Opens an archive for uploading (a stream is spooled into `session`), telling the
    /// user what it leaves out.
    pub fn open_archive(
        &self,
        session: &Session<'_>,
        input: &Input,
        platforms: &Platforms,
    ) -> Result<Archive> {
        let archive = Archive::open(input, session.staging_dir(), platforms)?;
        for remark in archive.remarks() {
            self.progress
                .warn(format_args!("{}: {remark}", input.describe()));
        }
        Ok(archive)
    }
}

/// Whether SOURCE, not being a file, was meant as one rather than as an image name.
pub fn looks_like_a_file(source: &str) -> bool {
    source.starts_with(['/', '.'])
        || [".tar", ".tar.gz", ".tgz"]
            .iter()
            .any(|suffix| source.ends_with(suffix))
}
