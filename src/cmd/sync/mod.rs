//! `sync`: mirror the images a list (or the command line) names: archives pushed, registry
//! images and whole repositories copied, what the destination holds already left alone,
//! several at once with `--jobs`, one machine's share with `--shard`; going on after a
//! failure, summed up in a table or one JSON document.

mod batch;
mod claims;
mod connections;
mod glob;
mod list;
mod plan;
mod results;
mod rows;
mod shard;
mod spool;
mod work;

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use lexopt::{Arg, Parser};

use crate::args::{self, Globals, Invocation, UploadFlags};
use crate::error::{Context, Error, Result};
use crate::inert::inert;
use crate::progress::{Progress, count};

use crate::args::seed_reference;
use crate::run::digestfile;
use crate::run::output::{print_help, still_read};
use crate::run::upload::Uploads;
use batch::Batch;
use connections::Connections;
use glob::{Glob, TagFilter};
use rows::Finished;
use shard::Shard;
use work::Planner;

const COMMAND: &str = "docker-image-pusher sync";

/// The synopsis and options.
pub const USAGE: &str = "\
Mirror images: copy registry images and whole repositories, push archives; leave alone what
the destination holds already; go on after a failure; sum it up.

Usage: docker-image-pusher sync [OPTIONS] --file LIST
       docker-image-pusher sync [OPTIONS] SOURCE [TARGET]

Arguments:
  SOURCE  one line of a list given on the command line: a registry image, a whole
          repository ([registry/]repository, no tag) or an archive
  TARGET  where it goes: [registry/]repository[:tag]; without it, under --to

Options:
  -f, --file LIST                   the list; - reads standard input
      --to REGISTRY[/PREFIX]        where lines that give only SOURCE go
      --tags GLOB                   of a whole repository, only the tags matching GLOB
                                    (* ? [a-z]); may be repeated
      --exclude-tags GLOB           of a whole repository, not the tags matching GLOB
      --jobs N                      images copied at once [default: 1]
      --shard K/N                   only this machine's share: the images whose source
                                    name hashes to K modulo N
      --digestfile FILE             write DIGEST TARGET for each image the destination
                                    holds (copied or present)
      --platform OS/ARCH[/VARIANT]  only this image of each multi-platform index;
                                    several, comma-separated: an index of just those
                                    (rewritten, so a new digest)
      --all-platforms               indexes whole, byte for byte [default]
  -n, --dry-run                     show what would be sent; send nothing";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = args::UPLOAD_GROUPS;

/// The long help.
pub const DETAILS: &str = "

Each line is SOURCE [TARGET]; blank lines, and everything after #, are left out; SOURCE
[TARGET] on the command line is one such line. SOURCE is an archive file (plain or gzip; a
relative path starts at the list's folder), pushed as push does, or an image in a registry,
copied as copy does. A registry repository without a tag or digest (ghcr.io/org/tool) stands
for every tag it has, as the registry lists them, kept by --tags and left out by
--exclude-tags (write :latest for that one image; patterns that leave no tag fail the line,
exit 6), its signature and referrer tags (sha256-<hex>[.sig|.att|.sbom]) going with the
images they are about; its TARGET, if given, is a repository. TARGET is
[registry/]repository[:tag] or a URL. A line without TARGET goes under --to:
REGISTRY/PREFIX/REPOSITORY:TAG, with the source's repository (docker.io's library/ left out)
and tag; from an archive, every named image in it goes there. A line that would write where
an earlier one writes from another source (docker.io/library/redis:7 and quay.io/redis:7
both become PREFIX/redis:7) fails before anything moves (exit 2); give it a TARGET.

Before copying a registry image, sync asks both ends for the manifest's digest (HEAD): when
the destination already holds what the copy would write, nothing else is sent. A second run
of an unchanged mirror costs one HEAD per image at each end, so a run that was stopped is
simply started again (blobs cut midway resume too). --force-upload copies everything again.
A blob several images share crosses once per run: the next image mounts it from the
repository it landed in.

