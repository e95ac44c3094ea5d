//! What a sync's lines ask for, unit by unit: an archive (pushed whole, read once), or one
//! registry image to copy. A line naming a repository without a tag or digest stands for
//! every tag it has (the tags API, every page), kept or left out by `--tags` and
//! `--exclude-tags`; `--shard K/N` then keeps this machine's share.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::archive::is_archive_path;
use crate::error::{Error, Result};
use crate::manifest::fallback::subject_of_tag;
use crate::progress::count;
use crate::reference::{self, Reference};
use crate::registry::Registry;

use super::claims::Claims;
use super::connections::Connections;
use super::glob::TagFilter;
use super::list;
use super::plan::{Plan, Tagged, Tags, Unit};
use super::results::Row;
use super::shard::Shard;
use crate::args::seed_reference;
use crate::run::remote::target_reference;
use crate::run::upload::{Uploads, looks_like_a_file};

/// A reference with the scheme its URL gave, if any.
pub type Named = (Option<&'static str>, Reference);

/// What a line comes to: the work it asks for, and a failed row for each part of it that
/// cannot run (a tag the registry lists that is not one).
type Planned = (Option<Unit>, Vec<Row>);

/// One unit of a sync.
#[derive(Clone)]
pub enum Work {
    /// A registry image to copy.
    Image {
        line: usize,
        source: Named,
        target: Named,
    },
    /// An archive whose images are pushed, to `target` or each under `--to`.
    Archive {
        line: usize,
        source: String,
        path: PathBuf,
        target: Option<String>,
    },
}

impl Work {
    /// The list line it comes from.
    pub fn line(&self) -> usize {
        match self {
            Work::Image { line, .. } | Work::Archive { line, .. } => *line,
        }
    }

    /// The name `--shard` hashes: the source image's full name, or the archive as written.
    fn name(&self) -> String {
        match self {
            Work::Image { source, .. } => source.1.to_string(),
            Work::Archive { source, .. } => source.clone(),
        }
    }

    /// How it is shown while it runs.
    pub fn shown(&self) -> String {
        match self {
            Work::Image { source, target, .. } => format!("{} -> {}", source.1, target.1),
            Work::Archive { source, target, .. } => match target {
                Some(target) => format!("{source} -> {}", reference::hide_credentials(target)),
                None => source.clone(),
            },
        }
    }
}

/// What turns lines into work.
pub struct Planner<'a> {
    pub uploads: &'a Uploads<'a>,
    pub connections: &'a Connections,
    /// Where lines that give only SOURCE go.
    pub to: Option<&'a str>,
    /// The folder relative archive paths start at.
    pub base: &'a Path,
    pub tags: &'a TagFilter,
    pub shard: Option<Shard>,
}

