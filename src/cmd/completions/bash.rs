//! The bash completion script: a function that finds the command word, then offers its
//! flags for a word that starts with `-`, its words (`help`'s commands), or file names;
//! after a flag that takes a value, file names for a file and nothing for anything else.

use std::fmt::Write;

use crate::args::HelpOption;

use super::{Spec, takes_file};

/// The script for `completions bash`.
pub(super) fn script(commands: &[Spec], top: &Spec) -> String {
    let mut text = String::from(
        "# bash completion for docker-image-pusher, written by\n\
         # `docker-image-pusher completions bash`.\n\n\
         _docker_image_pusher() {\n    \
         local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n    \
         local command='' flags words paths values files i\n    \
         for ((i = 1; i < COMP_CWORD; i++)); do\n        \
         case ${COMP_WORDS[i]} in\n",
    );
    // The global flags may come before the command; any other flag there starts push's
    // one-shot form (-r URL -f FILE).
    let (valued, bare): (Vec<_>, Vec<_>) = top.options.iter().partition(|o| o.value.is_some());
    let valued: Vec<&str> = valued
        .iter()
        .flat_map(|o| o.names.iter().copied())
        .collect();
    let mut bare: Vec<String> = bare
        .iter()
        .flat_map(|o| o.names.iter().map(|name| name.to_string()))
        .collect();
    bare.extend(valued.iter().map(|name| format!("{name}=*")));
    if !valued.is_empty() {
        let _ = writeln!(text, "            {}) ((i++)) ;;", valued.join("|"));
    }
    let _ = writeln!(text, "            {}) ;;", bare.join("|"));
    text.push_str(
        "            -*) command=push; break ;;\n            \
         *) command=${COMP_WORDS[i]}; break ;;\n        \
         esac\n    \
         done\n    \
         case $command in\n",
    );
    for spec in commands.iter().chain([top]) {
        let pattern = if spec.name.is_empty() {
            "''"
        } else {
            spec.name
        };
        let _ = writeln!(text, "        {pattern}) {} ;;", variables(spec));
    }
    // An unknown command: the global flags, then file names.
    let _ = writeln!(text, "        *) {}; words='' files=1 ;;", variables(top));
    text.push_str(
        "    esac\n    \
         if [[ \" $values \" == *\" $prev \"* ]]; then\n        \
         # A value, not a file: nothing to offer.\n        \
         compopt +o default +o bashdefault 2>/dev/null\n        \
         COMPREPLY=()\n    \
         elif [[ \" $paths \" == *\" $prev \"* ]]; then\n        \
         COMPREPLY=()\n    \
         elif [[ $cur == -* ]]; then\n        \
         mapfile -t COMPREPLY < <(compgen -W \"$flags\" -- \"$cur\")\n    \
         elif [[ -n $words ]]; then\n        \
         mapfile -t COMPREPLY < <(compgen -W \"$words\" -- \"$cur\")\n    \
         elif ((files)); then\n        \
         # File names: bash's own completion, which -o default falls back to.\n        \
         COMPREPLY=()\n    \
         else\n        \
         compopt +o default +o bashdefault 2>/dev/null\n        \
         COMPREPLY=()\n    \
         fi\n\
         }\n\n\
         complete -o bashdefault -o default -F _docker_image_pusher docker-image-pusher\n",
    );
    text
}

/// The shell variables of one command: its flags, its words, its flags that take a file and
/// those that take something else, and whether its arguments are file names.
fn variables(spec: &Spec) -> String {
    let valued = spec.options.iter().filter(|option| option.value.is_some());
    let (paths, values): (Vec<_>, Vec<_>) = valued.partition(|option| takes_file(option));
    let names = |options: Vec<&HelpOption<'_>>| -> String {
        let names = options.iter().flat_map(|option| &option.names);
        names.copied().collect::<Vec<&str>>().join(" ")
    };
    format!(
        "flags='{}' words='{}' paths='{}' values='{}' files={}",
        spec.flag_words(),
        spec.words.join(" "),
        names(paths),
        names(values),
        u8::from(spec.arguments && spec.words.is_empty())
    )
}
