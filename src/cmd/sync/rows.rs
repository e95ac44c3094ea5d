//! The rows of a sync under way, kept out of memory: each unit's rows are shown
//! ([`Shown`]) as the unit ends and spooled in plan order; a unit that ends before an earlier
//! one waits in a second spool, only where it begins held, until the earlier one is in. What
//! memory holds is the counts the end needs (widths, failures, the first failure's error),
//! whatever the number of images.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Mutex, PoisonError};

use crate::error::{Error, Result};

use super::results::{Row, Shown, header_widths};
use super::spool::Spool;

/// The rows of the units of a plan, given in any order by the workers that ran them.
pub struct Rows {
    kept: Mutex<Kept>,
}

/// What [`Rows`] holds.
struct Kept {
    /// Every unit's rows before `next`, in plan order: a record per unit.
    ordered: Spool,
    /// The units that ended before an earlier one, each where its record begins in `waiting`.
    early: BTreeMap<usize, u64>,
    waiting: Spool,
    /// The unit whose record goes to `ordered` next.
    next: usize,
    tally: Tally,
    /// Why a record could not be spooled, if one could not.
    broken: Option<io::Error>,
}

/// What the end of a sync needs besides the rows themselves.
struct Tally {
    /// How wide the table's first three columns are.
    widths: [usize; 3],
    rows: usize,
    failed: usize,
    /// The list lines with a failed row.
    failed_lines: BTreeSet<usize>,
    /// The failed row first in plan order: its unit, line and error.
    first_failure: Option<(usize, usize, Error)>,
}

impl Rows {
    /// Rows for a plan, none given yet.
    pub fn new() -> Rows {
        let tally = Tally {
            widths: header_widths(),
            rows: 0,
            failed: 0,
            failed_lines: BTreeSet::new(),
            first_failure: None,
        };
        Rows {
            kept: Mutex::new(Kept {
                ordered: Spool::default(),
                early: BTreeMap::new(),
                waiting: Spool::default(),
                next: 0,
                tally,
                broken: None,
            }),
        }
    }

    /// Takes the rows of unit `unit` (each unit's once, in any order).
    pub fn add(&self, unit: usize, rows: Vec<Row>) {
        let line = rows.first().map(|row| row.line);
        let shown: Vec<Shown> = rows.iter().map(Shown::of).collect();
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        for row in rows {
            kept.tally.count(unit, row);
        }
        for shown in &shown {
            shown.widen(&mut kept.tally.widths);
        }
        if let Err(e) = kept.spool(unit, (line, &shown)) {
            kept.broken.get_or_insert(e);
        }
    }

    /// The rows of every unit, with `failed` (the rows of lines that could not run, in list
    /// order) before those of the units of their line.
    pub fn finish(self, failed: Vec<Row>) -> Result<Finished> {
        let kept = self
            .kept
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        let spooling = |e| Error::io("keeping the sync's rows in the temporary folder", e);
        if let Some(e) = kept.broken {
            return Err(spooling(e));
        }
        if !kept.early.is_empty() {
            let e = io::Error::other("a unit's rows never came after those of a later one");
            return Err(spooling(e));
        }
        let mut tally = kept.tally;
        let before: Vec<(usize, Shown)> = (failed.iter())
            .map(|row| (row.line, Shown::of(row)))
            .collect();
        for (_, shown) in &before {
            shown.widen(&mut tally.widths);
        }
        for row in failed.into_iter().rev() {
            // Before every unit: the first of them, if any, is the first failure.
            tally.count_before_units(row);
        }
        Ok(Finished {
            ordered: kept.ordered,
            before,
            tally,
        })
    }
}

impl Kept {
    /// Spools unit `unit`'s rows with their line, and every waiting unit they let through.
    fn spool(&mut self, unit: usize, rows: (Option<usize>, &[Shown])) -> io::Result<()> {
        let record = serde_json::to_vec(&rows)?;
        if unit != self.next {
            let at = self.waiting.push(&record)?;
            self.early.insert(unit, at);
            return Ok(());
        }
        self.ordered.push(&record)?;
        self.next += 1;
        while let Some(mut at) = self.early.remove(&self.next) {
            let record = self.waiting.read(&mut at)?;
            self.ordered.push(&record)?;
            self.next += 1;
        }
        Ok(())
    }
}

impl Tally {
    /// Counts `row`, of unit `unit`.
    fn count(&mut self, unit: usize, row: Row) {
        self.tally(row, unit, |(first_unit, _)| unit < first_unit);
    }

    /// Counts the failed `row` of a line that could not run, shown before every unit of
    /// its line (given last first).
    fn count_before_units(&mut self, row: Row) {
        let line = row.line;
        self.tally(row, 0, |(_, first_line)| line <= first_line);
    }

