//! Shell completions and the manual page, as the program writes them: each script run in its
//! real shell completes a command word, a flag and a command's argument; the page is read by
//! groff. A test whose shell is missing fails: scripts/install-deps.sh installs them.

mod support;

use std::fs;
use std::path::Path;

use support::{TempDir, run, tool};

/// The program's commands, as its top-level help lists them.
fn listed_commands() -> Vec<String> {
    let help = run(&["--help"]).success().stdout;
    let section = help
        .split("\nCommands:\n")
        .nth(1)
        .expect("a Commands section");
    (section.lines())
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The flags a command's `--help` lists on its option lines.
fn help_flags(command: &str) -> Vec<String> {
    let help = run(&[command, "--help"]).success().stdout;
    let lines = help.lines().filter_map(|line| {
        (line.strip_prefix("      --").map(|_| &line[6..]))
            .or_else(|| line.strip_prefix("  -").map(|_| &line[2..]))
    });
    lines
        .flat_map(|line| {
            let head = line.split("  ").next().unwrap_or_default();
            head.split(", ")
                .filter_map(|part| part.split([' ', '=', '[']).next())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The script for `shell`, written into `dir` as `name`.
fn script(dir: &TempDir, shell: &str, name: &str) -> String {
    let text = run(&["completions", shell]).success().stdout;
    let path = dir.join(name);
    fs::write(&path, text).expect("writing the script");
    path.display().to_string()
}

/// What bash's completion function offers for the words of `line` (the last one being
/// completed, empty after a trailing space).
fn bash_completes(script: &str, line: &str) -> Vec<String> {
    let mut words: Vec<&str> = line.split(' ').collect();
    let current = words.len() - 1;
    let words: Vec<String> = words.drain(..).map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source {script}; COMP_WORDS=({}); COMP_CWORD={current}; _docker_image_pusher; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        words.join(" ")
    );
    let out = tool("bash", &["--norc", "--noprofile", "-c", &program]);
    // printf prints one empty line for no candidate.
    (out.lines().filter(|line| !line.is_empty()))
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_commands_flags_and_help_words() {
    let dir = TempDir::new("bash-completion");
    let script = script(&dir, "bash", "docker-image-pusher");
    assert_eq!(bash_completes(&script, "docker-image-pusher pus"), ["push"]);
    assert_eq!(
        bash_completes(&script, "docker-image-pusher push --dry"),
        ["--dry-run"]
    );
    assert_eq!(
        bash_completes(&script, "docker-image-pusher -v --cache-dir pull pu"),
        ["pull", "push"],
        "a global flag's value is not the command"
    );
    assert_eq!(
        bash_completes(&script, "docker-image-pusher -r http://r/app --dry"),
        ["--dry-run"],
        "the one-shot form completes push's flags"
    );
    assert_eq!(
        bash_completes(&script, "docker-image-pusher help lo"),
        ["login", "logout"]
    );
    assert_eq!(
        bash_completes(&script, "docker-image-pusher completions "),
        ["bash", "zsh", "fish"]
    );
    // A flag's value is no command word and no flag: bash's file names, or nothing.
    let none: [&str; 0] = [];
    assert_eq!(
        bash_completes(&script, "docker-image-pusher --cache-dir "),
        none
    );
    assert_eq!(
        bash_completes(&script, "docker-image-pusher help --cache-dir "),
        none
    );
    assert_eq!(
        bash_completes(&script, "docker-image-pusher push --platform "),
        none
    );
    // Every command the help lists is offered, and every flag each command's --help lists.
    let offered = bash_completes(&script, "docker-image-pusher ");
    let listed = listed_commands();
    assert!(listed.len() >= 16, "{listed:?}");
    assert_eq!(offered, listed);
    for command in listed.iter().filter(|c| *c != "help") {
        let flags = bash_completes(&script, &format!("docker-image-pusher {command} -"));
        for flag in help_flags(command) {
            assert!(flags.contains(&flag), "{command} {flag}: {flags:?}");
        }
    }
}

/// Types `line` and a tab into an interactive `zsh -f` on a pseudo-terminal (zpty), with
/// compinit loading the script from `fpath`, and prints the line that the completion left.
const ZSH_HARNESS: &str = r#"
zmodload zsh/zpty
zpty -b z "TERM=xterm HOME=$3 zsh -f -i"
zpty -w z "PS1='' fpath=($1 \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z "m=@; dump() { print -r -- \"\${m}\${m}[\$BUFFER]\${m}\${m}\" }; zle -N dump; bindkey '^X' dump"
zpty -w -n z "$2"$'\t'$'\C-x'
zpty -r z out '*@@\[*\]@@*'
out=${out##*@@\[}
print -r -- "${out%%\]@@*}"
"#;

/// The line zsh's completion makes of `line` with one tab.
fn zsh_completes(dir: &TempDir, line: &str) -> String {
    let harness = dir.join("harness.zsh");
    fs::write(&harness, ZSH_HARNESS).expect("writing the harness");
    let fpath = dir.path().display().to_string();
    let args = [
        "20",
        "zsh",
        "-f",
        &harness.display().to_string(),
        &fpath,
        line,
        &fpath,
    ];
    tool("timeout", &args).trim_end_matches('\n').to_string()
}

#[test]
fn zsh_completes_commands_flags_and_files_on_a_terminal() {
    let dir = TempDir::new("zsh-completion");
    let script = script(&dir, "zsh", "_docker-image-pusher");
    tool("zsh", &["-n", &script]);
    assert_eq!(
        zsh_completes(&dir, "docker-image-pusher pus"),
        "docker-image-pusher push "
    );
    assert_eq!(
        zsh_completes(&dir, "docker-image-pusher push --dry"),
        "docker-image-pusher push --dry-run "
    );
    assert_eq!(
        zsh_completes(&dir, "docker-image-pusher -q list --js"),
        "docker-image-pusher -q list --json "
    );
    assert_eq!(
        zsh_completes(&dir, "docker-image-pusher completions fi"),
        "docker-image-pusher completions fish "
    );
    fs::create_dir(dir.join("certs")).expect("a folder");
    let line = format!(
        "docker-image-pusher push --ca-cert {}/cer",
        dir.path().display()
    );
    assert_eq!(zsh_completes(&dir, &line), format!("{line}ts/"));
}

/// What fish offers for `line`: each candidate, without its description.
fn fish_completes(script: &str, line: &str) -> Vec<String> {
    let program = format!("source {script}; complete -C '{line}'");
    let out = tool("fish", &["--no-config", "-c", &program]);
    (out.lines())
        .map(|l| l.split('\t').next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn fish_completes_commands_and_flags_with_their_descriptions() {
    let dir = TempDir::new("fish-completion");
    let script = script(&dir, "fish", "docker-image-pusher.fish");
    tool("fish", &["--no-config", "-n", &script]);
    assert_eq!(fish_completes(&script, "docker-image-pusher pus"), ["push"]);
    assert_eq!(
        fish_completes(&script, "docker-image-pusher push --dry"),
        ["--dry-run"]
    );
    let described = tool(
        "fish",
        &[
            "--no-config",
            "-c",
            &format!("source {script}; complete -C 'docker-image-pusher push --dry'"),
        ],
    );
    let wanted = run(&["push", "--help"]).success().stdout;
    let description = described.trim_end().split('\t').nth(1).unwrap_or_default();
    assert!(
        !description.is_empty() && wanted.contains(description),
        "{described}"
    );
    let mut shells = fish_completes(&script, "docker-image-pusher completions ");
    shells.sort();
    assert_eq!(shells, ["bash", "fish", "zsh"]);
    assert!(fish_completes(&script, "docker-image-pusher list --").contains(&"--json".into()));
}

#[test]
fn the_manual_page_names_every_command_and_exit_code_and_groff_reads_it_cleanly() {
    let page = run(&["man"]).success().stdout;
    assert!(page.starts_with(".TH DOCKER-IMAGE-PUSHER 1 "), "{page}");
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH DESCRIPTION",
        ".SH COMMANDS",
        ".SH OPTIONS",
    ] {
        assert!(page.contains(&format!("\n{section}\n")), "{section}");
    }
    let dir = TempDir::new("man-page");
    let path = dir.join("docker-image-pusher.1");
    fs::write(&path, &page).expect("writing the page");
    let shown = groff(&path);
    for command in listed_commands() {
        let summary = run(&[&command, "-h"]).success().stdout;
        let summary = summary.lines().next().unwrap_or_default().to_string();
        assert!(shown.contains(&command), "{command}");
        assert!(shown.contains(&summary), "{command}: {summary}");
    }
    // Every flag of every command, from its own options or the shared groups, and the
    // global ones.
    for command in listed_commands().iter().filter(|c| *c != "help") {
        for flag in help_flags(command) {
            assert!(shown.contains(&flag), "{command} {flag}");
        }
    }
    let exit = shown
        .split("EXIT STATUS")
        .nth(1)
        .expect("an EXIT STATUS section");
    for code in ["0", "1", "2", "3", "4", "5", "6"] {
        assert!(
            exit.lines().any(|l| l.trim_start().starts_with(code)),
            "exit {code}"
        );
    }
    assert!(
        exit.contains("not found (image or file)") && exit.contains("usage error"),
        "{exit}"
    );
}

/// The page as groff formats it (UTF-8, no bold or underline), with every warning on and
/// none given.
fn groff(page: &Path) -> String {
    let out = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-P-cbou", "-ww", "-rLL=200n"])
        .arg(page)
        .output()
        .expect("cannot run groff; scripts/install-deps.sh installs it");
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && warnings.is_empty(),
        "groff: {warnings}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
