//! `sync`: many pushes and copies from a list, going on after a failure, summed up in a table.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use lexopt::{Arg, Parser};
use serde_json::json;

use crate::archive::Input;
use crate::args::{
    self, Globals, PlatformArgs, REGISTRY_HELP, TRANSFER_HELP, TransferArgs, UPLOAD_HELP,
};
use crate::error::{Context, Error, Result};
use crate::manifest::Platforms;
use crate::progress::{Board, count, human_bytes};
use crate::reference::{self, Reference};
use crate::registry::Registry;
use crate::transfer::Summary;

use super::seed::seed_reference;
use super::upload::{UploadFlags, Uploads, looks_like_a_file};
use super::{print_help, report_upload, target_reference, write_stdout};

const COMMAND: &str = "docker-image-pusher sync";

/// The synopsis and options.
pub const USAGE: &str = "\
Run the pushes and copies a list names, one per line; go on after a failure; sum them up.

Usage: docker-image-pusher sync [OPTIONS] --file LIST

Options:
  -f, --file LIST                   the list; - reads standard input
      --to REGISTRY[/PREFIX]        where lines that give only SOURCE go
      --platform OS/ARCH[/VARIANT]  which image of a multi-platform index [default: this host's]
      --all-platforms               copy indexes whole (from registries and archives)
  -n, --dry-run                     show what would be sent; send nothing";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = &[UPLOAD_HELP, REGISTRY_HELP, TRANSFER_HELP];

/// The long help.
pub const DETAILS: &str = "

Each line is SOURCE [TARGET]; blank lines, and everything after #, are left out. SOURCE is
an archive file (plain or gzip; a relative path starts at the list's folder), pushed as
push does, or an image in a registry, copied as copy does. TARGET is [registry/]repository
[:tag] or a URL. A line without TARGET goes under --to: REGISTRY/PREFIX/REPOSITORY:TAG, with
the source's repository (docker.io's library/ left out) and tag; from an archive, every
named image in it goes there.

The jobs run one after another, and a failed one does not stop the rest. At the end, a
table on stdout gives each job's line, source, target and result (with --json, one JSON
document, the last line). The exit code is 0 when every job succeeded, else that of the
first failure.

Example list:
  # mirror for the edge site
  docker.io/library/nginx:1.27    registry.local/mirror/nginx:1.27
  ghcr.io/org/tool:2
  images/app-v1.tar               registry.local/team/app:v1

Examples:
  docker-image-pusher sync --file images.txt --to registry.local/mirror
  docker-image-pusher sync -f - --to https://harbor.example.com/edge --max-concurrent 4 < list";