impl Planner<'_> {
    /// The work of every line and a failed row for each line (or listed tag) that cannot run
    /// as written: this shard's share of both.
    pub fn plan(&self, lines: &[(usize, &str)]) -> (Plan<'_>, Vec<Row>) {
        let (mut plan, mut failed) = (Plan::new(self.to), Vec::new());
        let mut claims = Claims::default();
        for &(number, line) in lines {
            let mark = plan.tags_mark();
            let planned = self.line((&mut plan, &mut claims), number, line);
            match planned {
                Ok((found, left_out)) => {
                    // A whole repository's tags are this shard's share already.
                    let ours = |work: &Work| self.shard.is_none_or(|s| s.takes(&work.name()));
                    match found {
                        Some(Unit::One(work)) if !ours(&work) => {}
                        Some(unit) => plan.push(unit),
                        None => {}
                    }
                    failed.extend(left_out);
                }
                Err((source, target, error)) => {
                    plan.forget_tags(mark);
                    failed.push(Row {
                        line: number,
                        source: reference::hide_credentials(source),
                        target: reference::hide_credentials(target),
                        result: Err(error),
                    })
                }
            }
        }
        if let Some(shard) = self.shard {
            // A line that cannot run is one shard's to report, as it would be to run.
            failed.retain(|row| shard.takes(&row.source));
        }
        (plan, failed)
    }

    /// Claims in `claims` where the unit `unit` of list line `line` writes (see [`Claims`]);
    /// the error when an earlier line writes there from another source. Archives pushed under
    /// --to are not claimed: their names are known only once they are open.
    fn claim(&self, claims: &mut Claims, line: usize, unit: Option<&Unit>) -> Result<()> {
        match unit {
            Some(Unit::One(Work::Image { source, target, .. })) => {
                claims.image(line, &source.1, &target.1)
            }
            Some(Unit::Tags(tags)) => {
                let target = match &tags.target {
                    Some((_, target)) => target.name(),
                    // A tag it lists goes to the repository any tag of it goes to.
                    None => match under_to(self.to, &tags.source.1.with_tag("latest")?) {
                        Ok((_, target)) => target.name(),
                        Err(_) => return Ok(()),
                    },
                };
                claims.repository(line, &tags.source.1.name(), &target)
            }
            Some(Unit::One(Work::Archive { .. })) | None => Ok(()),
        }
    }

    /// The work of one line; the source and target as written, with the error, when it
    /// cannot run.
    fn line<'l>(
        &self,
        (plan, claims): (&mut Plan<'_>, &mut Claims),
        number: usize,
        line: &'l str,
    ) -> Result<Planned, (&'l str, &'l str, Error)> {
        let (source, target) = list::fields(line).map_err(|e| (line, "", e))?;
        let failed = |error| (source, target.unwrap_or_default(), error);
        let planned = self
            .fields(plan, number, (source, target))
            .map_err(failed)?;
        let claimed = self.claim(claims, number, planned.0.as_ref());
        claimed.map(|()| planned).map_err(failed)
    }

    /// The work of list line `number`, whose fields are `source` and `target`.
    fn fields(
        &self,
        plan: &mut Plan<'_>,
        number: usize,
        (source, target): (&str, Option<&str>),
    ) -> Result<Planned> {
        let path = self.base.join(source);
        if is_archive_path(&path) {
            let work = Work::Archive {
                line: number,
                source: source.to_string(),
                path,
                target: target.map(str::to_string),
            };
            return Ok((Some(Unit::One(work)), Vec::new()));
        }
        if looks_like_a_file(source) {
            return Err(Error::NotFound(format!("{}: no such file", path.display())));
        }
        let named =
            Reference::parse_url(source).map_err(|e| Error::BadInput(format!("SOURCE: {e}")))?;
        if reference::names_a_version(source) {
            let target = match target {
                Some(target) => target_reference(target),
                None => self.under_to(&named.1),
            };
            let work = Work::Image {
                line: number,
                source: named,
                target: target?,
            };
            return Ok((Some(Unit::One(work)), Vec::new()));
        }
        self.repository(plan, number, named, target)
    }

    /// An image for each tag of the repository `source` names, taken by the tag filter (and
    /// in this shard), to the repository `target` names or under `--to`, each tag kept in
    /// `plan` as the registry lists it; a failed row for each listed tag that is not a valid
    /// one, the others mirrored all the same.
    fn repository(
        &self,
        plan: &mut Plan<'_>,
        number: usize,
        (scheme, source): Named,
        target: Option<&str>,
    ) -> Result<Planned> {
        let target = target.map(repository_target).transpose()?;
        let registry = self
            .connections
            .open(self.uploads, source.registry(), scheme)?;
        let mut tags = Tags {
            line: number,
            source: (scheme, source),
            target,
            count: 0,
            start: plan.tags_mark(),
        };
        let listing = self.listed(&registry, plan, &mut tags)?;
        let source = &tags.source.1;
        if listing.taken == 0 && self.tags.filters() {
            // A typo in a pattern must not pass in CI as a mirror that is up to date.
            return Err(Error::NotFound(format!(
                "line {number}: no tag of {} matches --tags and --exclude-tags ({} \
                 listed); nothing to sync",
                source.name(),
                listing.listed
            )));
        }
        let with_them = match listing.referrer_tags.len() {
            0 => String::new(),
            n => format!(
                ", and {} that travel with their images",
                count(n, "referrer tag")
            ),
        };
        registry.learn_referrer_tags(source.repository(), listing.referrer_tags);
        // A line that named one image before whole repositories were mirrored now names many:
        // say so, with the way back.
        self.uploads.run.progress.info(format_args!(
            "line {number}: {} names no tag, so it stands for its tags: {} of {} \
             taken{with_them} (--tags and --exclude-tags choose; write :latest for that one \
             alone)",
            source.name(),
            listing.taken,
            listing.listed
        ));
        Ok((Some(Unit::Tags(tags)), listing.left_out))
    }

    /// The tags of `tags`' repository as `registry` lists them, every page: each the filter
    /// takes made into its work once, to be checked and sharded, and kept in `plan` (made
    /// again when its turn comes); the counts, the rows of tags that are not valid ones, and
    /// the referrer tags apart.
    fn listed(&self, registry: &Registry, plan: &mut Plan<'_>, tags: &mut Tags) -> Result<Listed> {
        let mut listing = Listed::default();
        let repository = tags.source.1.repository().to_string();
        registry.tags(&repository, None, &mut |tag| {
            // Signatures and referrer indexes travel with the images they are about.
            if subject_of_tag(tag).is_some() {
                listing.referrer_tags.insert(tag.to_string());
                return Ok(true);
            }
            listing.listed += 1;
            if !self.tags.takes(tag) {
                return Ok(true);
            }
            listing.taken += 1;
            match tags.work(self.to, tag)? {
                Tagged::Work(work) if self.shard.is_none_or(|s| s.takes(&work.name())) => {
                    plan.keep_tag(tag)?;
                    tags.count += 1;
                }
                Tagged::Work(_) => {}
                Tagged::LeftOut(row) => listing.left_out.push(row),
            }
            Ok(true)
        })?;
        Ok(listing)
    }

    /// Where `name` goes under --to: REGISTRY/PREFIX/REPOSITORY:TAG.
    pub fn under_to(&self, name: &Reference) -> Result<Named> {
        under_to(self.to, name)
    }
}

