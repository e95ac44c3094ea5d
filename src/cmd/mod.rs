//! The commands: parse the global flags and the command name, then hand the rest of the
//! command line to that command.

mod bundle;
mod clean;
mod copy;
mod extract;
mod inspect;
mod list;
mod login;
mod logout;
mod pull;
mod push;
mod save;
mod seed;
mod sync;
mod tags;
mod upload;

use std::ffi::OsString;

use lexopt::{Arg, Parser};

use crate::args::{self, GLOBAL_HELP, Globals, RegistryArgs, TransferArgs};
use crate::error::{Error, Result};
use crate::progress::{Board, Progress, count, human_bytes, json_seconds};
use crate::reference::Reference;
use crate::registry::{Registry, RegistryOptions};
use crate::transfer::Summary;

const PROGRAM: &str = "docker-image-pusher";

const USAGE: &str = "\
Move container images between registries, docker save archives and a local cache.

Usage: docker-image-pusher [OPTIONS] COMMAND [ARGS]
       docker-image-pusher -r URL -f FILE [-u USER -p PASSWORD] [-t SECONDS] [OPTIONS]
                                                          (push, one shot; -t: --timeout)

Commands:
  pull IMAGE           copy an image from a registry into the cache
  push SOURCE TARGET   copy an image from the cache or an archive to a registry
  copy SOURCE TARGET   copy an image from one registry or repository to another
  save IMAGE... -o F   write cached images to one archive that docker load accepts
  sync --file LIST     run the pushes and copies a list names; sum them up
  bundle IMAGE... -o D save, this program and a push script in one folder to carry
  tags REPOSITORY      list the tags of a repository
  inspect IMAGE        show what an image is (cache or registry), or its exact bytes
  extract FILE         store the images of a docker save or OCI archive in the cache
  list                 show the cached images
  clean [IMAGE]...     remove cached images and the blobs nothing else uses
  login REGISTRY       check credentials and store them in Docker's config.json
  logout REGISTRY      remove stored credentials
  help [COMMAND]       show a command's help";

const DETAILS: &str = "
Exit codes: 0 success, 1 other failure, 2 usage error, 3 bad input (archive, manifest,
reference), 4 authentication or permission denied, 5 network or registry failure,
6 image not found.

Run 'docker-image-pusher COMMAND --help' for a command's options.";

/// One command: its name, its help, and how to run it on the rest of the command line.
struct Command {
    name: &'static str,
    usage: &'static str,
    groups: &'static [&'static str],
    details: &'static str,
    run: fn(&mut Parser, Globals) -> Result<()>,
}

/// Flags that start the one-shot form `-r URL -f FILE -u USER -p PASSWORD -t SECONDS` of
/// older scripts.
const ONE_SHOT_SHORT: [char; 5] = ['r', 'f', 'u', 'p', 't'];
const ONE_SHOT_LONG: [&str; 13] = [
    "repository-url",
    "file",
    "username",
    "password",
    "password-stdin",
    "skip-tls",
    "ca-cert",
    "timeout",
    "retry-attempts",
    "dry-run",
    "force-upload",
    "skip-existing",
    "max-concurrent",
];

const COMMANDS: [Command; 13] = [
    Command {
        name: "pull",
        usage: pull::USAGE,
        groups: pull::GROUPS,
        details: pull::DETAILS,
        run: pull::run,
    },
    Command {
        name: "push",
        usage: push::USAGE,
        groups: push::GROUPS,
        details: push::DETAILS,
        run: |parser, globals| push::run(parser, globals, None),
    },
    Command {
        name: "copy",
        usage: copy::USAGE,
        groups: copy::GROUPS,
        details: copy::DETAILS,
        run: copy::run,
    },
    Command {
        name: "save",
        usage: save::USAGE,
        groups: save::GROUPS,
        details: save::DETAILS,
        run: save::run,
    },
    Command {
        name: "sync",
        usage: sync::USAGE,
        groups: sync::GROUPS,
        details: sync::DETAILS,
        run: sync::run,
    },
    Command {
        name: "bundle",
        usage: bundle::USAGE,
        groups: bundle::GROUPS,
        details: bundle::DETAILS,
        run: bundle::run,
    },
    Command {
        name: "tags",
        usage: tags::USAGE,
        groups: tags::GROUPS,
        details: tags::DETAILS,
        run: tags::run,
    },
    Command {
        name: "inspect",
        usage: inspect::USAGE,
        groups: inspect::GROUPS,
        details: inspect::DETAILS,
        run: inspect::run,
    },
    Command {
        name: "extract",
        usage: extract::USAGE,
        groups: extract::GROUPS,
        details: extract::DETAILS,
        run: extract::run,
    },
    Command {
        name: "list",
        usage: list::USAGE,
        groups: list::GROUPS,
        details: list::DETAILS,
        run: list::run,
    },
    Command {
        name: "clean",
        usage: clean::USAGE,
        groups: clean::GROUPS,
        details: clean::DETAILS,
        run: clean::run,
    },
    Command {
        name: "login",
        usage: login::USAGE,
        groups: login::GROUPS,
        details: login::DETAILS,
        run: login::run,
    },
    Command {
        name: "logout",
        usage: logout::USAGE,
        groups: logout::GROUPS,
        details: logout::DETAILS,
        run: logout::run,
    },
];