/// Runs `sync` on the rest of the command line.
pub fn run(parser: &mut Parser, mut globals: Globals) -> Result<()> {
    let mut flags = UploadFlags::from_env()?;
    let mut platform_args = PlatformArgs::default();
    let (mut list, mut to) = (None, None);
    let groups: &mut [&mut dyn args::FlagGroup] =
        &mut [&mut globals, &mut flags, &mut platform_args];
    while let Some(flag) = args::next(parser, groups, COMMAND)? {
        match flag.as_arg() {
            Arg::Short('h') => return print_help(USAGE, GROUPS, DETAILS, false),
            Arg::Long("help") => return print_help(USAGE, GROUPS, DETAILS, true),
            Arg::Short('f') | Arg::Long("file") => list = Some(args::value(parser, "--file")?),
            Arg::Long("to") => to = Some(args::value(parser, "--to")?),
            other => return Err(args::unexpected(other, COMMAND)),
        }
    }
    let list = list.ok_or_else(|| {
        Error::Usage(format!(
            "no list given (--file LIST); see '{COMMAND} --help'"
        ))
    })?;
    if let Some(to) = &to {
        seed_reference(Some(to), "probe", None)
            .map_err(|_| Error::Usage(format!("--to {to}: not REGISTRY[/PREFIX]")))?;
    }
    if list == "-" && flags.registry.reads_password_from_stdin() {
        return Err(Error::Usage(
            "--file - and --password-stdin both want standard input; give the list as a file"
                .into(),
        ));
    }
    let (text, base) = read_list(&list)?;

    let platforms = platform_args.choice()?;
    let uploads = Uploads::new(&globals, &flags)?;
    let mut batch = Batch {
        uploads: &uploads,
        transfer_args: &flags.transfer,
        to: to.as_deref(),
        platforms,
        base,
        connections: Connections::default(),
        rows: Vec::new(),
    };
    let lines: Vec<(usize, &str)> = (text.lines().enumerate())
        .map(|(i, line)| (i + 1, line.split('#').next().unwrap_or_default().trim()))
        .filter(|(_, line)| !line.is_empty())
        .collect();
    for (i, &(number, line)) in lines.iter().enumerate() {
        uploads.progress.info(format_args!(
            "[{}/{}] line {number}: {}",
            i + 1,
            lines.len(),
            reference::hide_credentials(line)
        ));
        batch.line(number, line);
    }
    if lines.is_empty() {
        uploads.progress.warn(format_args!("{list} names no jobs"));
    }
    let rows = batch.rows;
    match flags.transfer.json() {
        true => write_stdout(format!("{}\n", json_result(&rows, flags.dry_run)).as_bytes())?,
        false => write_stdout(table(&rows).as_bytes())?,
    }
    let total = rows.len();
    let mut failed = rows.into_iter().filter(|row| row.result.is_err());
    let Some(first) = failed.next() else {
        uploads
            .progress
            .info(format_args!("sync: {} done", count(total, "job")));
        return Ok(());
    };
    let lines: Vec<String> = std::iter::once(first.line)
        .chain(failed.map(|row| row.line))
        .map(|line| line.to_string())
        .collect();
    let plural = if lines.len() == 1 { "line" } else { "lines" };
    let summary = format!(
        "{} of {total} jobs failed ({plural} {})",
        lines.len(),
        lines.join(", ")
    );
    first
        .result
        .map(drop)
        .context(|| format!("{summary}; line {}", first.line))
}

/// Reads the list; returns its text and the folder relative archive paths start at.
fn read_list(list: &str) -> Result<(String, PathBuf)> {
    if list != "-" {
        let text = fs::read_to_string(list).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Usage(format!("--file {list}: no such file")),
            _ => Error::io(format!("reading {list}"), e),
        })?;
        let base = Path::new(list)
            .parent()
            .unwrap_or(Path::new(""))
            .to_path_buf();
        return Ok((text, base));
    }
    let mut stdin = std::io::stdin().lock();
    if stdin.is_terminal() {
        return Err(Error::Usage(
            "--file -: standard input is a terminal; pipe the list in".into(),
        ));
    }
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .context(|| "reading the list from standard input")?;
    Ok((text, PathBuf::new()))
}

/// One transfer of a sync: a line, or one image of an archive on a line that uses --to.
struct Row {
    line: usize,
    source: String,
    target: String,
    result: Result<Summary>,
}

/// A sync under way: what every job shares, the connections made so far, the rows done.
struct Batch<'a> {
    uploads: &'a Uploads<'a>,
    transfer_args: &'a TransferArgs,
    to: Option<&'a str>,
    platforms: Platforms,
    /// The folder relative archive paths start at.
    base: PathBuf,
    connections: Connections,
    rows: Vec<Row>,
}

