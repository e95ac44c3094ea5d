//! The command line: help and version on stdout with exit 0, usage errors as one line naming
//! the flag with exit 2, and the environment fallbacks.

mod support;

use std::path::Path;

use support::registry::{Setup, TestRegistry};
use support::tarball::{legacy_items, write_tar};
use support::{TempDir, TestCache, command, run, verify_cache};

const COMMANDS: [&str; 15] = [
    "pull",
    "push",
    "copy",
    "save",
    "sync",
    "bundle",
    "tags",
    "inspect",
    "extract",
    "list",
    "clean",
    "login",
    "logout",
    "completions",
    "man",
];

#[test]
fn help_is_on_stdout_short_and_long() {
    for prefix in std::iter::once(&[][..]).chain(COMMANDS.iter().map(std::slice::from_ref)) {
        let short = run(&[prefix, &["-h"]].concat()).success();
        let long = run(&[prefix, &["--help"]].concat()).success();
        assert!(
            short.stdout.contains("Usage: docker-image-pusher"),
            "{prefix:?}: {}",
            short.stdout
        );
        assert!(
            short.stdout.contains("--cache-dir"),
            "{prefix:?}: global options are listed"
        );
        assert!(
            long.stdout.len() > short.stdout.len(),
            "{prefix:?}: --help says more than -h"
        );
        assert!(
            short.stdout.lines().count() <= 45,
            "{prefix:?}: -h is short: {}",
            short.stdout
        );
        assert!(short.stderr.is_empty() && long.stderr.is_empty());
    }
    let top = run(&["--help"]).success();
    for command in COMMANDS {
        assert!(
            top.stdout.contains(command),
            "{command} is not in the program's help"
        );
        let help = run(&["help", command]).success();
        assert_eq!(help.stdout, run(&[command, "--help"]).success().stdout);
    }
    assert!(top.stdout.contains("Exit codes"));
    let push = run(&["push", "--help"]).success().stdout;
    for alias in [
        "--progress-detail",
        "--disable-progress",
        "--concurrency-manager",
        "--enable-dynamic-concurrency",
        "--concurrency-strategy",
    ] {
        assert!(push.contains(alias), "push --help names {alias}");
    }
    let short = run(&["push", "-h"]).success().stdout;
    assert!(
        short.contains("Registry, Transfer, Progress options too: see --help."),
        "{short}"
    );
    // Every command that takes arguments says what they are; login names its credentials.
    for command in COMMANDS.iter().filter(|c| !["list", "man"].contains(c)) {
        let short = run(&[command, "-h"]).success().stdout;
        assert!(short.contains("\nArguments:\n"), "{command} -h: {short}");
    }
    let login = run(&["login", "-h"]).success().stdout;
    assert!(login.contains("--password-stdin") && login.contains("-u, --username"));
    let extract = run(&["extract", "--help"]).success().stdout;
    assert!(
        extract.contains("Nothing here talks to a registry"),
        "{extract}"
    );
    let help = run(&["help", "-h"]).success().stdout;
    assert!(
        help.contains("Usage: docker-image-pusher help [COMMAND]"),
        "{help}"
    );
}

