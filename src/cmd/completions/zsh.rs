//! The zsh completion script: `_arguments` with the global flags and a command word, then
//! `_arguments` with that command's flags, each with its description.

use std::fmt::Write;

use crate::args::HelpOption;

use super::{Spec, described, takes_file};

/// The script for `completions zsh`: an autoloadable `_docker-image-pusher`, which also
/// registers itself when sourced.
pub(super) fn script(commands: &[Spec], top: &Spec) -> String {
    let mut text = String::from(
        "#compdef docker-image-pusher\n\
         # zsh completion for docker-image-pusher, written by\n\
         # `docker-image-pusher completions zsh`.\n\n\
         _docker_image_pusher() {\n  \
         local curcontext=$curcontext state line ret=1\n  \
         local -a commands\n  \
         commands=(\n",
    );
    for spec in commands {
        let entry = format!("{}:{}", spec.name, spec.summary.replace(':', r"\:"));
        let _ = writeln!(text, "    {}", quoted(&entry));
    }
    text.push_str("  )\n  _arguments -C \\\n");
    push_specs(&mut text, top, "    ");
    text.push_str(
        "    ': :->command' \\\n    \
         '*:: :->args' && ret=0\n  \
         case $state in\n    \
         command) _describe -t commands command commands && ret=0 ;;\n    \
         args)\n      \
         curcontext=${curcontext%:*:*}:docker-image-pusher-$words[1]:\n      \
         case $words[1] in\n",
    );
    for spec in commands {
        let _ = writeln!(text, "        {})\n          _arguments \\", spec.name);
        push_specs(&mut text, spec, "            ");
        let rest = if !spec.words.is_empty() {
            format!("'*: :({})'", spec.words.join(" "))
        } else if spec.arguments {
            "'*:file:_files'".to_string()
        } else {
            String::new()
        };
        let _ = writeln!(text, "            {rest} && ret=0 ;;");
    }
    text.push_str(
        "        *) _files && ret=0 ;;\n      \
         esac ;;\n  \
         esac\n  \
         return ret\n\
         }\n\n\
         if [[ $zsh_eval_context[-1] == loadautofunc ]]; then\n  \
         _docker_image_pusher \"$@\"\n\
         else\n  \
         compdef _docker_image_pusher docker-image-pusher\n\
         fi\n",
    );
    text
}

/// One `_arguments` spec a line, ending in ` \`, for each spelling of each flag.
fn push_specs(text: &mut String, spec: &Spec, indent: &str) {
    for option in &spec.options {
        for name in &option.names {
            let _ = writeln!(text, "{indent}{} \\", quoted(&option_spec(name, option)));
        }
    }
}

/// `--file[the source]:FILE:_files`: a flag, its description and what its value is.
fn option_spec(name: &str, option: &HelpOption<'_>) -> String {
    let mut spec = format!("{name}[{}]", escaped(described(option)));
    if let Some(value) = option.value {
        let action = if takes_file(option) { "_files" } else { " " };
        spec.push_str(&format!(":{}:{action}", escaped(value)));
    }
    spec
}

/// `text` with the characters `_arguments` gives a meaning to (`[]:\`) escaped.
fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '[' | ']' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `text` as one single-quoted shell word.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