    /// Counts `row`; when it failed, its error becomes the first failure (of unit `unit`)
    /// if there is none yet, or if `earlier` says it comes before the one there is (given
    /// that one's unit and line).
    fn tally(&mut self, row: Row, unit: usize, earlier: impl Fn((usize, usize)) -> bool) {
        self.rows += 1;
        let Err(error) = row.result else { return };
        self.failed += 1;
        self.failed_lines.insert(row.line);
        let first = self.first_failure.as_ref();
        if first.is_none_or(|(first_unit, first_line, _)| earlier((*first_unit, *first_line))) {
            self.first_failure = Some((unit, row.line, error));
        }
    }
}

/// Every row of a sync, to be written in list order, and what the end says of them.
pub struct Finished {
    ordered: Spool,
    /// The rows of lines that could not run, each with its line.
    before: Vec<(usize, Shown)>,
    tally: Tally,
}

impl Finished {
    /// Calls `each` with every row in list order (a line's rows that could not run first).
    pub fn each(&self, each: &mut dyn FnMut(&Shown) -> io::Result<()>) -> io::Result<()> {
        let mut before = self.before.iter().peekable();
        let mut at = 0;
        while at < self.ordered.end() {
            let (line, unit): (Option<usize>, Vec<Shown>) =
                serde_json::from_slice(&self.ordered.read(&mut at)?)?;
            let comes_first = |(first, _): &&(usize, Shown)| line.is_some_and(|l| *first <= l);
            while let Some((_, shown)) = before.next_if(comes_first) {
                each(shown)?;
            }
            unit.iter().try_for_each(&mut *each)?;
        }
        before.try_for_each(|(_, shown)| each(shown))
    }

    /// How wide the table's first three columns are.
    pub fn widths(&self) -> [usize; 3] {
        self.tally.widths
    }

    /// How many rows there are, and how many failed.
    pub fn counts(&self) -> (usize, usize) {
        (self.tally.rows, self.tally.failed)
    }

    /// The list lines with a failed row, in order.
    pub fn failed_lines(&self) -> impl Iterator<Item = usize> + '_ {
        self.tally.failed_lines.iter().copied()
    }

    /// The error of the failed row first in list order, with its line.
    pub fn first_failure(self) -> Option<(usize, Error)> {
        (self.tally.first_failure).map(|(_, line, error)| (line, error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::error::Error;

    use super::super::results::Synced;

    fn row(line: usize, source: &str, failed: bool) -> Row {
        Row {
            line,
            source: source.into(),
            target: format!("mirror/{source}"),
            result: match failed {
                true => Err(Error::NotFound(format!("{source}: not there"))),
                false => Ok(Synced::Present(Digest::of(source.as_bytes()))),
            },
        }
    }

    fn sources(finished: &Finished) -> Vec<String> {
        let mut sources = Vec::new();
        let mut each = |shown: &Shown| {
            sources.push(shown.cells[1].clone());
            Ok(())
        };
        finished.each(&mut each).unwrap();
        sources
    }

    #[test]
    fn rows_given_out_of_order_come_back_in_list_order() {
        let rows = Rows::new();
        rows.add(2, vec![row(3, "c:1", false)]);
        rows.add(1, vec![row(2, "b:1", true), row(2, "b:2", false)]);
        rows.add(0, vec![row(1, "a:1", false)]);
        rows.add(3, vec![row(5, "e:1", true)]);
        let failed = vec![
            row(2, "b-line", true),
            row(4, "d-line", true),
            row(9, "i", true),
        ];
        let finished = rows.finish(failed).unwrap();
        assert_eq!(
            sources(&finished),
            ["a:1", "b-line", "b:1", "b:2", "c:1", "d-line", "e:1", "i"]
        );
        assert_eq!(finished.counts(), (8, 5));
        assert_eq!(finished.failed_lines().collect::<Vec<_>>(), [2, 4, 5, 9]);
        let (line, error) = finished.first_failure().unwrap();
        assert_eq!((line, error.to_string()), (2, "b-line: not there".into()));
    }

    #[test]
    fn the_first_failure_is_the_first_in_list_order_not_in_time() {
        let rows = Rows::new();
        rows.add(1, vec![row(2, "late", true)]);
        rows.add(0, vec![row(1, "early", true)]);
        let finished = rows.finish(vec![row(3, "after", true)]).unwrap();
        assert_eq!(finished.widths()[1], "SOURCE".len());
        let (line, error) = finished.first_failure().unwrap();
        assert_eq!((line, error.to_string()), (1, "early: not there".into()));
    }
}
