//! A sync's rows, one per image and how it ended (copied, present with nothing sent, or
//! failed and why), and how a sync ends: their table on stdout, or with `--json` one document,
//! each written row by row.

use std::io::Write;

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
    /// outcome what the table and the JSON say (see [`Synced::copied`]).
    Copied(Box<Summary>),
    /// The destination already held this manifest: nothing was sent.
    Present(Digest),
}

impl Synced {
    /// A copy's row, kept to the end of the run: what was stored and which subjects went
    /// with it are dropped, so that a row stays small however many images a sync copies.
    pub fn copied(mut summary: Summary) -> Synced {
        for outcome in &mut summary.outcomes {
            outcome.stored = Vec::new();
            outcome.subjects = Vec::new();
        }
        summary.outcomes.shrink_to_fit();
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

/// The table printed at the end, written to `out` row by row: a row per transfer, each cell
/// inert (a tag the registry listed, an error it sent, may hold anything).
pub fn write_table(rows: &[Row], out: &mut dyn Write) -> std::io::Result<()> {
    let header = ["LINE", "SOURCE", "TARGET", "RESULT"].map(String::from);
    let cells = |row: &Row| {
        [
            row.line.to_string(),
            inert(&row.source).to_string(),
            inert(&row.target).to_string(),
            inert(&outcome(&row.result)).to_string(),
        ]
    };
    // Two passes, the cells made again in the second: no row's text is held for the table.
    let mut widths = header.each_ref().map(|cell| cell.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(cells(row)) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let [w0, w1, w2, _] = widths;
    for [line, source, target, result] in std::iter::once(header).chain(rows.iter().map(cells)) {
        writeln!(out, "{line:<w0$}  {source:<w1$}  {target:<w2$}  {result}")?;
    }
    Ok(())
}

/// The JSON document `--json` prints at the end, one line written to `out` job by job: a job
/// per image, each with its `outcome` (`copied`, `present`, `failed`) and what the other
/// commands' results say (`manifests`, `blobs_copied`, ...) or its error. Its keys come in
/// the order serde_json gives an object's (sorted).
pub fn write_json(rows: &[Row], dry_run: bool, out: &mut dyn Write) -> std::io::Result<()> {
    let failed = rows.iter().filter(|row| row.result.is_err()).count();
    write!(
        out,
        r#"{{"command":"sync","dry_run":{dry_run},"event":"result","failed":{failed},"jobs":["#
    )?;
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, &json_job(row))?;
    }
    writeln!(out, r#"],"ok":{}}}"#, failed == 0)
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
        let mut out = Vec::new();
        write_table(&[row], &mut out).unwrap();
        let table = String::from_utf8(out).unwrap();
        assert_eq!(table.lines().count(), 2, "{table}");
        assert!(
            table.contains("FAILED (exit 6): relies on 2 blobs: (more above)"),
            "{table}"
        );
    }
}