impl Batch<'_> {
    /// Runs one line of the list, adding a row per transfer (a failed row when the line is
    /// wrong).
    fn line(&mut self, number: usize, line: &str) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (source, target) = match fields[..] {
            [source] => (source, None),
            [source, target] => (source, Some(target)),
            _ => {
                let found = count(fields.len(), "field");
                let error = Error::Usage(format!("expected SOURCE [TARGET], found {found}"));
                return self.fail(number, line, "", error);
            }
        };
        let path = self.base.join(source);
        let result = match path.is_file() {
            true => self.archive(number, source, &path, target),
            false if looks_like_a_file(source) => {
                Err(Error::BadInput(format!("{}: no such file", path.display())))
            }
            false => self.image(number, source, target),
        };
        if let Err(error) = result {
            self.fail(number, source, target.unwrap_or_default(), error);
        }
    }

    /// Pushes the images of the archive at `path` to `target`, or each under --to.
    fn archive(
        &mut self,
        number: usize,
        source: &str,
        path: &Path,
        target: Option<&str>,
    ) -> Result<()> {
        let input = Input::Path(path.to_path_buf());
        let session = self.uploads.cache.begin()?;
        let archive = self
            .uploads
            .open_archive(&session, &input, &self.platforms)?;
        let jobs = match target {
            Some(target) => vec![(archive.select_one(None)?, target_reference(target))],
            None => {
                let mut jobs = Vec::new();
                for image in archive.images() {
                    if image.names.is_empty() {
                        let why = "an image in it has no name; give TARGET on this line";
                        jobs.push((image, Err(Error::Usage(why.into()))));
                    }
                    jobs.extend(image.names.iter().map(|name| (image, self.under_to(name))));
                }
                jobs
            }
        };
        for (image, target) in jobs {
            let shown = target
                .as_ref()
                .map(|(_, t)| t.to_string())
                .unwrap_or_default();
            let result = target.and_then(|(scheme, target)| {
                let [registry] = self
                    .connections
                    .open(self.uploads, [(target.registry(), scheme)])?;
                let board = self.uploads.board();
                let summary =
                    self.uploads
                        .upload(&archive.source(image), registry, &target, &board)?;
                report(
                    self.uploads,
                    self.transfer_args,
                    ("push", "pushed"),
                    &target,
                    &summary,
                    &board,
                )?;
                Ok(summary)
            });
            self.record(Row {
                line: number,
                source: source.into(),
                target: shown,
                result,
            });
        }
        Ok(())
    }

    /// Copies the registry image `source` to `target`, or under --to.
    fn image(&mut self, number: usize, source: &str, target: Option<&str>) -> Result<()> {
        let (source_scheme, source_reference) =
            Reference::parse_url(source).map_err(|e| Error::BadInput(format!("SOURCE: {e}")))?;
        let (target_scheme, target_reference) = match target {
            Some(target) => target_reference(target)?,
            None => self.under_to(&source_reference)?,
        };
        let ends = [
            (source_reference.registry(), source_scheme),
            (target_reference.registry(), target_scheme),
        ];
        let result = self
            .connections
            .open(self.uploads, ends)
            .and_then(|[from, to]| {
                let board = self.uploads.board();
                let summary = self.uploads.copy(
                    (from, &source_reference),
                    &self.platforms,
                    false,
                    (to, &target_reference),
                    &board,
                )?;
                report(
                    self.uploads,
                    self.transfer_args,
                    ("copy", "copied"),
                    &target_reference,
                    &summary,
                    &board,
                )?;
                Ok(summary)
            });
        let target = target_reference.to_string();
        self.record(Row {
            line: number,
            source: source.into(),
            target,
            result,
        });
        Ok(())
    }

    /// Where `name` goes under --to: REGISTRY/PREFIX/REPOSITORY:TAG.
    fn under_to(&self, name: &Reference) -> Result<(Option<&'static str>, Reference)> {
        let to = self.to.ok_or_else(|| {
            Error::Usage("no TARGET on this line, and no --to to put it under".into())
        })?;
        let tag = name.tag().ok_or_else(|| {
            Error::Usage(format!("{name} has no tag to keep under --to; give TARGET"))
        })?;
        seed_reference(Some(to), name.familiar_repository(), Some(tag))
            .map_err(|e| Error::Usage(format!("--to {to} with {name}: {e}")))
    }

    /// Records a line that failed before any transfer.
    fn fail(&mut self, line: usize, source: &str, target: &str, error: Error) {
        let (source, target) = (
            reference::hide_credentials(source),
            reference::hide_credentials(target),
        );
        self.record(Row {
            line,
            source,
            target,
            result: Err(error),
        });
    }

    /// Records a row, saying at once when it failed.
    fn record(&mut self, row: Row) {
        if let Err(error) = &row.result {
            let line = row.line;
            self.uploads
                .progress
                .warn(format_args!("line {line}: {error}"));
        }
        self.rows.push(row);
    }
}

