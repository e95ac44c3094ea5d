//! What every transfer command builds once from its flags before it moves anything (where
//! progress goes, the cache, the rate limit, the concurrency governor and the pushbacks it
//! watches), and how every transfer ends: one summary line on stderr, or one JSON result on
//! stdout, in the same shape for every command.

use crate::args::{Globals, RegistryArgs, TransferArgs};
use crate::cache::Cache;
use crate::error::Result;
use crate::manifest::Platforms;
use crate::progress::{Board, Progress, Verbosity, count, human_bytes, json_seconds};
use crate::reference::Reference;
use crate::registry::{Mirrors, Registry, RegistryOptions};
use crate::retry::Pushbacks;
use crate::transfer::{self, Governor, ImageCopy, Options, PlatformsTaken, RateLimit, Summary};

use super::output::write_stdout;

/// The settings of one run of a transfer command, built once and shared by its copies.
pub struct RunContext<'a> {
    /// Where messages go.
    pub progress: Progress,
    /// The cache the flags name (opened by the commands that use it).
    pub cache: Cache,
    transfer: &'a TransferArgs,
    verbosity: Verbosity,
    limit: Option<RateLimit>,
    governor: Option<Governor>,
    /// The requests every registry of the run tried again, which the governor watches.
    pushbacks: Pushbacks,
}