With --jobs N, N images move at once (each with --max-concurrent blobs); memory stays flat
however many tags a repository has: the rows of the closing table and a repository's tags wait in
a file with no name in $TMPDIR (in memory where no file can be made or written there).
With --shard K/N, each of N machines takes its share of the same list, with no coordinator:
an image is in shard K when the sha256 of its source name (docker.io/library/nginx:1.27, or
an archive's path as written), read as a big-endian number from its first 8 bytes, is K
modulo N. A Kubernetes Indexed Job passes --shard $JOB_COMPLETION_INDEX/N; see examples/.

A failed image does not stop the rest. At the end, a table on stdout gives each image's line,
source, target and outcome (copied, present, FAILED and why); with --json, one JSON document
(the last line) with \"outcome\" for each. The exit code is 0 when every image succeeded,
else that of the first failure.

Example list:
  # mirror for the edge site
  docker.io/library/nginx:1.27    registry.local/mirror/nginx:1.27
  ghcr.io/org/tool                registry.local/mirror/tool
  images/app-v1.tar               registry.local/team/app:v1

Examples:
  docker-image-pusher sync --file images.txt --to registry.local/mirror --jobs 4
  docker-image-pusher sync quay.io/org/app --to registry.local/mirror --tags 'v2.*'
  docker-image-pusher sync -f - --to https://harbor.example.com/edge --shard 1/3 < list";

/// What the command line of `sync` says, checked, before anything is opened.
pub struct SyncArgs {
    pub globals: Globals,
    pub flags: UploadFlags,
    /// The list: a file, or `-` for standard input; or one line from the command line.
    pub lines: Lines,
    /// Where lines that give only SOURCE go (`REGISTRY[/PREFIX]`).
    pub to: Option<String>,
    pub tags: TagFilter,
    pub jobs: usize,
    pub shard: Option<Shard>,
}

/// Where the lines come from.
#[derive(Debug, PartialEq, Eq)]
pub enum Lines {
    /// `--file LIST` (`-`: standard input).
    File(String),
    /// `SOURCE [TARGET]` on the command line.
    Given(String),
}

impl SyncArgs {
    /// Reads the rest of the command line.
    pub fn parse(parser: &mut Parser, mut globals: Globals) -> Result<Invocation<SyncArgs>> {
        let mut flags = UploadFlags::from_env(&globals.env)?;
        let (mut list, mut to, mut tags) = (None, None, TagFilter::default());
        let (mut jobs, mut shard) = (1, None);
        let mut given: Vec<String> = Vec::new();
        let groups: &mut [&mut dyn args::FlagGroup] = &mut [&mut globals, &mut flags];
        while let Some(flag) = args::next(parser, groups, COMMAND)? {
            match flag.as_arg() {
                Arg::Short('h') => return Ok(Invocation::Help { long: false }),
                Arg::Long("help") => return Ok(Invocation::Help { long: true }),
                Arg::Short('f') | Arg::Long("file") => list = Some(args::value(parser, "--file")?),
                Arg::Long("to") => to = Some(args::value(parser, "--to")?),
                Arg::Long(name @ ("tags" | "exclude-tags")) => {
                    let flag = format!("--{name}");
                    let glob =
                        Glob::parse(&args::value(parser, &flag)?, &flag).map_err(Error::Usage)?;
                    match name {
                        "tags" => tags.include.push(glob),
                        _ => tags.exclude.push(glob),
                    }
                }
                Arg::Long("jobs") => jobs = args::number(parser, "--jobs")?,
                Arg::Long("shard") => {
                    shard =
                        Some(Shard::parse(&args::value(parser, "--shard")?).map_err(Error::Usage)?)
                }
                Arg::Value(value) if given.len() < 2 => given.push(args::utf8(value, "SOURCE")?),
                other => return Err(args::unexpected(other, COMMAND)),
            }
        }
        let lines = match (list, given.is_empty()) {
            (Some(list), true) => Lines::File(list),
            (None, false) => Lines::Given(given.join(" ")),
            (Some(_), false) => return Err(stray(&given, &tags)),
            (None, true) => {
                return Err(Error::Usage(format!(
                    "nothing to sync: give --file LIST or SOURCE [TARGET]; see '{COMMAND} --help'"
                )));
            }
        };
        if jobs == 0 {
            return Err(Error::Usage("--jobs must be at least 1".into()));
        }
        if let Some(to) = &to {
            seed_reference(Some(to), "probe", None)
                .map_err(|_| Error::Usage(format!("--to {to}: not REGISTRY[/PREFIX]")))?;
        }
        if lines == Lines::File("-".into()) && flags.registry.reads_password_from_stdin() {
            return Err(Error::Usage(
                "--file - and --password-stdin both want standard input; give the list as a file"
                    .into(),
            ));
        }
        Ok(Invocation::Run(SyncArgs {
            globals,
            flags,
            lines,
            to,
            tags,
            jobs,
            shard,
        }))
    }
}

/// Runs `sync` on the rest of the command line.
pub fn run(parser: &mut Parser, globals: Globals) -> Result<()> {
    let sync = match SyncArgs::parse(parser, globals)? {
        Invocation::Help { long } => return print_help(USAGE, GROUPS, DETAILS, long),
        Invocation::Run(sync) => sync,
    };
    let (text, base, named) = match &sync.lines {
        Lines::File(list) => {
            let (text, base) = list::read_list(list)?;
            (text, base, list.as_str())
        }
        Lines::Given(line) => (line.clone(), PathBuf::new(), "the command line"),
    };
    let uploads = Uploads::new(&sync.globals, &sync.flags)?;
    let progress = uploads.run.progress;
    let connections = Connections::default();
    let lines = list::lines(&text);
    if lines.is_empty() {
        progress.warn(format_args!("{named} names no images"));
    }
    let planner = Planner {
        uploads: &uploads,
        connections: &connections,
        to: sync.to.as_deref(),
        base: &base,
        tags: &sync.tags,
        shard: sync.shard,
    };
    let (plan, failed) = planner.plan(&lines);
    results::say_failures(progress, &failed);
    if let Some(shard) = sync.shard {
        progress.info(format_args!(
            "shard {shard}: {} to do",
            count(plan.len(), "image")
        ));
    }
    let batch = Batch {
        uploads: &uploads,
        connections: &connections,
        to: sync.to.as_deref(),
        jobs: sync.jobs,
    };
    // The lines that cannot run first within their line, as they were said first.
    let finished = batch.run(&plan).finish(failed)?;
    report(&sync, &finished)?;
    ended(progress, finished)
}

/// Writes what the sync did: the digest file when asked for, and the table (or JSON) on
/// standard output, row by row.
fn report(sync: &SyncArgs, finished: &Finished) -> Result<()> {
    if let Some(path) = &sync.flags.digestfile {
        digestfile::write_each(path, &mut |out| {
            finished.each(&mut |shown| match &shown.digest_line {
                Some(line) => writeln!(out, "{line}"),
                None => Ok(()),
            })
        })?;
    }
    let mut out = BufWriter::new(std::io::stdout().lock());
    let rows = |each: &mut dyn FnMut(&results::Shown) -> std::io::Result<()>| finished.each(each);
    let written = match sync.flags.transfer.json() {
        true => {
            let (_, failed) = finished.counts();
            results::write_json((sync.flags.dry_run, failed), rows, &mut out)
        }
        false => results::write_table(finished.widths(), rows, &mut out),
    };
    still_read(written.and_then(|()| out.flush())).map(drop)
}

/// How the sync ends, after its table: done, or the first failure's error with how many
/// images failed (counted as the table's rows are) and on which lines.
fn ended(progress: Progress, finished: Finished) -> Result<()> {
    let (total, failed) = finished.counts();
    let lines: Vec<String> = finished.failed_lines().map(|l| l.to_string()).collect();
    let plural = if lines.len() == 1 { "line" } else { "lines" };
    let summary = format!(
        "{failed} of {total} images failed ({plural} {})",
        lines.join(", ")
    );
    match finished.first_failure() {
        Some((line, error)) => Err(error).context(|| format!("{summary}; line {line}")),
        None => {
            progress.info(format_args!("sync: {} done", count(total, "image")));
            Ok(())
        }
    }
}

/// The error for SOURCE arguments beside `--file`, naming them: with tag patterns given, most
/// likely a pattern the shell expanded into file names.
fn stray(given: &[String], tags: &TagFilter) -> Error {
    let shown: Vec<String> = given.iter().map(|g| format!("'{}'", inert(g))).collect();
    let hint = match tags.filters() {
        false => "",
        true => {
            " (an unquoted --tags or --exclude-tags pattern the shell expanded? quote it: \
                  --tags 'v1.*')"
        }
    };
    Error::Usage(format!(
        "give --file LIST or SOURCE [TARGET], not both: got --file and {}{hint}; see \
         '{COMMAND} --help'",
        shown.join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &[&str]) -> Result<Invocation<SyncArgs>> {
        SyncArgs::parse(
            &mut Parser::from_args(line.iter().copied()),
            Globals::defaults(),
        )
    }

    #[test]
    fn a_list_and_a_prefix_parse() {
        let Ok(Invocation::Run(sync)) = parse(&["-f", "list.txt", "--to", "registry.local/mirror"])
        else {
            panic!("not parsed");
        };
        assert_eq!(sync.lines, Lines::File("list.txt".into()));
        assert_eq!(sync.to.as_deref(), Some("registry.local/mirror"));
    }

    #[test]
    fn one_line_may_come_from_the_command_line_with_filters_jobs_and_a_shard() {
        let Ok(Invocation::Run(sync)) = parse(&[
            "quay.io/org/app",
            "--to",
            "registry.local/mirror",
            "--tags",
            "v*",
            "--exclude-tags",
            "*-rc*",
            "--jobs",
            "4",
            "--shard",
            "1/3",
        ]) else {
            panic!("not parsed");
        };
        assert_eq!(sync.lines, Lines::Given("quay.io/org/app".into()));
        assert!(
            sync.tags.takes("v1.2") && !sync.tags.takes("v1.3-rc1") && !sync.tags.takes("latest")
        );
        assert_eq!(
            (sync.jobs, sync.shard.map(|s| s.to_string())),
            (4, Some("1/3".into()))
        );
        for wrong in [
            &["-f", "list", "quay.io/org/app"][..],
            &[],
            &["a", "b", "c"],
            &["a", "--jobs", "0"],
            &["a", "--shard", "3/3"],
            &["a", "--tags", "v[1"],
        ] {
            assert_eq!(
                parse(wrong).err().map(|e| e.exit_code()),
                Some(2),
                "{wrong:?}"
            );
        }
    }

    #[test]
    fn arguments_beside_a_list_are_named_with_the_shells_likely_part() {
        // `--tags s*` unquoted, in a folder holding scripts/ and src/.
        let error = parse(&["-f", "list", "--tags", "scripts", "src"])
            .err()
            .unwrap();
        let said = error.to_string();
        assert!(said.contains("got --file and 'src'"), "{said}");
        assert!(said.contains("the shell expanded? quote it"), "{said}");
        let plain = parse(&["-f", "list", "a", "b"]).err().unwrap().to_string();
        assert!(
            plain.contains("'a' 'b'") && !plain.contains("shell"),
            "{plain}"
        );
    }

    #[test]
    fn standard_input_is_asked_for_once() {
        let error = parse(&["-f", "-", "-u", "ci", "--password-stdin"]).err();
        assert!(error.is_some_and(|e| e.to_string().contains("both want standard input")));
        let error = parse(&["-f", "list", "--to", "not a registry"]).err();
        assert_eq!(error.map(|e| e.exit_code()), Some(2));
    }
}
