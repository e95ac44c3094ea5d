//! The commands: parse the global flags and the command name, then hand the rest of the
//! command line to that command (or to `push`, for the one-shot form of older scripts).

mod bundle;
mod clean;
mod completions;
mod copy;
mod delete;
mod extract;
mod inspect;
mod list;
mod login;
mod logout;
mod man;
mod pull;
mod push;
mod save;
mod sync;
mod tags;

use std::ffi::OsString;

use lexopt::{Arg, Parser};

use crate::args::{self, GLOBAL_HELP, Globals};
use crate::error::{Error, Result};
use crate::inert::inert;

use crate::run::output::{long_groups, print_help, write_stdout};

const PROGRAM: &str = "docker-image-pusher";

const USAGE: &str = "\
Move container images between registries, docker save archives and a local cache.

Usage: docker-image-pusher [OPTIONS] COMMAND [ARGS]
       docker-image-pusher -r URL -f FILE [-u USER -p PASSWORD] [-t SECONDS] [OPTIONS]
                                                          (push, one shot; -t: --timeout)

Commands:
  pull IMAGE           copy an image from a registry into the cache
  push SOURCE TARGET   copy an image from the cache, an archive or a layout to a registry
  copy SOURCE TARGET   copy an image from one registry or repository to another
  save IMAGE... -o F   write cached images to one archive docker load accepts (or a layout)
  sync --file LIST     mirror images and whole repositories a list names; sum it up
  bundle IMAGE... -o D save, this program and a push script in one folder to carry
  tags REPOSITORY      list the tags of a repository
  delete IMAGE         delete a tag, or a manifest by digest, from a registry
  inspect IMAGE        show what an image is (cache or registry), or its exact bytes
  extract FILE         store the images of a docker save, OCI archive or layout in the cache
  list                 show the cached images
  clean [IMAGE]...     remove cached images and the blobs nothing else uses
  login REGISTRY       check credentials and store them (config.json, or --auth-file)
  logout REGISTRY      remove stored credentials
  completions SHELL    print a completion script for bash, zsh or fish
  man                  print the manual page
  help [COMMAND]       show a command's help";

const DETAILS: &str = "
Exit codes: 0 success, 1 other failure, 2 usage error, 3 bad input (archive, manifest,
reference), 4 authentication or permission denied, 5 network or registry failure,
6 not found (image or file).

Run 'docker-image-pusher COMMAND --help' for a command's options.";

/// One command: its name, its help, and how to run it on the rest of the command line.
struct Command {
    name: &'static str,
    usage: &'static str,
    groups: &'static [&'static str],
    details: &'static str,
    run: fn(&mut Parser, Globals) -> Result<()>,
}

/// Whether `arg` starts the one-shot form `-r URL -f FILE -u USER -p PASSWORD -t SECONDS` of
/// older scripts: any flag `push` takes does. They are read from push's long help, where each
/// flag group lists its flags beside its parsing, so no second list can fall behind: a short
/// flag from its option lines, a long one wherever the help names it (the tuning of
/// `--concurrency dynamic`, and the older tool's spellings its prose gives, as
/// `--concurrency-manager` and `--disable-progress`).
fn starts_one_shot(arg: &Arg<'_>) -> bool {
    let mut helps = std::iter::once(push::USAGE).chain(long_groups(push::GROUPS));
    match arg {
        Arg::Short(c) => {
            let written = format!("-{c}");
            helps
                .flat_map(args::option_names)
                .any(|name| name == written)
        }
        Arg::Long(name) => helps.any(|help| {
            help.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .any(|word| word.strip_prefix("--") == Some(name))
        }),
        Arg::Value(_) => false,
    }
}

const COMMANDS: [Command; 16] = [
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
        name: "delete",
        usage: delete::USAGE,
        groups: delete::GROUPS,
        details: delete::DETAILS,
        run: delete::run,
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
    Command {
        name: "completions",
        usage: completions::USAGE,
        groups: completions::GROUPS,
        details: completions::DETAILS,
        run: completions::run,
    },
    Command {
        name: "man",
        usage: man::USAGE,
        groups: man::GROUPS,
        details: man::DETAILS,
        run: man::run,
    },
];