/// Runs the command line (without the program name).
pub fn run(arguments: Vec<OsString>) -> Result<()> {
    if asks_for_version(&arguments) {
        return write_stdout(format!("{PROGRAM} {}\n", env!("CARGO_PKG_VERSION")).as_bytes());
    }
    let mut parser = Parser::from_args(arguments);
    let mut globals = Globals::from_env()?;
    let Some(flag) = args::next(&mut parser, &mut [&mut globals], PROGRAM)? else {
        return Err(Error::Usage(format!(
            "no command given; see '{PROGRAM} --help'"
        )));
    };
    match flag.as_arg() {
        Arg::Short('h') => print_help(USAGE, &[], DETAILS, false),
        Arg::Long("help") => print_help(USAGE, &[], DETAILS, true),
        Arg::Short(c) if ONE_SHOT_SHORT.contains(&c) => push::run(&mut parser, globals, Some(flag)),
        Arg::Long(name) if ONE_SHOT_LONG.contains(&name) => {
            push::run(&mut parser, globals, Some(flag))
        }
        Arg::Value(name) => match args::utf8(name, "command")?.as_str() {
            "help" => help_command(&mut parser, &mut globals),
            name => (find(name)?.run)(&mut parser, globals),
        },
        other => Err(args::unexpected(other, PROGRAM)),
    }
}

/// The registry host the REGISTRY argument of `login`/`logout` (`command`) names
/// (`host[:port]` or a URL), with the scheme when one was given; a usage error without one.
pub fn registry_host(
    argument: Option<&str>,
    command: &str,
) -> Result<(Option<&'static str>, String)> {
    let text = argument
        .ok_or_else(|| Error::Usage(format!("no registry given; see '{command} --help'")))?;
    let (scheme, rest) = match (text.strip_prefix("https://"), text.strip_prefix("http://")) {
        (Some(rest), _) => (Some("https"), rest),
        (_, Some(rest)) => (Some("http"), rest),
        _ => (None, text),
    };
    let host = rest.split('/').next().unwrap_or_default();
    let probe = Reference::parse_url(&format!("https://{host}/probe")).map_err(|_| {
        let shown = crate::reference::hide_credentials(text);
        Error::Usage(format!("REGISTRY \"{shown}\" is not a host[:port]"))
    })?;
    Ok((scheme, probe.1.registry().to_string()))
}

/// Connects to the registry `host` as the registry flags say (warning of what
/// [`RegistryArgs::cautions`] names); returns the connection and the options it was made with.
pub fn connect(
    registry_args: &RegistryArgs,
    host: &str,
    scheme: Option<&str>,
    progress: Progress,
) -> Result<(Registry, RegistryOptions)> {
    for caution in registry_args.cautions() {
        progress.warn(caution);
    }
    let options = registry_args.options()?;
    let registry = Registry::connect(host, scheme, &options, progress)?;
    Ok((registry, options))
}

/// ` in 2.3 s (4.6 MB/s)`, and the retries if any, for the summary line of a transfer.
pub fn timing(summary: &Summary, board: &Board) -> String {
    let seconds = board.elapsed().as_secs_f64();
    let speed = human_bytes((summary.bytes_copied as f64 / seconds.max(0.001)) as u64);
    let retries = match summary.retries {
        0 => String::new(),
        1 => ", 1 retry".to_string(),
        n => format!(", {n} retries"),
    };
    let adjustments = match summary.adjustments.len() {
        0 => String::new(),
        n => format!(", {}", count(n, "concurrency adjustment")),
    };
    let speed = if summary.bytes_copied == 0 {
        String::new()
    } else {
        format!(" ({speed}/s)")
    };
    format!(" in {seconds:.1} s{speed}{retries}{adjustments}")
}

