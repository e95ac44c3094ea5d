//! Hostile credential helpers, as small shell scripts on `PATH`: one that never answers, one
//! that floods its output, and a `config.json` that names a path instead of a helper. None of
//! them holds the run, fills its memory, or gets run from the working directory.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use support::registry::{Setup, TestRegistry};
use support::{Run, TempDir, TestCache, command, images};

/// Writes an executable shell script at `path`.
fn script(path: &Path, body: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A plain registry holding a small image; returns its reference.
fn image(dir: &TempDir, registry: &TestRegistry) -> String {
    let archive = images::docker_archive(dir.path(), "example.com/app:v1");
    let target = format!("{}/helpers/app:v1", registry.host());
    TestCache::new()
        .run(&["push", archive.to_str().unwrap(), &target])
        .success();
    target
}

/// Runs the binary in `dir` with `dir/docker` as `DOCKER_CONFIG` and `dir/bin` first on
/// `PATH`.
fn run_in(dir: &TempDir, args: &[&str]) -> Run {
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = command(args)
        .env("DOCKER_CONFIG", dir.join("docker"))
        .env("PATH", path)
        .current_dir(dir.path())
        .output()
        .unwrap();
    Run::from(output)
}

/// Names `helper` as the credential helper of `host` in the `config.json` of `dir`.
fn config_naming(dir: &TempDir, key: &str, host: &str, helper: &str) {
    fs::create_dir_all(dir.join("docker")).unwrap();
    let config = match key {
        "credHelpers" => serde_json::json!({ "credHelpers": { host: helper } }),
        _ => serde_json::json!({ key: helper }),
    };
    fs::write(dir.join("docker/config.json"), config.to_string()).unwrap();
}

#[test]
fn a_helper_that_never_answers_is_ended_after_the_timeout() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("helper-sleeps");
    let image = image(&dir, &registry);
    script(&dir.join("bin/docker-credential-sleepy"), "exec sleep 40");
    config_naming(&dir, "credHelpers", &registry.host(), "sleepy");
    let cache = TestCache::new();
    let started = Instant::now();
    let cache_dir = cache.path();
    let run = run_in(
        &dir,
        &[
            "--cache-dir",
            cache_dir.to_str().unwrap(),
            "pull",
            &image,
            "--timeout",
            "2",
        ],
    )
    .success();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        run.stderr
            .contains("docker-credential-sleepy get did not finish within 2 s"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_helper_that_floods_its_output_is_refused() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("helper-floods");
    let image = image(&dir, &registry);
    script(
        &dir.join("bin/docker-credential-flood"),
        "head -c 100000000 /dev/zero",
    );
    config_naming(&dir, "credHelpers", &registry.host(), "flood");
    let cache = TestCache::new();
    let cache_dir = cache.path();
    let run = run_in(
        &dir,
        &["--cache-dir", cache_dir.to_str().unwrap(), "pull", &image],
    )
    .success();
    assert!(
        run.stderr
            .contains("docker-credential-flood get printed more than 4194304 bytes"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_helper_named_by_a_path_is_never_run() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("helper-path");
    let image = image(&dir, &registry);
    // Planted in the working directory, where a name with a slash would find it.
    let ran = dir.join("ran");
    script(
        &dir.join("docker-credential-x/evil"),
        &format!("touch {}", ran.display()),
    );
    config_naming(&dir, "credHelpers", &registry.host(), "x/evil");
    let cache = TestCache::new();
    let cache_dir = cache.path();
    let run = run_in(
        &dir,
        &["--cache-dir", cache_dir.to_str().unwrap(), "pull", &image],
    )
    .success();
    assert!(
        run.stderr.contains("is a path, not a name"),
        "{}",
        run.stderr
    );
    assert!(!ran.exists(), "the planted helper ran");
    // A credsStore that is a path: logout refuses it as a malformed config.json (exit 2).
    config_naming(&dir, "credsStore", "", "x/evil");
    let run = run_in(&dir, &["logout", &registry.host()]).exits(2);
    assert!(
        run.stderr.contains("is a path, not a name"),
        "{}",
        run.stderr
    );
    assert!(!ran.exists(), "the planted helper ran");
}

#[test]
fn a_helper_name_with_control_characters_is_shown_inert() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("helper-inert");
    let image = image(&dir, &registry);
    // config.json is anyone's text: a helper name that would retitle the terminal.
    config_naming(
        &dir,
        "credHelpers",
        &registry.host(),
        "x\u{1b}]0;owned\u{7}",
    );
    let cache = TestCache::new();
    let cache_dir = cache.path();
    let run = run_in(
        &dir,
        &["--cache-dir", cache_dir.to_str().unwrap(), "pull", &image],
    );
    assert!(
        run.stderr.contains(r"docker-credential-x\x1b]0;owned\x07")
            && !run.stderr.contains('\u{1b}'),
        "{}",
        run.stderr
    );
}
