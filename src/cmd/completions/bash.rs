//! The bash completion script: a function that finds the command word, then offers its
//! flags for a word that starts with `-`, its words (`help`'s commands), or file names.

use std::fmt::Write;

use super::Spec;

/// The script for `completions bash`.
pub(super) fn script(commands: &[Spec], top: &Spec) -> String {
    let mut text = String::from(
        "# bash completion for docker-image-pusher, written by\n\
         # `docker-image-pusher completions bash`.\n\n\
         _docker_image_pusher() {\n    \
         local cur=${COMP_WORDS[COMP_CWORD]} command='' flags words i\n    \
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
        let _ = writeln!(
            text,
            "        {pattern}) flags='{}' words='{}' ;;",
            spec.flag_words(),
            spec.words.join(" ")
        );
    }
    let _ = writeln!(text, "        *) flags='{}' words='' ;;", top.flag_words());
    text.push_str(
        "    esac\n    \
         if [[ $cur == -* ]]; then\n        \
         mapfile -t COMPREPLY < <(compgen -W \"$flags\" -- \"$cur\")\n    \
         elif [[ -n $words ]]; then\n        \
         mapfile -t COMPREPLY < <(compgen -W \"$words\" -- \"$cur\")\n    \
         else\n        \
         # File names: bash's own completion, which -o default falls back to.\n        \
         COMPREPLY=()\n    \
         fi\n\
         }\n\n\
         complete -o bashdefault -o default -F _docker_image_pusher docker-image-pusher\n",
    );
    text
}
