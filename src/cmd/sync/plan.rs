//! A sync's plan: the units of work its lines came to, in list order, handed out one at a
//! time. A whole repository is kept as the names of its tags, spooled to a file in plan
//! order and each made into its unit only when its turn comes, so that a plan holds no more
//! in memory for a repository of 5000 tags than for one of five.

use std::sync::{Mutex, PoisonError};

use crate::error::{Error, Result};
use crate::reference::Reference;

use super::results::Row;
use super::spool::Spool;
use super::work::{Named, Work, under_to};

/// The units of a sync, numbered from 0 in list order.
pub struct Plan<'a> {
    /// Where lines that give only SOURCE go.
    to: Option<&'a str>,
    units: Vec<Unit>,
    /// The number of each unit's first work.
    starts: Vec<usize>,
    len: usize,
    /// The tags of every whole repository, one record each, in plan order.
    names: Spool,
    /// The next work to hand out.
    cursor: Mutex<Cursor>,
}

/// Where a plan's handing out stands.
#[derive(Default)]
struct Cursor {
    /// The number of the next work.
    next: usize,
    /// Where the next tag's record begins in the plan's spool; `None` once a tag of the
    /// current repository could not be read (its later ones cannot be found).
    tag_at: Option<u64>,
}

/// What a line comes to: one unit, or a whole repository's tags.
pub enum Unit {
    One(Work),
    Tags(Tags),
}

/// The tags of a whole repository to mirror, each an image, and where they go.
pub struct Tags {
    /// The list line.
    pub line: usize,
    /// The repository (no tag).
    pub source: Named,
    /// The repository its TARGET named; without one, each image goes under --to.
    pub target: Option<Named>,
    /// How many of its tags the plan keeps (each checked already: [`Tags::work`] gave it a
    /// unit), given to [`Plan::keep_tag`] from `start` on.
    pub count: usize,
    /// Where its first tag's record begins (the [`Plan::tags_mark`] before it was listed).
    pub start: u64,
}

/// What one listed tag of a whole repository comes to.
pub enum Tagged {
    Work(Work),
    /// A failed row: the registry listed a tag that is not one.
    LeftOut(Row),
}

impl<'a> Plan<'a> {
    /// An empty plan; lines without TARGET go under `to`.
    pub fn new(to: Option<&'a str>) -> Plan<'a> {
        Plan {
            to,
            units: Vec::new(),
            starts: Vec::new(),
            len: 0,
            names: Spool::default(),
            cursor: Mutex::default(),
        }
    }

    /// Keeps `tag` for the whole repository pushed next (its tags begin at the
    /// [`Plan::tags_mark`] said before its first).
    pub fn keep_tag(&mut self, tag: &str) -> Result<()> {
        (self.names.push(tag.as_bytes()).map(drop))
            .map_err(|e| Error::io("keeping a repository's tags in the temporary folder", e))
    }

    /// Where the tags kept for the next whole repository begin: what [`Plan::forget_tags`]
    /// goes back to when its line fails.
    pub fn tags_mark(&self) -> u64 {
        self.names.end()
    }

    /// Forgets the tags kept since `mark`, of a line that failed. Where the spool cannot be
    /// cut, they stay, passed over: each repository's tags are read from where they begin.
    pub fn forget_tags(&mut self, mark: u64) {
        let _ = self.names.truncate(mark);
    }

    /// Adds `unit` after the others (a whole repository's tags kept before).
    pub fn push(&mut self, unit: Unit) {
        self.starts.push(self.len);
        self.len += match &unit {
            Unit::One(_) => 1,
            Unit::Tags(tags) => tags.count,
        };
        self.units.push(unit);
    }

    /// How many works it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The next work to run and its number, one caller at a time; the failed row when it
    /// cannot be made. `None` when every work was handed out.
    pub fn next(&self) -> Option<(usize, std::result::Result<Work, Row>)> {
        let mut cursor = self.cursor.lock().unwrap_or_else(PoisonError::into_inner);
        let i = cursor.next;
        if i >= self.len {
            return None;
        }
        cursor.next += 1;
        let unit = self.starts.partition_point(|start| *start <= i) - 1;
        let tags = match &self.units[unit] {
            Unit::One(work) => return Some((i, Ok(work.clone()))),
            Unit::Tags(tags) => tags,
        };
        if i == self.starts[unit] {
            cursor.tag_at = Some(tags.start);
        }
        let tag = match &mut cursor.tag_at {
            Some(at) => self.names.read(at),
            None => Err(std::io::Error::other("an earlier one could not be read")),
        };
        if tag.is_err() {
            cursor.tag_at = None;
        }
        drop(cursor);
        let tag = match tag {
            Ok(record) => String::from_utf8_lossy(&record).into_owned(),
            Err(e) => {
                let what = format!(
                    "reading a tag of {} from the temporary folder",
                    tags.source.1
                );
                return Some((i, Err(tags.failed(None, Error::io(what, e)))));
            }
        };
        let work = match tags.work(self.to, &tag) {
            Ok(Tagged::Work(work)) => Ok(work),
            Ok(Tagged::LeftOut(row)) => Err(row),
            Err(error) => Err(tags.failed(Some(&tag), error)),
        };
        Some((i, work))
    }
}

impl Tags {
    /// The work for the listed `tag`, to the target repository or under `to`; a failed row
    /// when the registry listed a tag that is not one.
    pub fn work(&self, to: Option<&str>, tag: &str) -> Result<Tagged> {
        let (scheme, source) = &self.source;
        // A tag the registry lists is checked like any other before it names anything.
        let written = format!("{}/{}:{tag}", source.registry(), source.repository());
        let tagged = match Reference::parse_url(&format!("https://{written}")) {
            Ok((_, tagged)) => tagged,
            Err(e) => {
                // Warned of with the lines that cannot run, before any copy starts.
                return Ok(Tagged::LeftOut(Row {
                    line: self.line,
                    source: written,
                    target: (self.target.as_ref())
                        .map(|(_, to)| format!("{}/{}:{tag}", to.registry(), to.repository()))
                        .unwrap_or_default(),
                    result: Err(Error::BadInput(format!(
                        "the registry lists a tag that is not one, left out: {e}"
                    ))),
                }));
            }
        };
        let target = match &self.target {
            Some((target_scheme, named)) => {
                let text = format!("{}/{}:{tag}", named.registry(), named.repository());
                (
                    *target_scheme,
                    Reference::parse(&text).map_err(Error::Usage)?,
                )
            }
            None => under_to(to, &tagged)?,
        };
        Ok(Tagged::Work(Work::Image {
            line: self.line,
            source: (*scheme, tagged),
            target,
        }))
    }