/// Runs the command line (without the program name).
pub fn run(arguments: Vec<OsString>) -> Result<()> {
    if asks_for_version(&arguments) {
        return write_stdout(format!("{PROGRAM} {}\n", env!("CARGO_PKG_VERSION")).as_bytes());
    }
    let mut parser = Parser::from_args(arguments);
    let mut globals = Globals::from_env(args::Env::process())?;
    let Some(flag) = args::next(&mut parser, &mut [&mut globals], PROGRAM)? else {
        return Err(Error::Usage(format!(
            "no command given; see '{PROGRAM} --help'"
        )));
    };
    match flag.as_arg() {
        Arg::Short('h') => print_help(USAGE, &[], DETAILS, false),
        Arg::Long("help") => print_help(USAGE, &[], DETAILS, true),
        arg if starts_one_shot(&arg) => push::run(&mut parser, globals, Some(flag)),
        Arg::Value(name) => match args::utf8(name, "command")?.as_str() {
            "help" => help_command(&mut parser, &mut globals),
            name => {
                let command = find(name)?;
                let helps = [command.usage, GLOBAL_HELP].into_iter();
                (command.run)(&mut parser, globals)
                    .map_err(|e| with_nearest_flag(e, helps.chain(command.groups.iter().copied())))
            }
        },
        other => Err(args::unexpected(other, PROGRAM)),
    }
}

/// Whether `-V` or `--version` stands among the arguments (before any `--`): like the other
/// global options, it may come before or after the command.
fn asks_for_version(arguments: &[OsString]) -> bool {
    (arguments.iter())
        .take_while(|argument| *argument != "--")
        .any(|argument| argument == "-V" || argument == "--version")
}

fn find(name: &str) -> Result<&'static Command> {
    COMMANDS
        .iter()
        .find(|command| command.name == name)
        .ok_or_else(|| {
            let meant = args::nearest(name, COMMANDS.iter().map(|command| command.name));
            let meant = meant
                .map(|m| format!(" (did you mean {m}?)"))
                .unwrap_or_default();
            Error::Usage(format!(
                "unknown command \"{}\"{meant}; see '{PROGRAM} --help'",
                inert(name)
            ))
        })
}

/// `error`, and when it is an unknown flag of a command whose help texts are `helps`, the
/// flag there nearest to it.
fn with_nearest_flag<'a>(error: Error, helps: impl Iterator<Item = &'a str>) -> Error {
    let Error::Usage(message) = &error else {
        return error;
    };
    let typed = (message.strip_prefix("unknown option ")).and_then(|rest| rest.split_once(';'));
    let Some((typed, rest)) = typed else {
        return error;
    };
    match args::nearest(typed, helps.flat_map(args::option_names)) {
        Some(meant) => Error::Usage(format!(
            "unknown option {typed} (did you mean {meant}?);{rest}"
        )),
        None => error,
    }
}

/// What `help -h` says.
const HELP_USAGE: &str = "\
Show the long help of the program, or of one command.

Usage: docker-image-pusher help [COMMAND]

Arguments:
  COMMAND  one of the commands 'docker-image-pusher --help' lists
";

/// `help [COMMAND]`: the long help of the program or of a command.
fn help_command(parser: &mut Parser, globals: &mut Globals) -> Result<()> {
    match args::next(parser, &mut [globals], PROGRAM)?
        .as_ref()
        .map(args::Flag::as_arg)
    {
        None => print_help(USAGE, &[], DETAILS, true),
        Some(Arg::Short('h') | Arg::Long("help")) => write_stdout(HELP_USAGE.as_bytes()),
        Some(Arg::Value(name)) if name == "help" => write_stdout(HELP_USAGE.as_bytes()),
        Some(Arg::Value(name)) => {
            let command = find(&args::utf8(name, "command")?)?;
            print_help(command.usage, command.groups, command.details, true)
        }
        Some(other) => Err(args::unexpected(other, PROGRAM)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_push_takes_starts_the_one_shot_form() {
        let long = [
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
            "compress",
            "insecure-registry",
            "platform",
            "no-referrers",
            "concurrency-strategy",
            "sample-interval",
            "concurrency-manager",
            "enable-dynamic-concurrency",
            "progress-detail",
            "disable-progress",
        ];
        for name in long {
            assert!(starts_one_shot(&Arg::Long(name)), "--{name}");
        }
        for c in ['r', 'f', 'u', 'p', 't', 'n'] {
            assert!(starts_one_shot(&Arg::Short(c)), "-{c}");
        }
        for name in ["bogus", "raw", "all", "config", "file-x"] {
            assert!(!starts_one_shot(&Arg::Long(name)), "--{name}");
        }
        assert!(!starts_one_shot(&Arg::Short('z')));
    }
}