/// Connections by registry host and scheme, each made on first use and kept for the run.
#[derive(Default)]
struct Connections(HashMap<(String, Option<&'static str>), Registry>);

impl Connections {
    /// The connections to `ends` (host and scheme), made now if not yet made.
    fn open<const N: usize>(
        &mut self,
        uploads: &Uploads<'_>,
        ends: [(&str, Option<&'static str>); N],
    ) -> Result<[&Registry; N]> {
        for (host, scheme) in ends {
            if let Entry::Vacant(slot) = self.0.entry((host.to_string(), scheme)) {
                slot.insert(uploads.connect(host, scheme)?);
            }
        }
        Ok(ends.map(|(host, scheme)| &self.0[&(host.to_string(), scheme)]))
    }
}

/// The summary line of one transfer on stderr (with --json, the final document says it).
fn report(
    uploads: &Uploads<'_>,
    transfer_args: &TransferArgs,
    verbs: (&str, &str),
    target: &Reference,
    summary: &Summary,
    board: &Board,
) -> Result<()> {
    match transfer_args.json() {
        true => Ok(()),
        false => report_upload(
            verbs,
            target,
            summary,
            board,
            transfer_args,
            &uploads.progress,
        ),
    }
}

/// What a row's result says in the table.
fn outcome(result: &Result<Summary>) -> String {
    let summary = match result {
        Err(error) => return format!("FAILED (exit {}): {error}", error.exit_code()),
        Ok(summary) => summary,
    };
    let (blobs, size) = (summary.blobs_copied, human_bytes(summary.bytes_copied));
    let (mounted, present) = (summary.blobs_mounted, summary.blobs_present);
    match summary.outcomes.first() {
        None => format!("would upload {blobs} ({size}), mount {mounted}; {present} present"),
        Some(done) => format!(
            "ok (manifest {}): {blobs} uploaded ({size}), {mounted} mounted, {present} present",
            done.manifest.short()
        ),
    }
}

/// The table printed at the end: a row per transfer.
fn table(rows: &[Row]) -> String {
    let header = ["LINE", "SOURCE", "TARGET", "RESULT"].map(String::from);
    let cells: Vec<[String; 4]> = std::iter::once(header)
        .chain(rows.iter().map(|row| {
            let result = outcome(&row.result);
            [
                row.line.to_string(),
                row.source.clone(),
                row.target.clone(),
                result,
            ]
        }))
        .collect();
    let width = |column: usize| {
        cells
            .iter()
            .map(|row| row[column].chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2)];
    let mut text = String::new();
    for [line, source, target, result] in &cells {
        text.push_str(&format!(
            "{line:<w0$}  {source:<w1$}  {target:<w2$}  {result}\n",
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        ));
    }
    text
}

/// The JSON document `--json` prints at the end.
fn json_result(rows: &[Row], dry_run: bool) -> serde_json::Value {
    let jobs: Vec<serde_json::Value> = (rows.iter())
        .map(|row| {
            let mut job = json!({ "line": row.line, "source": row.source, "target": row.target });
            match &row.result {
                Ok(summary) => {
                    job["ok"] = true.into();
                    job["manifest"] = summary
                        .outcomes
                        .first()
                        .map(|o| o.manifest.to_string())
                        .into();
                    job["blobs_copied"] = summary.blobs_copied.into();
                    job["blobs_mounted"] = summary.blobs_mounted.into();
                    job["blobs_present"] = summary.blobs_present.into();
                    job["bytes_copied"] = summary.bytes_copied.into();
                }
                Err(error) => {
                    job["ok"] = false.into();
                    job["error"] = error.to_string().into();
                    job["exit_code"] = error.exit_code().into();
                }
            }
            job
        })
        .collect();
    let failed = rows.iter().filter(|row| row.result.is_err()).count();
    json!({
        "event": "result",
        "command": "sync",
        "ok": failed == 0,
        "dry_run": dry_run,
        "failed": failed,
        "jobs": jobs,
    })
}
