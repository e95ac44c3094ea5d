//! A sync under way: each line run as a push (an archive) or a copy (a registry image), the
//! connections kept for the run, a row per transfer.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};

use crate::archive::Input;
use crate::error::{Error, Result};
use crate::progress::Board;
use crate::reference::{self, Reference};
use crate::registry::{Registry, RegistrySource};
use crate::transfer::Summary;

use super::super::remote::target_reference;
use super::super::seed::seed_reference;
use super::super::upload::{Uploads, looks_like_a_file, report_upload};
use super::list;

/// One transfer of a sync: a line, or one image of an archive on a line that uses --to.
pub struct Row {
    pub line: usize,
    pub source: String,
    pub target: String,
    pub result: Result<Summary>,
}

/// A sync under way: what every job shares, the connections made so far, the rows done.
pub struct Batch<'a> {
    uploads: &'a Uploads<'a>,
    to: Option<&'a str>,
    /// The folder relative archive paths start at.
    base: PathBuf,
    connections: Connections,
    /// The transfers done so far.
    pub rows: Vec<Row>,
}

impl<'a> Batch<'a> {
    /// A sync of jobs sharing `uploads`: lines without a TARGET go under `to`, relative
    /// archive paths start at `base`.
    pub fn new(uploads: &'a Uploads<'a>, to: Option<&'a str>, base: PathBuf) -> Batch<'a> {
        Batch {
            uploads,
            to,
            base,
            connections: Connections::default(),
            rows: Vec::new(),
        }
    }

    /// Runs one line of the list, adding a row per transfer (a failed row when the line is
    /// wrong).
    pub fn line(&mut self, number: usize, line: &str) {
        let (source, target) = match list::fields(line) {
            Ok(fields) => fields,
            Err(error) => return self.fail(number, line, "", error),
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
        let session = self.uploads.run.cache.begin()?;
        let archive = self.uploads.open_archive(&session, &input)?;
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
                let board = self.uploads.run.board();
                let summary =
                    self.uploads
                        .upload(&archive.source(image), registry, &target, &board)?;
                report(self.uploads, ("push", "pushed"), &target, &summary, &board)?;
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
        let uploads = self.uploads;
        let connections = &mut self.connections;
        let ends = match uploads.mirrors.source(&source_reference) {
            Some(mirrored) => connections
                .open(uploads, [ends[1]])
                .map(|[to]| (mirrored, to)),
            None => connections
                .open(uploads, ends)
                .and_then(|[from, to]| Ok((RegistrySource::new(from, &source_reference)?, to))),
        };
        let result = ends.and_then(|(remote, to)| {
            let board = uploads.run.board();
            let summary = uploads.copy(
                (&remote, &source_reference),
                false,
                (to, &target_reference),
                &board,
            )?;
            report(
                self.uploads,
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
                .run
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
