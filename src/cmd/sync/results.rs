//! A sync's rows, one per image and how it ended (copied, present with nothing sent, or
//! failed and why), each made at once into what the closing table and JSON document say of
//! it ([`Shown`]); and those two writers, fed row by row.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::digest::Digest;
use crate::error::Result;
use crate::inert::inert;
use crate::progress::{Progress, human_bytes};
use crate::transfer::Summary;

use crate::run::context::json_summary;

/// One image of a sync and how it ended.
pub struct Row {
    pub line: usize,
    pub source: String,
    pub target: String,
    pub result: Result<Synced>,
}

/// What a sync did with one image.
pub enum Synced {
    /// Copied or pushed (or, in a dry run, would have been): the counts, and of each
    /// outcome what the table and the JSON say.
    Copied(Box<Summary>),
    /// The destination already held this manifest: nothing was sent.
    Present(Digest),
}

impl Synced {
    /// A copy's row.
    pub fn copied(summary: Summary) -> Synced {
        Synced::Copied(Box::new(summary))
    }

    /// The manifest the destination holds, if it was written or found.
    pub fn manifest(&self) -> Option<&Digest> {
        match self {
            Synced::Copied(summary) => summary.outcomes.first().map(|o| &o.manifest),
            Synced::Present(digest) => Some(digest),
        }
    }
}

/// What the end of a sync says of one row: its table cells (each inert: a tag the registry
/// listed, an error it sent, may hold anything), its job in the JSON document, and its line
/// of the digest file. Made when the row is done, and spooled.
#[derive(Serialize, Deserialize)]
pub struct Shown {
    /// LINE, SOURCE, TARGET, RESULT.
    pub cells: [String; 4],
    /// Its job in the `--json` document.
    pub job: serde_json::Value,
    /// `DIGEST TARGET`, when the destination holds the image.
    pub digest_line: Option<String>,
}

impl Shown {
    /// What is shown of `row`.
    pub fn of(row: &Row) -> Shown {
        let digest = row.result.as_ref().ok().and_then(Synced::manifest);
        Shown {
            cells: [
                row.line.to_string(),
                inert(&row.source).to_string(),
                inert(&row.target).to_string(),
                inert(&outcome(&row.result)).to_string(),
            ],
            job: json_job(row),
            digest_line: digest.map(|digest| format!("{digest} {}", row.target)),
        }
    }