impl<'a> RunContext<'a> {
    /// Builds what `globals` and `transfer` describe.
    pub fn new(globals: &Globals, transfer: &'a TransferArgs) -> Result<RunContext<'a>> {
        let pushbacks = Pushbacks::default();
        Ok(RunContext {
            progress: globals.progress(),
            cache: globals.cache(),
            transfer,
            verbosity: globals.verbosity,
            limit: transfer.rate_limit(),
            governor: transfer.governor(&pushbacks)?,
            pushbacks,
        })
    }

    /// The registry options `registry` describes, warning of what [`RegistryArgs::cautions`]
    /// names; every connection made with them counts its pushbacks for this run.
    pub fn registry_options(&self, registry: &RegistryArgs) -> Result<RegistryOptions> {
        for caution in registry.cautions() {
            self.progress.warn(caution);
        }
        Ok(RegistryOptions {
            pushbacks: self.pushbacks.clone(),
            ..registry.options()?
        })
    }

    /// Connects to the registry `host` (`scheme`: as a URL gave it, else found out), telling
    /// the governor how long the registry took to answer first.
    pub fn connect(
        &self,
        options: &RegistryOptions,
        host: &str,
        scheme: Option<&str>,
    ) -> Result<Registry> {
        let registry = Registry::connect(host, scheme, options, self.progress)?;
        if let Some(governor) = &self.governor {
            governor.round_trip(registry.ping_took());
        }
        Ok(registry)
    }

    /// A fresh progress board for one transfer.
    pub fn board(&self) -> Board {
        self.transfer.shown.board(self.verbosity, false)
    }

    /// A fresh progress board for one of several transfers running at once: plain lines,
    /// never a live display that the others would draw over.
    pub fn board_alongside(&self) -> Board {
        self.transfer.shown.board(self.verbosity, true)
    }

    /// The transfer options, showing progress on `board`; a blob is tried `attempts` times in
    /// a row without headway.
    pub fn options<'b>(&'b self, board: Option<&'b Board>, attempts: u32) -> Options<'b> {
        Options {
            workers: self.transfer.workers(),
            limit: self.limit.as_ref(),
            board,
            governor: self.governor.as_ref(),
            attempts,
            ..Options::default()
        }
    }

    /// Ends a transfer of `images` by `command`: with `--json` the result on stdout, else
    /// the line `said` makes of the timing ([`timing`]) on stderr.
    pub fn finish(
        &self,
        (command, images): (&str, &[String]),
        summary: &Summary,
        board: &Board,
        said: impl FnOnce(&str) -> String,
    ) -> Result<()> {
        if self.transfer.json() {
            return json_result(command, images, summary, board);
        }
        self.progress.info(said(&timing(summary, board)));
        Ok(())
    }

    /// Copies the registry image `reference` (`scheme`: as a URL gave it) into the cache, taking
    /// of an index what `platforms` say: from a mirror that has it, else from its registry.
    pub fn pull_into_cache(
        &self,
        registry_options: &RegistryOptions,
        (scheme, reference): (Option<&str>, &Reference),
        platforms: &Platforms,
        options: Options<'_>,
    ) -> Result<Summary> {
        let mirrors = Mirrors::new(registry_options, self.progress);
        let mut upstream = None;
        let source = mirrors.source_or(reference, &mut upstream, || {
            self.connect(registry_options, reference.registry(), scheme)
        })?;
        let session = self.cache.begin()?;
        let destination = session.destination(format!("registry:{reference}"));
        let copies = [ImageCopy {
            platforms,
            source: &source,
            names: vec![reference.clone()],
        }];
        transfer::copy(&copies, &destination, options, &self.progress)
    }

    /// Whether `--json` asked for events and the result on stdout.
    pub fn json(&self) -> bool {
        self.transfer.json()
    }
}

/// ` in 2.3 s (4.6 MB/s)`, and the retries if any, for the summary line of a transfer.
pub fn timing(summary: &Summary, board: &Board) -> String {
    let seconds = board.elapsed().as_secs_f64();
    let speed = human_bytes((summary.bytes_copied as f64 / seconds.max(0.001)) as u64);
    let retries = match summary.retries {
        0 => String::new(),
        1 => ", 1 retry".to_string(),
        n => format!(", {n} retries"),
    };
    let adjustments = match summary.adjustments.len() {
        0 => String::new(),
        n => format!(", {}", count(n, "concurrency adjustment")),
    };
    let speed = if summary.bytes_copied == 0 {
        String::new()
    } else {
        format!(" ({speed}/s)")
    };
    let sent = match summary.bytes_sent {
        sent if sent == summary.bytes_copied => String::new(),
        sent => format!(", {} sent", human_bytes(sent)),
    };
    let resumed = match summary.bytes_resumed {
        0 => String::new(),
        resumed => format!(", {} resumed rather than read again", human_bytes(resumed)),
    };
    format!(" in {seconds:.1} s{speed}{sent}{resumed}{retries}{adjustments}")
}

/// What a transfer did, as the JSON result says it (`sync` lists one per copy).
pub fn json_summary(summary: &Summary) -> serde_json::Value {
    let manifests: Vec<String> = (summary.outcomes.iter())
        .map(|outcome| outcome.manifest.to_string())
        .collect();
    // Which platforms of an index were taken: "all", those chosen, or null for an image.
    let platforms: Vec<serde_json::Value> = (summary.outcomes.iter())
        .map(|outcome| match &outcome.platforms {
            PlatformsTaken::Image => serde_json::Value::Null,
            PlatformsTaken::All => "all".into(),
            PlatformsTaken::Chosen(chosen) => chosen.clone().into(),
        })
        .collect();
    serde_json::json!({
        "manifests": manifests,
        "platforms": match platforms.as_slice() {
            [one] => one.clone(),
            each => each.to_vec().into(),
        },
        "dry_run": summary.outcomes.is_empty(),
        "blobs_copied": summary.blobs_copied,
        "blobs_present": summary.blobs_present,
        "blobs_mounted": summary.blobs_mounted,
        "bytes_copied": summary.bytes_copied,
        "bytes_sent": summary.bytes_sent,
        "bytes_resumed": summary.bytes_resumed,
        "retries": summary.retries,
        "referrers_copied": summary.referrers,
        "adjustments": summary.adjustments.iter().map(|a| serde_json::json!({
            "seconds": json_seconds(a.at), "from": a.from, "to": a.to, "reason": a.reason,
        })).collect::<Vec<_>>(),
    })
}

/// With `--json`, the last event on stdout: what the transfer did.
fn json_result(command: &str, images: &[String], summary: &Summary, board: &Board) -> Result<()> {
    let mut result = serde_json::json!({
        "event": "result",
        "ok": true,
        "command": command,
        "images": images,
        "seconds": json_seconds(board.elapsed()),
    });
    if let (Some(result), serde_json::Value::Object(fields)) =
        (result.as_object_mut(), json_summary(summary))
    {
        result.extend(fields);
    }
    write_stdout(format!("{result}\n").as_bytes())
}
