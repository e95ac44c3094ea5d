//! A sync's rows, one per image and how it ended (copied, present with nothing sent, or
//! failed and why), and how a sync ends: their table on stdout, or with `--json` one document.

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
    /// Copied or pushed (or, in a dry run, would have been).
    Copied(Summary),
    /// The destination already held this manifest: nothing was sent.
    Present(Digest),
}

impl Synced {
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

/// The table printed at the end: a row per transfer, each cell inert (a tag the registry
/// listed, an error it sent, may hold anything).
pub fn table(rows: &[Row]) -> String {
    let header = ["LINE", "SOURCE", "TARGET", "RESULT"].map(String::from);
    let cells: Vec<[String; 4]> = std::iter::once(header)
        .chain(rows.iter().map(|row| {
            let result = outcome(&row.result);
            [
                row.line.to_string(),
                inert(&row.source).to_string(),
                inert(&row.target).to_string(),
                inert(&result).to_string(),
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

/// The JSON document `--json` prints at the end: a job per image, each with its `outcome`
/// (`copied`, `present`, `failed`) and what the other commands' results say (`manifests`,
/// `blobs_copied`, ...) or its error.
pub fn json_result(rows: &[Row], dry_run: bool) -> serde_json::Value {
    let jobs: Vec<serde_json::Value> = (rows.iter())
        .map(|row| {
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
        let table = table(&[row]);
        assert_eq!(table.lines().count(), 2, "{table}");
        assert!(
            table.contains("FAILED (exit 6): relies on 2 blobs: (more above)"),
            "{table}"
        );
    }
}