/// What a listing of a whole repository's tags gave, besides the tags kept in the plan.
#[derive(Default)]
struct Listed {
    /// How many image tags the filter takes.
    taken: usize,
    /// The failed rows of listed tags that are not valid ones.
    left_out: Vec<Row>,
    /// How many image tags were listed.
    listed: usize,
    /// The referrer tags (`sha256-<hex>[.sig|.att|.sbom]`), which go with their images.
    referrer_tags: HashSet<String>,
}

/// The repository a whole repository's line goes to, as its TARGET names it: no tag.
fn repository_target(text: &str) -> Result<Named> {
    let named = target_reference(text)?;
    match reference::names_a_version(text) {
        true => Err(Error::Usage(format!(
            "TARGET {text}: a whole repository goes to a repository; leave the tag out"
        ))),
        false => Ok(named),
    }
}

/// Where `name` goes under `to` (`--to REGISTRY[/PREFIX]`): REGISTRY/PREFIX/REPOSITORY:TAG.
pub fn under_to(to: Option<&str>, name: &Reference) -> Result<Named> {
    let to = to.ok_or_else(|| {
        Error::Usage("no TARGET on this line, and no --to to put it under".into())
    })?;
    let tag = name.tag().ok_or_else(|| {
        Error::Usage(format!("{name} has no tag to keep under --to; give TARGET"))
    })?;
    seed_reference(Some(to), name.familiar_repository(), Some(tag))
        .map_err(|e| Error::Usage(format!("--to {to} with {name}: {e}")))
}
