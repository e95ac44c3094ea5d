//! A sync's plan: the units of work its lines came to, in list order. A whole repository is
//! kept as the names of its tags, each made into its unit only when its turn comes, so that a
//! plan grows by a tag's name per tag, never by a unit of work.

use crate::error::{Error, Result};
use crate::reference::Reference;

use super::results::Row;
use super::work::{Named, Work, under_to};

/// The units of a sync, numbered from 0 in list order.
pub struct Plan<'a> {
    /// Where lines that give only SOURCE go.
    to: Option<&'a str>,
    units: Vec<Unit>,
    /// The number of each unit's first work.
    starts: Vec<usize>,
    len: usize,
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
    /// The tags, each checked already ([`Tags::work`] gave it a unit).
    pub tags: Vec<String>,
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
        }
    }

    /// Adds `unit` after the others.
    pub fn push(&mut self, unit: Unit) {
        self.starts.push(self.len);
        self.len += match &unit {
            Unit::One(_) => 1,
            Unit::Tags(tags) => tags.tags.len(),
        };
        self.units.push(unit);
    }

    /// How many works it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Work `i` (below [`Plan::len`]); the failed row when it cannot be made.
    pub fn work(&self, i: usize) -> std::result::Result<Work, Row> {
        let unit = self.starts.partition_point(|start| *start <= i) - 1;
        match &self.units[unit] {
            Unit::One(work) => Ok(work.clone()),
            Unit::Tags(tags) => {
                let tag = &tags.tags[i - self.starts[unit]];
                match tags.work(self.to, tag) {
                    Ok(Tagged::Work(work)) => Ok(work),
                    Ok(Tagged::LeftOut(row)) => Err(row),
                    Err(error) => Err(Row {
                        line: tags.line,
                        source: format!("{}:{tag}", tags.source.1.name()),
                        target: String::new(),
                        result: Err(error),
                    }),
                }
            }
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(line: usize, tags: &[&str]) -> Unit {
        let source = Reference::parse("registry.example.com/src/app").unwrap();
        Unit::Tags(Tags {
            line,
            source: (None, source),
            target: None,
            tags: tags.iter().map(|tag| tag.to_string()).collect(),
        })
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
    fn works_are_numbered_across_units_in_list_order() {
        let mut plan = Plan::new(Some("mirror.example.com/m"));
        plan.push(tags(1, &["v1", "v2"]));
        plan.push(tags(2, &[]));
        plan.push(tags(3, &["v3"]));
        assert_eq!(plan.len(), 3);
        let of = |tag: &str| {
            (
                format!("registry.example.com/src/app:{tag}"),
                format!("mirror.example.com/m/src/app:{tag}"),
            )
        };
        for (i, (line, tag)) in [(1, "v1"), (1, "v2"), (3, "v3")].into_iter().enumerate() {
            let (source, target) = of(tag);
            assert_eq!(image(plan.work(i)), (line, source, target));
        }
    }

    #[test]
    fn a_tag_that_cannot_go_under_to_is_a_failed_row_of_its_line() {
        let mut plan = Plan::new(None);
        plan.push(tags(4, &["v1"]));
        let Err(row) = plan.work(0) else {
            panic!("made without --to")
        };
        assert_eq!(
            (row.line, row.source.as_str()),
            (4, "registry.example.com/src/app:v1")
        );
        assert_eq!(row.result.err().map(|e| e.exit_code()), Some(2));
    }
}