#[test]
fn version_is_printed() {
    let version = run(&["--version"]).success();
    assert_eq!(
        version.stdout.trim(),
        format!("docker-image-pusher {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_name_what_is_wrong_and_exit_2() {
    for (args, mentions) in [
        (&["extract", "--bogus"][..], "--bogus"),
        (&["list", "-z"], "-z"),
        (&["frobnicate"], "frobnicate"),
        (&["psuh"], "\"psuh\" (did you mean push?)"),
        (
            &["login", "127.0.0.1:9", "-u", "ci", "--password-stdin"],
            "standard input held no password",
        ),
        (
            &["push", "--dry-rn", "a.tar", "r/x"],
            "--dry-rn (did you mean --dry-run?)",
        ),
        (&["sync", "--jbos", "2"], "(did you mean --jobs?)"),
        (&["pull", "--verbos", "x"], "(did you mean --verbose?)"),
        (&["--cache-dir"], "--cache-dir"),
        (&["extract", "--image"], "--image"),
        (&["extract", "a.tar", "--tag", "Bad:Name"], "--tag"),
        (&["extract"], "no archive"),
        (&[], "no command"),
        (&["list", "--json=yes"], "--json"),
        (&["pull", "x", "--limit-rate", "0"], "--limit-rate"),
        (
            &[
                "pull",
                "x",
                "--concurrency",
                "dynamic",
                "--min-concurrent",
                "3",
                "--max-concurrent",
                "2",
            ],
            "--min-concurrent",
        ),
        (
            &["pull", "x", "--concurrency", "sometimes"],
            "--concurrency",
        ),
        (&["pull", "x", "--progress", "loud"], "--progress"),
        (
            &[
                "copy",
                "a:1",
                "b:1",
                "--platform",
                "linux/arm64",
                "--all-platforms",
            ],
            "--all-platforms",
        ),
        (&["pull", "x", "--platform", "plan9"], "--platform"),
        (
            &["--max-concurrent", "2", "extract", "a.tar"],
            "options go after its name",
        ),
        (&["pull", "x", "--limit-rate", "fast"], "--limit-rate"),
        (&["extract", "a.tar", "b.tar"], "one archive at a time"),
        (
            &["extract", "-f", "a.tar", "--file", "b.tar"],
            "one archive at a time",
        ),
    ] {
        let failed = run(args).exits(2);
        assert_eq!(
            failed.stderr.lines().count(),
            1,
            "{args:?}: {}",
            failed.stderr
        );
        assert!(
            failed.stderr.contains(mentions),
            "{args:?}: {}",
            failed.stderr
        );
        assert!(failed.stdout.is_empty());
    }
    // Beside the warning that -p is visible to others.
    let empty = run(&["pull", "x", "-u", "ci", "-p", ""]).exits(2);
    assert!(
        empty.stderr.contains("--password: the password is empty"),
        "{}",
        empty.stderr
    );
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    let output = command(&["list"])
        .env("DOCKER_PUSHER_VERBOSE", "maybe")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("DOCKER_PUSHER_VERBOSE"));
}

#[test]
fn the_cache_directory_comes_from_the_flag_then_the_environment() {
    let dir = TempDir::new("cli");
    let archive = dir.join("x.tar");
    write_tar(&archive, &legacy_items(&[b"layer"], r#"["x:v1"]"#));
    let from_env = dir.join("from-env");
    let from_flag = dir.join("from-flag");
    let extract = |args: &[&str]| {
        let output = command(args)
            .env("DOCKER_PUSHER_CACHE_DIR", &from_env)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    extract(&["extract", archive.to_str().unwrap()]);
    assert!(from_env.join("index.json").exists());
    extract(&[
        "extract",
        archive.to_str().unwrap(),
        "--cache-dir",
        from_flag.to_str().unwrap(),
    ]);
    verify_cache(&from_env);
    verify_cache(&from_flag);
    assert!(
        from_flag.join("index.json").exists(),
        "the flag beats the variable, even after the command"
    );
}

#[test]
fn quiet_and_verbose_change_stderr_only() {
    let dir = TempDir::new("cli");
    let archive = dir.join("x.tar");
    write_tar(&archive, &legacy_items(&[b"layer"], r#"["x:v1"]"#));
    let archive = archive.to_str().unwrap();
    let quiet = TestCache::new();
    assert_eq!(quiet.run(&["-q", "extract", archive]).success().stderr, "");
    let verbose = TestCache::new();
    let said = verbose
        .run(&["extract", archive, "--verbose"])
        .success()
        .stderr;
    assert!(said.contains("copied"), "each blob is reported: {said}");
}

#[test]
fn an_empty_cache_lists_nothing() {
    let missing = Path::new("/nonexistent/dip-cache");
    let table = run(&["--cache-dir", missing.to_str().unwrap(), "list"]).success();
    assert_eq!(
        table.stdout.lines().count(),
        1,
        "only the header: {}",
        table.stdout
    );
    let json = run(&["--cache-dir", missing.to_str().unwrap(), "list", "--json"]).success();
    assert_eq!(json.stdout.trim(), "[]");
}

#[test]
fn every_environment_variable_refuses_a_bad_value_by_name() {
    for (name, bad) in [
        ("DOCKER_PUSHER_VERBOSE", "maybe"),
        ("DOCKER_PUSHER_SKIP_TLS", "yes please"),
        ("DOCKER_PUSHER_SKIP_EXISTING", "2"),
        ("DOCKER_PUSHER_TIMEOUT", "soon"),
        ("DOCKER_PUSHER_RETRY_ATTEMPTS", "-1"),
        ("DOCKER_PUSHER_MAX_CONCURRENT", "0"),
        ("DOCKER_PUSHER_LARGE_LAYER_THRESHOLD", "big"),
    ] {
        let output = command(&["push", "a.tar", "localhost/x:y"])
            .env(name, bad)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}={bad}: {stderr}");
        assert!(stderr.contains(name), "{name}={bad}: {stderr}");
    }
}

#[test]
fn the_one_shot_form_is_recognised_whatever_flag_comes_first() {
    // Nothing listens on port 1: reaching the connection step (after the archive is read)
    // proves the form was parsed.
    let target = "http://127.0.0.1:1/app:v1";
    let dir = TempDir::new("one-shot");
    let archive = dir.join("x.tar");
    write_tar(&archive, &legacy_items(&[b"layer"], r#"["app:v1"]"#));
    let archive = archive.to_str().unwrap();
    for args in [
        vec!["-r", target, "-f", archive, "--retry-attempts", "0"],
        vec![
            "-u",
            "user",
            "-p",
            "pass",
            "-f",
            archive,
            "-r",
            target,
            "--retry-attempts",
            "0",
        ],
        vec![
            "--max-concurrent",
            "4",
            "-f",
            archive,
            "-r",
            target,
            "--retry-attempts",
            "0",
        ],
    ] {
        let failed = run(&args).exits(5);
        assert!(
            failed.stderr.contains("127.0.0.1:1/v2/"),
            "{args:?}: {}",
            failed.stderr
        );
    }
    let twice = run(&["-f", "a.tar", "-f", "b.tar", "-r", target]).exits(2);
    assert!(
        twice.stderr.contains("one source at a time"),
        "{}",
        twice.stderr
    );
}

/// Where the binary's output goes in [`into_closed_pipe`].
enum Closed {
    Stdout,
    Stderr,
}

/// Runs the binary with `args`, its stdout or stderr a pipe whose reader is already gone, as
/// `| head -1` leaves it once head has its line; returns the exit code (`None`: a signal) and
/// the other stream.
fn into_closed_pipe(args: &[&str], closed: Closed) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut command = command(args);
    let output = match closed {
        Closed::Stdout => command.stdout(writer).output().unwrap(),
        Closed::Stderr => command.stderr(writer).output().unwrap(),
    };
    let other = match closed {
        Closed::Stdout => output.stderr,
        Closed::Stderr => output.stdout,
    };
    (
        output.status.code(),
        String::from_utf8_lossy(&other).into_owned(),
    )
}

#[test]
fn a_closed_pipe_ends_the_program_quietly() {
    let dir = TempDir::new("pipe");
    let archive = dir.join("app.tar");
    write_tar(
        &archive,
        &legacy_items(&[b"layer"], r#"["example.com/app:v1"]"#),
    );
    let cache = dir.join("cache");
    let cache = cache.to_str().unwrap();
    let archive = archive.to_str().unwrap();
    let with_cache = |args: &[&'static str]| -> Vec<String> {
        ["--cache-dir", cache]
            .iter()
            .chain(args)
            .map(|a| a.to_string())
            .collect()
    };
    let extract_json: Vec<String> = with_cache(&["extract", "--json"])
        .into_iter()
        .chain([archive.to_string()])
        .collect();
    let runs: Vec<Vec<String>> = vec![
        extract_json.clone(),
        with_cache(&["list"]),
        with_cache(&["list", "--json"]),
        with_cache(&["inspect", "example.com/app:v1", "--json"]),
        vec!["--help".into()],
        vec!["push".into(), "-h".into()],
        vec!["--version".into()],
    ];
    for args in &runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stderr) = into_closed_pipe(&args, Closed::Stdout);
        assert_eq!(code, Some(0), "{args:?} into a closed stdout: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let args: Vec<&str> = extract_json.iter().map(String::as_str).collect();
    let (code, _) = into_closed_pipe(&args, Closed::Stderr);
    assert_eq!(code, Some(0), "extract with a closed stderr");
    let (code, _) = into_closed_pipe(
        &["--cache-dir", cache, "extract", "missing.tar"],
        Closed::Stderr,
    );
    assert_eq!(
        code,
        Some(6),
        "a failure keeps its exit code (not found) with a closed stderr"
    );
    // `2>&-`: no stderr at all.
    let json = format!("extract --json '{archive}'");
    for (args, expected) in [(json.as_str(), 0), ("extract missing.tar", 6)] {
        let line = format!("'{}' --cache-dir '{cache}' {args} 2>&-", support::bin());
        let status = std::process::Command::new("bash")
            .args(["-c", &line])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(expected), "{line}");
    }
}

#[test]
fn version_and_booleans_work_wherever_they_are_given() {
    for args in [&["-V"][..], &["list", "-V"], &["pull", "--version"]] {
        let run = run(args).success();
        assert!(
            run.stdout.starts_with("docker-image-pusher "),
            "{args:?}: {}",
            run.stdout
        );
    }
    assert!(run(&["--help"]).success().stdout.contains("-V, --version"));
    let dir = TempDir::new("booleans");
    let cache = dir.join("cache");
    for (value, code) in [("yes", 0), ("no", 0), ("1", 0), ("true", 0), ("maybe", 2)] {
        let output = command(&["--cache-dir", cache.to_str().unwrap(), "list"])
            .env("DOCKER_PUSHER_VERBOSE", value)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(code),
            "DOCKER_PUSHER_VERBOSE={value}"
        );
    }
}

#[test]
fn json_seconds_are_milliseconds_and_a_default_tag_is_said() {
    let dir = TempDir::new("json-seconds");
    let archive = dir.join("app.tar");
    write_tar(
        &archive,
        &legacy_items(&[b"layer"], r#"["example.com/app:v1"]"#),
    );
    let cache = TestCache::new();
    let run = cache
        .run(&["extract", "--json", archive.to_str().unwrap()])
        .success();
    let result: serde_json::Value =
        serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
    let seconds = result["seconds"].as_f64().unwrap();
    assert_eq!((seconds * 1000.0).round() / 1000.0, seconds, "{seconds}");
    // Nothing listens on port 9; the caution comes before the connection fails.
    let run = cache.run(&[
        "push",
        archive.to_str().unwrap(),
        "--registry",
        "http://127.0.0.1:9",
        "--repository",
        "app",
        "--retry-attempts",
        "0",
    ]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr.contains("the tag latest is taken"),
        "{}",
        run.stderr
    );
}

#[test]
fn each_blob_is_reported_once_and_the_cache_is_named_where_it_matters() {
    let dir = TempDir::new("said-once");
    let archive = dir.join("app.tar");
    write_tar(
        &archive,
        &legacy_items(&[b"one", b"two"], r#"["example.com/app:v1"]"#),
    );
    let cache = TestCache::new();
    let run = cache
        .run(&["extract", "-v", archive.to_str().unwrap()])
        .success();
    let copied: Vec<&str> = (run.stderr.lines())
        .filter(|l| l.starts_with("sha256:") && l.contains(" copied"))
        .collect();
    assert_eq!(
        copied.len(),
        3,
        "config and two layers, once each:\n{}",
        run.stderr
    );

    let empty = TestCache::new();
    let shown = std::path::absolute(empty.path()).unwrap();
    let listed = empty.run(&["list"]).success();
    assert!(
        listed.stderr.contains(&shown.display().to_string()),
        "{}",
        listed.stderr
    );
    let missing = empty.run(&["push", "nosuch", "127.0.0.1:9/x:v1"]).exits(6);
    assert!(
        missing.stderr.contains(&shown.display().to_string()),
        "{}",
        missing.stderr
    );
}

#[test]
fn registry_commands_end_quietly_into_a_closed_pipe() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("pipe-registry");
    let archive = dir.join("app.tar");
    write_tar(
        &archive,
        &legacy_items(&[b"layer"], r#"["example.com/app:v1"]"#),
    );
    let list = dir.join("list.txt");
    let host = registry.host();
    std::fs::write(&list, format!("{host}/pipe/app:v1 {host}/pipe/synced:v1\n")).unwrap();
    let cache = dir.join("cache");
    let (cache, archive, list) = (
        cache.to_str().unwrap(),
        archive.to_str().unwrap(),
        list.to_str().unwrap(),
    );
    let image = format!("{host}/pipe/app:v1");
    let copied = format!("{host}/pipe/copied:v1");
    let repository = format!("{host}/pipe/app");
    let runs: [&[&str]; 8] = [
        &["push", "--json", archive, &image],
        &["pull", "--json", &image],
        &["copy", "--json", &image, &copied],
        &["sync", "--json", "--file", list],
        &["sync", "--file", list],
        &["tags", &repository],
        &["tags", "--json", &repository],
        &["inspect", "--remote", "--json", &image],
    ];
    for args in runs {
        let all: Vec<&str> = ["--cache-dir", cache].iter().chain(args).copied().collect();
        let (code, stderr) = into_closed_pipe(&all, Closed::Stdout);
        assert_eq!(code, Some(0), "{args:?} into a closed stdout: {stderr}");
    }
}