    /// The failed row of its `tag` (of the repository when the tag could not be read).
    fn failed(&self, tag: Option<&str>, error: Error) -> Row {
        let name = self.source.1.name();
        Row {
            line: self.line,
            source: match tag {
                None => name,
                Some(tag) => format!("{name}:{tag}"),
            },
            target: String::new(),
            result: Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps `tags` in `plan` and pushes them as the whole repository of list line `line`.
    fn push_tags(plan: &mut Plan<'_>, line: usize, tags: &[&str]) {
        let start = plan.tags_mark();
        for tag in tags {
            plan.keep_tag(tag).unwrap();
        }
        let source = Reference::parse("registry.example.com/src/app").unwrap();
        plan.push(Unit::Tags(Tags {
            line,
            source: (None, source),
            target: None,
            count: tags.len(),
            start,
        }));
    }

    fn image(work: std::result::Result<Work, Row>) -> (usize, String, String) {
        match work {
            Ok(Work::Image {
                line,
                source,
                target,
            }) => (line, source.1.to_string(), target.1.to_string()),
            _ => panic!("not an image"),
        }
    }

    #[test]
    fn works_are_handed_out_across_units_in_list_order() {
        let mut plan = Plan::new(Some("mirror.example.com/m"));
        push_tags(&mut plan, 1, &["v1", "v2"]);
        push_tags(&mut plan, 2, &[]);
        // A line that failed after keeping some of its tags leaves none behind.
        let mark = plan.tags_mark();
        plan.keep_tag("v9").unwrap();
        plan.forget_tags(mark);
        push_tags(&mut plan, 3, &["v3"]);
        assert_eq!(plan.len(), 3);
        let of = |tag: &str| {
            (
                format!("registry.example.com/src/app:{tag}"),
                format!("mirror.example.com/m/src/app:{tag}"),
            )
        };
        for (i, (line, tag)) in [(1, "v1"), (1, "v2"), (3, "v3")].into_iter().enumerate() {
            let (source, target) = of(tag);
            let (number, work) = plan.next().unwrap();
            assert_eq!((number, image(work)), (i, (line, source, target)));
        }
        assert!(plan.next().is_none());
    }

    #[test]
    fn each_repository_reads_its_tags_from_where_they_begin() {
        let mut plan = Plan::new(Some("mirror.example.com/m"));
        push_tags(&mut plan, 1, &["v1"]);
        // A failed line's tags that could not be forgotten are passed over.
        plan.keep_tag("left-behind").unwrap();
        push_tags(&mut plan, 2, &["v2"]);
        let tags: Vec<String> = std::iter::from_fn(|| plan.next())
            .map(|(_, work)| image(work).1)
            .collect();
        assert_eq!(
            tags,
            [
                "registry.example.com/src/app:v1",
                "registry.example.com/src/app:v2"
            ]
        );
    }

    #[test]
    fn a_tag_that_cannot_go_under_to_is_a_failed_row_of_its_line() {
        let mut plan = Plan::new(None);
        push_tags(&mut plan, 4, &["v1"]);
        let Some((0, Err(row))) = plan.next() else {
            panic!("made without --to")
        };
        assert_eq!(
            (row.line, row.source.as_str()),
            (4, "registry.example.com/src/app:v1")
        );
        assert_eq!(row.result.err().map(|e| e.exit_code()), Some(2));
    }
}
