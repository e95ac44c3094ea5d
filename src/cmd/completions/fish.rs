//! The fish completion script: `complete` lines for the command words before any, and for
//! each command's flags once its word is on the line.

use std::fmt::Write;

use crate::args::HelpOption;

use super::{Spec, described, takes_file};

/// The script for `completions fish`.
pub(super) fn script(commands: &[Spec], top: &Spec) -> String {
    let mut text = String::from(
        "# fish completion for docker-image-pusher, written by\n\
         # `docker-image-pusher completions fish`.\n\n",
    );
    let names: Vec<&str> = commands.iter().map(|spec| spec.name).collect();
    let before = format!("not __fish_seen_subcommand_from {}", names.join(" "));
    for option in &top.options {
        let _ = writeln!(text, "{}", complete(&before, option));
    }
    for spec in commands {
        let _ = writeln!(
            text,
            "complete -c docker-image-pusher -n {} -f -a {} -d {}",
            quoted(&before),
            spec.name,
            quoted(&spec.summary)
        );
    }
    for spec in commands {
        let seen = format!("__fish_seen_subcommand_from {}", spec.name);
        text.push('\n');
        for option in &spec.options {
            let _ = writeln!(text, "{}", complete(&seen, option));
        }
        if !spec.words.is_empty() {
            let words = spec.words.join(" ");
            let _ = writeln!(
                text,
                "complete -c docker-image-pusher -n {} -f -a {}",
                quoted(&seen),
                quoted(&words)
            );
        } else if !spec.arguments {
            let _ = writeln!(
                text,
                "complete -c docker-image-pusher -n {} -f",
                quoted(&seen)
            );
        }
    }
    text
}

/// The `complete` line of one flag, offered when `condition` holds.
fn complete(condition: &str, option: &HelpOption<'_>) -> String {
    let mut line = format!("complete -c docker-image-pusher -n {}", quoted(condition));
    for name in &option.names {
        match name.strip_prefix("--") {
            Some(long) => line.push_str(&format!(" -l {long}")),
            None => line.push_str(&format!(" -s {}", name.trim_start_matches('-'))),
        }
    }
    if option.value.is_some() {
        line.push_str(if takes_file(option) {
            " -r -F"
        } else {
            " -r -f"
        });
    }
    line.push_str(&format!(" -d {}", quoted(described(option))));
    line
}

/// `text` as one single-quoted fish word.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\\', r"\\").replace('\'', r"\'"))
}