    /// Makes the table's first three columns, `widths` wide, wide enough for its cells (in
    /// characters).
    pub fn widen(&self, widths: &mut [usize; 3]) {
        for (width, cell) in widths.iter_mut().zip(&self.cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
}

/// The table's header.
const HEADER: [&str; 4] = ["LINE", "SOURCE", "TARGET", "RESULT"];

/// The narrowest the table's first three columns can be: their headers'.
pub fn header_widths() -> [usize; 3] {
    [HEADER[0], HEADER[1], HEADER[2]].map(str::len)
}

/// The table printed at the end, a row per transfer, its first three columns `widths` wide;
/// `rows` calls its argument with each row in turn.
pub fn write_table(
    widths: [usize; 3],
    rows: impl FnOnce(&mut dyn FnMut(&Shown) -> io::Result<()>) -> io::Result<()>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let [w0, w1, w2] = widths;
    let [line, source, target, result] = HEADER;
    writeln!(out, "{line:<w0$}  {source:<w1$}  {target:<w2$}  {result}")?;
    rows(&mut |shown| {
        let [line, source, target, result] = &shown.cells;
        writeln!(out, "{line:<w0$}  {source:<w1$}  {target:<w2$}  {result}")
    })
}

/// The JSON document `--json` prints at the end, one line: a job per image, each with its
/// `outcome` (`copied`, `present`, `failed`) and what the other commands' results say
/// (`manifests`, `blobs_copied`, ...) or its error; `failed` of them failed. Its keys come in
/// the order serde_json gives an object's (sorted).
pub fn write_json(
    (dry_run, failed): (bool, usize),
    rows: impl FnOnce(&mut dyn FnMut(&Shown) -> io::Result<()>) -> io::Result<()>,
    out: &mut dyn Write,
) -> io::Result<()> {
    write!(
        out,
        r#"{{"command":"sync","dry_run":{dry_run},"event":"result","failed":{failed},"jobs":["#
    )?;
    let mut first = true;
    rows(&mut |shown| {
        if !std::mem::take(&mut first) {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, &shown.job).map_err(io::Error::from)
    })?;
    writeln!(out, r#"],"ok":{}}}"#, failed == 0)
}

/// Says at once, on stderr, why each failed row failed.
pub fn say_failures(progress: Progress, rows: &[Row]) {
    for row in rows {
        if let Err(error) = &row.result {
            progress.warn(format_args!("line {}: {error}", row.line));
        }
    }
}

/// What a row's result says in the table.
fn outcome(result: &Result<Synced>) -> String {
    let summary = match result {
        Err(error) => {
            // A table row is one line: a longer explanation was said when it happened.
            let said = error.to_string();
            let mut lines = said.lines();
            let first = lines.next().unwrap_or_default();
            let more = if lines.next().is_some() {
                " (more above)"
            } else {
                ""
            };
            return format!("FAILED (exit {}): {first}{more}", error.exit_code());
        }
        Ok(Synced::Present(digest)) => {
            return format!("present (manifest {}): nothing sent", digest.short());
        }
        Ok(Synced::Copied(summary)) => summary,
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

/// One job of the JSON document.
fn json_job(row: &Row) -> serde_json::Value {
    let mut job = json!({ "line": row.line, "source": row.source, "target": row.target });
    match &row.result {
        Ok(Synced::Copied(summary)) => {
            job["ok"] = true.into();
            job["outcome"] = "copied".into();
            if let (Some(job), serde_json::Value::Object(fields)) =
                (job.as_object_mut(), json_summary(summary))
            {
                job.extend(fields);
            }
        }
        Ok(Synced::Present(digest)) => {
            job["ok"] = true.into();
            job["outcome"] = "present".into();
            job["manifests"] = json!([digest.to_string()]);
        }
        Err(error) => {
            job["ok"] = false.into();
            job["outcome"] = "failed".into();
            job["error"] = error.to_string().into();
            job["exit_code"] = error.exit_code().into();
        }
    }
    job
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    /// The table of `rows`, as the end of a sync writes it.
    fn table(rows: &[Row]) -> String {
        let shown: Vec<Shown> = rows.iter().map(Shown::of).collect();
        let mut widths = header_widths();
        shown.iter().for_each(|shown| shown.widen(&mut widths));
        let mut out = Vec::new();
        let each =
            |write: &mut dyn FnMut(&Shown) -> io::Result<()>| shown.iter().try_for_each(write);
        write_table(widths, each, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_long_failure_keeps_its_row_on_one_line() {
        let row = Row {
            line: 3,
            source: "images.tar".into(),
            target: String::new(),
            result: Err(Error::NotFound(
                "relies on 2 blobs:\n  sha256:a\n  sha256:b".into(),
            )),
        };
        let table = table(&[row]);
        assert_eq!(table.lines().count(), 2, "{table}");
        assert!(
            table.contains("FAILED (exit 6): relies on 2 blobs: (more above)"),
            "{table}"
        );
    }

    #[test]
    fn columns_are_as_wide_as_their_widest_cell_and_outside_text_is_inert() {
        let row = |line, source: &str| Row {
            line,
            source: source.into(),
            target: "mirror/app:v1".into(),
            result: Ok(Synced::Present(Digest::of(b"manifest"))),
        };
        let table = table(&[row(1, "r/app:v1\x1b[2J"), row(12, "r/a:2")]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(!table.contains('\x1b'), "{table}");
        let target_column = |line: &str| line.find("mirror/app:v1").or(line.find("TARGET"));
        assert_eq!(target_column(lines[0]), target_column(lines[1]), "{table}");
        assert_eq!(target_column(lines[1]), target_column(lines[2]), "{table}");
    }
}
