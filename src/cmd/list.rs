//! `list`: the cached images, as a table or as JSON, on stdout.

use std::io;

use lexopt::{Arg, Parser};
use serde::Serialize;

use crate::args::{self, Globals, Invocation};
use crate::cache::ImageRecord;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::progress::human_bytes;

use crate::run::output::{print_help, write_stdout};

const COMMAND: &str = "docker-image-pusher list";

/// The synopsis and options.
pub const USAGE: &str = "\
Show the cached images.

Usage: docker-image-pusher list [OPTIONS]

Options:
      --json  print a JSON array instead of a table";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = &[];

/// The long help.
pub const DETAILS: &str = "

The table shows each name (an image cached without one shows its ID), the manifest
digest, the total size of its blobs, its layer count, how many referrers (signatures,
SBOMs, attestations) the cache holds for it, and when it was cached (UTC). The referrers
themselves are not listed as images: they go wherever their image goes, and clean of the
image removes them.

--json prints one array with an object per name:
  name             full name (docker.io/library/nginx:latest), or the image ID
  repository       registry/repository, or null for an image with no name
  reference        the tag, or a sha256: digest
  manifest_digest  digest of the manifest bytes as stored
  media_type       the manifest's media type
  config_digest    the config's digest, which is the image ID (null for an index)
  children         for an index (--all-platforms): the digests of its manifests, each
                   listed as repository@digest
  size             total bytes of config and layers
  referrers        how many referrers of its manifest are cached: manifests naming it as
                   their subject, and cosign's sha256-<hex>.sig/.att/.sbom tags of it
  layers           [{digest, size, media_type, diff_id}] in manifest order
  source           where it came from (archive:FILE)
  cached_at        RFC 3339 time in UTC";

/// One image in `list --json`.
#[derive(Serialize)]
struct Listed<'a> {
    name: &'a str,
    repository: Option<&'a str>,
    reference: &'a str,
    manifest_digest: &'a Digest,
    media_type: &'a str,
    config_digest: Option<&'a Digest>,
    size: u64,
    referrers: usize,
    layers: Vec<ListedLayer<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    children: &'a [Digest],
    source: &'a str,
    cached_at: &'a str,
}

#[derive(Serialize)]
struct ListedLayer<'a> {
    digest: &'a Digest,
    size: Option<u64>,
    media_type: Option<&'a str>,
    diff_id: Option<&'a Digest>,
}

/// What the command line of `list` says, checked, before anything is opened.
pub struct ListArgs {
    pub globals: Globals,
    /// `--json`: a JSON array instead of a table.
    pub json: bool,
}

impl ListArgs {
    /// Reads the rest of the command line.
    pub fn parse(parser: &mut Parser, mut globals: Globals) -> Result<Invocation<ListArgs>> {
        let mut json = false;
        while let Some(flag) = args::next(parser, &mut [&mut globals], COMMAND)? {
            match flag.as_arg() {
                Arg::Short('h') => return Ok(Invocation::Help { long: false }),
                Arg::Long("help") => return Ok(Invocation::Help { long: true }),
                Arg::Long("json") => json = true,
                other => return Err(args::unexpected(other, COMMAND)),
            }
        }
        Ok(Invocation::Run(ListArgs { globals, json }))
    }
}

/// Runs `list` on the rest of the command line.
pub fn run(parser: &mut Parser, globals: Globals) -> Result<()> {
    let ListArgs { globals, json } = match ListArgs::parse(parser, globals)? {
        Invocation::Help { long } => return print_help(USAGE, GROUPS, DETAILS, long),
        Invocation::Run(list) => list,
    };
    let cache = globals.cache();
    let index = cache.index()?;
    let records: Vec<Row<'_>> = (index.iter())
        .filter(|(_, record)| !record.is_referrer())
        .map(|(name, record)| (name, record, index.referrer_count(record)))
        .collect();
    if records.is_empty() {
        globals
            .progress()
            .info(format_args!("the cache {} holds no image", cache.shown()));
    }
    let text = if json {
        to_json(&records)?
    } else {
        to_table(&records)
    };
    write_stdout(text.as_bytes())
}

/// One image listed: its name, its record and how many referrers it has.
type Row<'a> = (&'a String, &'a ImageRecord, usize);

fn to_json(records: &[Row<'_>]) -> Result<String> {
    let listed: Vec<Listed<'_>> = records
        .iter()
        .map(|(name, record, referrers)| listed(name, record, *referrers))
        .collect();
    let mut text = serde_json::to_string_pretty(&listed)
        .map_err(|e| Error::io("encoding JSON", io::Error::other(e)))?;
    text.push('\n');
    Ok(text)
}

fn listed<'a>(name: &'a str, record: &'a ImageRecord, referrers: usize) -> Listed<'a> {
    let layers = (record.layers.iter().enumerate())
        .map(|(i, digest)| {
            let blob = record.blobs.get(digest);
            ListedLayer {
                digest,
                size: blob.map(|b| b.size),
                media_type: blob.map(|b| b.media_type.as_str()),
                diff_id: record.diff_ids.get(i),
            }
        })
        .collect();
    Listed {
        name,
        repository: record.repository.as_deref(),
        reference: &record.reference,
        manifest_digest: &record.manifest_digest,
        media_type: &record.media_type,
        config_digest: record.config_digest.as_ref(),
        size: record.size(),
        referrers,
        layers,
        children: &record.children,
        source: &record.source,
        cached_at: &record.cached_at,
    }
}

fn to_table(records: &[Row<'_>]) -> String {
    let header = ["IMAGE", "DIGEST", "SIZE", "LAYERS", "REFERRERS", "CACHED"].map(String::from);
    let rows: Vec<[String; 6]> = records
        .iter()
        .map(|(name, record, referrers)| {
            let name = match record.repository {
                Some(_) => name.to_string(),
                None => format!(
                    "<none> (ID {})",
                    record
                        .config_digest
                        .as_ref()
                        .unwrap_or(&record.manifest_digest)
                        .short()
                ),
            };
            [
                name,
                record.manifest_digest.short().to_string(),
                human_bytes(record.size()),
                match record.children.len() {
                    0 => record.layers.len().to_string(),
                    platforms => format!("index of {platforms}"),
                },
                referrers.to_string(),
                record
                    .cached_at
                    .replacen('T', " ", 1)
                    .trim_end_matches('Z')
                    .to_string()
                    + " UTC",
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut text = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}