/// With `--json`, the last event on stdout: what the transfer did.
pub fn json_result(
    command: &str,
    images: &[String],
    summary: &Summary,
    board: &Board,
) -> Result<()> {
    let manifests: Vec<String> = summary
        .outcomes
        .iter()
        .map(|outcome| outcome.manifest.to_string())
        .collect();
    let result = serde_json::json!({
        "event": "result",
        "ok": true,
        "command": command,
        "images": images,
        "manifests": manifests,
        "dry_run": summary.outcomes.is_empty(),
        "blobs_copied": summary.blobs_copied,
        "blobs_present": summary.blobs_present,
        "blobs_mounted": summary.blobs_mounted,
        "bytes_copied": summary.bytes_copied,
        "retries": summary.retries,
        "adjustments": summary.adjustments.iter().map(|a| serde_json::json!({
            "seconds": json_seconds(a.at), "from": a.from, "to": a.to, "reason": a.reason,
        })).collect::<Vec<_>>(),
        "seconds": json_seconds(board.elapsed()),
    });
    write_stdout(format!("{result}\n").as_bytes())
}

/// A push or copy TARGET: a reference or URL naming a tag, not a digest.
pub fn target_reference(text: &str) -> Result<(Option<&'static str>, Reference)> {
    let (scheme, target) =
        Reference::parse_url(text).map_err(|e| Error::Usage(format!("TARGET: {e}")))?;
    if target.digest().is_some() {
        return Err(Error::Usage(format!(
            "TARGET {target}: push to a tag, not a digest"
        )));
    }
    Ok((scheme, target))
}

/// How a transfer to a registry ended (`push`, `copy`; `done` is its past tense): the JSON
/// result with `--json`, else a summary line on stderr.
pub fn report_upload(
    (command, done): (&str, &str),
    target: &Reference,
    summary: &Summary,
    board: &Board,
    transfer_args: &TransferArgs,
    progress: &Progress,
) -> Result<()> {
    if transfer_args.json() {
        return json_result(command, &[target.to_string()], summary, board);
    }
    let blobs = count(summary.blobs_copied, "blob");
    let size = human_bytes(summary.bytes_copied);
    let (present, mounted) = (summary.blobs_present, summary.blobs_mounted);
    match summary.outcomes.first() {
        None => progress.info(format_args!(
            "would {command} {target}: {blobs} to upload ({size}), {mounted} to mount, {present} already there"
        )),
        Some(outcome) => progress.info(format_args!(
            "{done} {target} (manifest {}): {blobs} uploaded ({size}), {mounted} mounted, {present} already there{}",
            outcome.manifest,
            timing(summary, board)
        )),
    }
    Ok(())
}

/// Whether `-V` or `--version` stands among the arguments (before any `--`): like the other
/// global options, it may come before or after the command.
fn asks_for_version(arguments: &[OsString]) -> bool {
    (arguments.iter())
        .take_while(|argument| *argument != "--")
        .any(|argument| argument == "-V" || argument == "--version")
}

/// Writes data to stdout; a closed pipe (`| head`) is not a failure.
pub fn write_stdout(bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    still_read(stdout.write_all(bytes).and_then(|()| stdout.flush())).map(drop)
}

/// What writing to standard output came to: `false` once its reader has gone (a broken pipe,
/// which ends a listing quietly), an error for anything else.
pub fn still_read(written: std::io::Result<()>) -> Result<bool> {
    match written {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Error::io("writing to standard output", e)),
    }
}

/// Prints a command's help: `-h` the usage, `--help` also the details.
pub fn print_help(usage: &str, groups: &[&str], details: &str, long: bool) -> Result<()> {
    let mut text = usage.to_string();
    for group in groups.iter().chain([&GLOBAL_HELP]) {
        text.push_str("\n\n");
        text.push_str(group);
    }
    if long {
        text.push_str(details);
    }
    text.push('\n');
    write_stdout(text.as_bytes())
}

fn find(name: &str) -> Result<&'static Command> {
    COMMANDS
        .iter()
        .find(|command| command.name == name)
        .ok_or_else(|| {
            Error::Usage(format!(
                "unknown command \"{name}\"; see '{PROGRAM} --help'"
            ))
        })
}

fn help_command(parser: &mut Parser, globals: &mut Globals) -> Result<()> {
    match args::next(parser, &mut [globals], PROGRAM)?
        .as_ref()
        .map(args::Flag::as_arg)
    {
        None => print_help(USAGE, &[], DETAILS, true),
        Some(Arg::Value(name)) => {
            let command = find(&args::utf8(name, "command")?)?;
            print_help(command.usage, command.groups, command.details, true)
        }
        Some(other) => Err(args::unexpected(other, PROGRAM)),
    }
}
