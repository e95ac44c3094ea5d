//! `man`: the manual page, in roff, written from the program's help texts: the synopsis and
//! exit codes of the top-level help, each command's first help line, the global flags.

use lexopt::{Arg, Parser};

use crate::args::{self, GLOBAL_HELP, Globals};
use crate::error::Result;

use super::{COMMANDS, DETAILS as TOP_DETAILS, HELP_USAGE, USAGE as TOP_USAGE};
use crate::run::output::{long_groups, print_help, summary, write_stdout};

const COMMAND: &str = "docker-image-pusher man";

/// The synopsis and options.
pub const USAGE: &str = "\
Print the manual page (roff, section 1) on stdout.

Usage: docker-image-pusher man [OPTIONS]";

/// The flag groups it accepts besides the global ones, as shown in its help.
pub const GROUPS: &[&str] = &[];

/// The long help.
pub const DETAILS: &str = "

The page is written from the same texts as --help: the synopsis, every command with its
first help line and usage, the global options and the exit codes. Install it with
  docker-image-pusher man > /usr/local/share/man/man1/docker-image-pusher.1
or read it with man -l <(docker-image-pusher man).";

/// Runs `man` on the rest of the command line.
pub fn run(parser: &mut Parser, mut globals: Globals) -> Result<()> {
    // No arguments but the global ones: the first other one is help or a mistake.
    if let Some(flag) = args::next(parser, &mut [&mut globals], COMMAND)? {
        return match flag.as_arg() {
            Arg::Short('h') => print_help(USAGE, GROUPS, DETAILS, false),
            Arg::Long("help") => print_help(USAGE, GROUPS, DETAILS, true),
            other => Err(args::unexpected(other, COMMAND)),
        };
    }
    write_stdout(page().as_bytes())
}

/// The whole page.
fn page() -> String {
    let program = summary(TOP_USAGE);
    let mut page = format!(
        ".TH DOCKER-IMAGE-PUSHER 1 \"\" \"docker-image-pusher {}\" \"User Commands\"\n.nh\n.ad l\n\
         .SH NAME\ndocker\\-image\\-pusher \\- {}\n.SH SYNOPSIS\n.nf\n{}.fi\n\
         .SH DESCRIPTION\n{}\n.PP\n{}\n.SH COMMANDS\n",
        env!("CARGO_PKG_VERSION"),
        escaped(program.trim_end_matches('.')),
        usage_lines(TOP_USAGE),
        escaped(&program),
        escaped(&paragraph(TOP_DETAILS, "Run ")),
    );
    let commands = COMMANDS
        .iter()
        .map(|command| (command.name, command.usage, command.groups));
    let mut shared: Vec<&str> = Vec::new();
    for (name, usage, groups) in commands.chain([("help", HELP_USAGE, &[][..])]) {
        page.push_str(&format!(
            ".SS {name}\n{}\n.PP\n.nf\n{}.fi\n{}",
            escaped(&summary(usage)),
            usage_lines(usage),
            options(usage)
        ));
        let groups: Vec<&str> = long_groups(groups).collect();
        if !groups.is_empty() {
            let titles: Vec<&str> = groups.iter().map(|group| title(group)).collect();
            page.push_str(&format!(
                ".PP\nAnd the {} (see SHARED OPTIONS).\n",
                escaped(&titles.join(", "))
            ));
        }
        for group in groups {
            if !shared.contains(&group) {
                shared.push(group);
            }
        }
    }
    page.push_str(".SH \"SHARED OPTIONS\"\n");
    for group in shared {
        page.push_str(&format!(
            ".SS \"{}\"\n{}",
            escaped(title(group)),
            options(group)
        ));
    }
    page.push_str(&format!(".SH OPTIONS\n{}", options(GLOBAL_HELP)));
    page.push_str(".SH \"EXIT STATUS\"\n");
    for (code, meaning) in exit_codes() {
        page.push_str(&format!(".TP\n.B {code}\n{}\n", escaped(&meaning)));
    }
    page
}

/// The options a help text lists, a `.TP` paragraph each.
fn options(help: &str) -> String {
    let mut text = String::new();
    for option in args::options(help) {
        let names: Vec<String> = (option.names.iter())
            .map(|name| format!("\\fB{}\\fR", escaped(name)))
            .collect();
        let value = option.value.map(|v| format!(" \\fI{}\\fR", escaped(v)));
        text.push_str(&format!(
            ".TP\n{}{}\n{}\n",
            names.join(", "),
            value.unwrap_or_default(),
            escaped(&option.description.join(" "))
        ));
    }
    text
}

/// A flag group's title: `Registry options` of `Registry options:`.
fn title(group: &str) -> &str {
    first_line(group).trim_end_matches(':')
}

/// The first line of a help text: what the command does.
fn first_line(help: &str) -> &str {
    help.lines().next().unwrap_or_default()
}

/// The `Usage:` lines of a help text, without that word, each ending in a newline.
fn usage_lines(help: &str) -> String {
    let lines = (help.lines())
        .skip_while(|line| !line.starts_with("Usage: "))
        .take_while(|line| !line.is_empty());
    let lines = lines.map(|line| line.strip_prefix("Usage: ").unwrap_or_else(|| &line[7..]));
    lines.map(|line| format!("{}\n", escaped(line))).collect()
}

/// The paragraph of `text` that starts with `start`, its lines joined.
fn paragraph(text: &str, start: &str) -> String {
    let found = text
        .split("\n\n")
        .find(|part| part.trim_start().starts_with(start));
    let lines = found.unwrap_or_default().split_whitespace();
    lines.collect::<Vec<_>>().join(" ")
}

/// The exit codes the top-level help lists: `0 success, 1 other failure, ...`.
fn exit_codes() -> Vec<(String, String)> {
    let text = paragraph(TOP_DETAILS, "Exit codes:");
    let list = text.trim_start_matches("Exit codes:").trim_end_matches('.');
    let mut codes: Vec<(String, String)> = Vec::new();
    for part in list.split(", ") {
        let (code, meaning) = part.trim().split_once(' ').unwrap_or((part, ""));
        match codes.last_mut() {
            // A comma inside a meaning: "3 bad input (archive, manifest, reference)".
            Some(last) if !code.chars().all(|c| c.is_ascii_digit()) => {
                last.1.push_str(", ");
                last.1.push_str(part.trim());
            }
            _ => codes.push((code.to_string(), meaning.to_string())),
        }
    }
    codes
}

/// `text` for a roff line: backslashes and hyphens escaped, any other than ASCII named by
/// its code point (`×` as `\[u00D7]`), a leading `.` or `'` made text.
fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str(r"\e"),
            '-' => out.push_str(r"\-"),
            c if c.is_ascii() => out.push(c),
            c => out.push_str(&format!("\\[u{:04X}]", u32::from(c))),
        }
    }
    if out.starts_with(['.', '\'']) {
        out.insert_str(0, r"\&");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_codes_are_read_whole_from_the_help() {
        let codes = exit_codes();
        let numbers: Vec<&str> = codes.iter().map(|(code, _)| code.as_str()).collect();
        assert_eq!(numbers, ["0", "1", "2", "3", "4", "5", "6"]);
        assert_eq!(codes[3].1, "bad input (archive, manifest, reference)");
        assert_eq!(codes[6].1, "not found (image or file)");
    }

    #[test]
    fn roff_escapes_what_it_must() {
        assert_eq!(escaped(r"-a\b"), r"\-a\eb");
        assert_eq!(escaped(".x"), r"\&.x");
        assert_eq!(escaped("10 × N"), r"10 \[u00D7] N");
    }
}
