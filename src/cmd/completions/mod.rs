//! `completions SHELL`: a completion script for bash, zsh or fish, written from the help
//! texts the commands show, so that it names every command and flag `--help` does.

mod bash;
mod fish;
mod zsh;

use std::collections::HashSet;

use lexopt::{Arg, Parser};

use crate::args::{self, GLOBAL_HELP, Globals, HelpOption};
use crate::error::{Error, Result};
use crate::inert::inert;

use super::{COMMANDS, HELP_USAGE};
use crate::run::output::{long_groups, print_help, summary, write_stdout};

const COMMAND: &str = "docker-image-pusher completions";

/// The shells a script can be written for.
const SHELLS: [&str; 3] = ["bash", "zsh", "fish"];

/// The synopsis and options.
pub const USAGE: &str = "\
Print a shell completion script for bash, zsh or fish on stdout.

Usage: docker-image-pusher completions [OPTIONS] SHELL

Arguments:
  SHELL  bash, zsh or fish";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = &[];

/// The long help.
pub const DETAILS: &str = "

The script completes the command names, then the chosen command's flags (those its
--help lists) and file names. It is written from the same texts as --help, so a new
flag appears in it with the next build. Install it where the shell looks:
  docker-image-pusher completions bash > ~/.local/share/bash-completion/completions/docker-image-pusher
  docker-image-pusher completions zsh > \"${fpath[1]}/_docker-image-pusher\"
  docker-image-pusher completions fish > ~/.config/fish/completions/docker-image-pusher.fish";

/// Runs `completions` on the rest of the command line.
pub fn run(parser: &mut Parser, mut globals: Globals) -> Result<()> {
    let mut shell = None;
    while let Some(flag) = args::next(parser, &mut [&mut globals], COMMAND)? {
        match flag.as_arg() {
            Arg::Short('h') => return print_help(USAGE, GROUPS, DETAILS, false),
            Arg::Long("help") => return print_help(USAGE, GROUPS, DETAILS, true),
            Arg::Value(value) if shell.is_none() => shell = Some(args::utf8(value, "SHELL")?),
            other => return Err(args::unexpected(other, COMMAND)),
        }
    }
    let shell =
        shell.ok_or_else(|| Error::Usage(format!("no shell given; see '{COMMAND} --help'")))?;
    let (commands, top) = (specs(), top_level());
    let script = match shell.as_str() {
        "bash" => bash::script(&commands, &top),
        "zsh" => zsh::script(&commands, &top),
        "fish" => fish::script(&commands, &top),
        other => {
            return Err(Error::Usage(format!(
                "unknown shell \"{}\": give one of {}",
                inert(other),
                SHELLS.join(", ")
            )));
        }
    };
    write_stdout(script.as_bytes())
}

/// What the completions offer after one command word (or before any).
struct Spec {
    /// The command word; empty before any.
    name: &'static str,
    /// What its help says it does, on one line.
    summary: String,
    /// Its flags: its own, its groups' and the global ones, each spelling once.
    options: Vec<HelpOption<'static>>,
    /// The words its arguments are when they are not file names (`help`'s commands).
    words: Vec<&'static str>,
    /// Whether it takes arguments at all (its help has an Arguments section).
    arguments: bool,
}

impl Spec {
    /// The spec of a command with this help.
    fn new(name: &'static str, usage: &'static str, groups: &[&'static str]) -> Spec {
        let helps = [usage].into_iter().chain(long_groups(groups));
        let mut seen = HashSet::new();
        let options = (helps.chain([GLOBAL_HELP]))
            .flat_map(args::options)
            .filter_map(|mut option| {
                option.names.retain(|name| seen.insert(*name));
                (!option.names.is_empty()).then_some(option)
            })
            .collect();
        let words = match name {
            "help" => COMMANDS.iter().map(|command| command.name).collect(),
            "completions" => SHELLS.to_vec(),
            _ => Vec::new(),
        };
        Spec {
            name,
            summary: summary(usage),
            options,
            arguments: usage.contains("\nArguments:\n") || !words.is_empty(),
            words,
        }
    }

    /// Its flags' spellings, space-separated.
    fn flag_words(&self) -> String {
        let names = self.options.iter().flat_map(|option| &option.names);
        names.copied().collect::<Vec<_>>().join(" ")
    }
}

/// Every command's spec, `help` last.
fn specs() -> Vec<Spec> {
    let commands = COMMANDS.iter();
    let mut specs: Vec<Spec> = commands
        .map(|command| Spec::new(command.name, command.usage, command.groups))
        .collect();
    specs.push(Spec::new("help", HELP_USAGE, &[]));
    specs
}

/// The spec before any command word: the global flags, then a command.
fn top_level() -> Spec {
    Spec {
        name: "",
        summary: String::new(),
        options: args::options(GLOBAL_HELP),
        words: command_names(),
        arguments: true,
    }
}

/// The command words, `help` last.
fn command_names() -> Vec<&'static str> {
    (COMMANDS.iter().map(|command| command.name))
        .chain(["help"])
        .collect()
}

/// The first line of an option's description, for a completion menu.
fn described<'a>(option: &HelpOption<'a>) -> &'a str {
    option.description.first().copied().unwrap_or_default()
}

/// Whether an option's value is a file name: a FILE, DIR, PATH, LIST or OLD (bundle).
fn takes_file(option: &HelpOption<'_>) -> bool {
    let value = option
        .value
        .map(|value| value.trim_start_matches(['=', '[']));
    value.is_some_and(|value| ["FILE", "DIR", "PATH", "LIST", "OLD"].contains(&value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_a_script_names_is_plain() {
        let plain = |word: &str| word.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        for spec in specs().iter().chain([&top_level()]) {
            assert!(plain(spec.name), "{}", spec.name);
            for word in spec
                .flag_words()
                .split(' ')
                .chain(spec.words.iter().copied())
            {
                assert!(plain(word) && !word.is_empty(), "{}: {word:?}", spec.name);
            }
        }
    }

    #[test]
    fn a_command_has_its_groups_tuning_and_global_flags_once() {
        let push = specs().into_iter().find(|spec| spec.name == "push");
        let flags = push.map(|spec| spec.flag_words()).unwrap_or_default();
        let flags: Vec<&str> = flags.split(' ').collect();
        for flag in [
            "-n",
            "--dry-run",
            "-u",
            "--concurrency-strategy",
            "--cache-dir",
            "-V",
        ] {
            assert_eq!(flags.iter().filter(|f| **f == flag).count(), 1, "{flag}");
        }
    }
}
