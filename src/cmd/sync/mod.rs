//! `sync`: many pushes and copies from a list, going on after a failure, summed up in a table.

mod batch;
mod list;
mod results;

use lexopt::{Arg, Parser};

use crate::args::{
    self, Globals, PROGRESS_HELP, Parsed, REGISTRY_HELP, TRANSFER_HELP, UPLOAD_HELP,
};
use crate::error::{Context, Error, Result};
use crate::progress::count;
use crate::reference;

use super::output::{print_help, write_stdout};
use super::seed::seed_reference;
use super::upload::{UploadFlags, Uploads};
use batch::Batch;

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
pub const GROUPS: &[&str] = &[UPLOAD_HELP, REGISTRY_HELP, TRANSFER_HELP, PROGRESS_HELP];

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

/// What the command line of `sync` says, checked, before anything is opened.
pub struct SyncArgs {
    pub globals: Globals,
    pub flags: UploadFlags,
    /// The list: a file, or `-` for standard input.
    pub list: String,
    /// Where lines that give only SOURCE go (`REGISTRY[/PREFIX]`).
    pub to: Option<String>,
}

impl SyncArgs {
    /// Reads the rest of the command line.
    pub fn parse(parser: &mut Parser, mut globals: Globals) -> Result<Parsed<SyncArgs>> {
        let mut flags = UploadFlags::from_env()?;
        let (mut list, mut to) = (None, None);
        let groups: &mut [&mut dyn args::FlagGroup] = &mut [&mut globals, &mut flags];
        while let Some(flag) = args::next(parser, groups, COMMAND)? {
            match flag.as_arg() {
                Arg::Short('h') => return Ok(Parsed::Help { long: false }),
                Arg::Long("help") => return Ok(Parsed::Help { long: true }),
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
        Ok(Parsed::Run(SyncArgs {
            globals,
            flags,
            list,
            to,
        }))
    }
}

/// Runs `sync` on the rest of the command line.
pub fn run(parser: &mut Parser, globals: Globals) -> Result<()> {
    let SyncArgs {
        globals,
        flags,
        list,
        to,
    } = match SyncArgs::parse(parser, globals)? {
        Parsed::Help { long } => return print_help(USAGE, GROUPS, DETAILS, long),
        Parsed::Run(sync) => sync,
    };
    let (text, base) = list::read_list(&list)?;

    let uploads = Uploads::new(&globals, &flags)?;
    let mut batch = Batch::new(&uploads, to.as_deref(), base);
    let jobs = list::jobs(&text);
    for (i, &(number, line)) in jobs.iter().enumerate() {
        uploads.run.progress.info(format_args!(
            "[{}/{}] line {number}: {}",
            i + 1,
            jobs.len(),
            reference::hide_credentials(line)
        ));
        batch.line(number, line);
    }
    let progress = uploads.run.progress;
    if jobs.is_empty() {
        progress.warn(format_args!("{list} names no jobs"));
    }
    let rows = batch.rows;
    match flags.transfer.json() {
        true => {
            write_stdout(format!("{}\n", results::json_result(&rows, flags.dry_run)).as_bytes())?
        }
        false => write_stdout(results::table(&rows).as_bytes())?,
    }
    let total = rows.len();
    let mut failed = rows.into_iter().filter(|row| row.result.is_err());
    let Some(first) = failed.next() else {
        progress.info(format_args!("sync: {} done", count(total, "job")));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &[&str]) -> Result<Parsed<SyncArgs>> {
        SyncArgs::parse(
            &mut Parser::from_args(line.iter().copied()),
            Globals::from_env()?,
        )
    }

    #[test]
    fn a_list_and_a_prefix_parse() {
        let Ok(Parsed::Run(sync)) = parse(&["-f", "list.txt", "--to", "registry.local/mirror"])
        else {
            panic!("not parsed");
        };
        assert_eq!(sync.list, "list.txt");
        assert_eq!(sync.to.as_deref(), Some("registry.local/mirror"));
    }

    #[test]
    fn standard_input_is_asked_for_once() {
        let error = parse(&["-f", "-", "-u", "ci", "--password-stdin"]).err();
        assert!(error.is_some_and(|e| e.to_string().contains("both want standard input")));
        let error = parse(&["-f", "list", "--to", "not a registry"]).err();
        assert_eq!(error.map(|e| e.exit_code()), Some(2));
    }
}
