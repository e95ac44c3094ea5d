//! `sync` over lists mixing archives and registry images, explicit targets and `--to`, and
//! lines that fail: the rest run, the summary names the failures, the exit code is not 0.
//! skopeo checks what reached the registry.

mod support;

use std::fs;

use support::images::{self, skopeo_identity, skopeo_identity_with};
use support::registry::{Setup, TestRegistry};
use support::{TempDir, TestCache};

/// What skopeo sees at `image` in a plain-HTTP registry.
fn seen(image: &str) -> (String, Vec<String>) {
    skopeo_identity_with(&["--tls-verify=false"], &format!("docker://{image}"))
}

#[test]
fn a_list_with_bad_lines_runs_the_rest_and_names_the_failures() {
    let registry = TestRegistry::start(Setup::Plain);
    let host = registry.host();
    let dir = TempDir::new("sync");
    let archive = images::docker_archive(dir.path(), "example.com/team/app:v1");
    let app = skopeo_identity(&format!("docker-archive:{}", archive.display()));
    let base_layout = images::umoci_layout(dir.path(), "base", &[&[("etc/base", b"base\n")]]);
    images::skopeo_push(
        &format!("oci:{}:base", base_layout.display()),
        &format!("{host}/src/base:v1"),
        false,
    );
    let base = seen(&format!("{host}/src/base:v1"));
    let list = dir.join("list.txt");
    fs::write(
        &list,
        format!(
            "# images for the edge site\n\
             \n\
             app.tar                {host}/sync/app:v1   # an archive, next to the list\n\
             {host}/src/base:v1     {host}/sync/base:v1\n\
             {host}/src/missing:v1  {host}/sync/missing:v1\n\
             one two three\n\
             {host}/src/base:v1\n\
             app.tar\n"
        ),
    )
    .unwrap();

    let cache = TestCache::new();
    let edge = format!("{host}/edge");
    // The first failure (an image not found) gives the exit code.
    let run = cache
        .run(&["sync", "--file", list.to_str().unwrap(), "--to", &edge])
        .exits(6);
    assert!(
        run.stderr.contains("2 of 6 images failed (lines 5, 6)"),
        "{}",
        run.stderr
    );
    let table: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        table.len(),
        7,
        "a header and a row per job:\n{}",
        run.stdout
    );
    let row = |line: &str| {
        (table.iter())
            .find(|row| row.starts_with(&format!("{line} ")))
            .unwrap_or_else(|| panic!("no row for line {line}:\n{}", run.stdout))
            .to_string()
    };
    for line in ["3", "4", "7", "8"] {
        assert!(row(line).contains(" ok (manifest "), "{}", row(line));
    }
    let missing = format!("FAILED (exit 6): no image {host}/src/missing:v1");
    assert!(row("5").contains(&missing), "{}", row("5"));
    assert!(
        row("6").contains("FAILED (exit 2): expected SOURCE [TARGET], found 3 fields"),
        "{}",
        row("6")
    );

    assert_eq!(seen(&format!("{host}/sync/app:v1")), app);
    assert_eq!(
        seen(&format!("{host}/edge/team/app:v1")),
        app,
        "--to keeps the path"
    );
    assert_eq!(seen(&format!("{host}/sync/base:v1")), base);
    assert_eq!(seen(&format!("{host}/edge/src/base:v1")), base);
}

#[test]
fn json_and_standard_input_give_one_document_at_the_end() {
    let registry = TestRegistry::start(Setup::Plain);
    let host = registry.host();
    let dir = TempDir::new("sync-json");
    let archive = images::docker_archive(dir.path(), "example.com/app:v1");
    let list = dir.join("list.txt");
    fs::write(
        &list,
        format!(
            "{}  {host}/json/app:v1\n{host}/json/none:v1  {host}/json/copy:v1\n",
            archive.display()
        ),
    )
    .unwrap();
    let run = TestCache::new()
        .run_with_stdin(&["sync", "-f", "-", "--json"], &list)
        .exits(6);
    let last = run.stdout.lines().last().unwrap_or_default();
    let result: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(result["event"], "result");
    assert_eq!(result["command"], "sync");
    assert_eq!(result["ok"], false);
    assert_eq!(result["failed"], 1);
    let jobs = result["jobs"].as_array().unwrap();
    assert_eq!(jobs[0]["ok"], true);
    assert_eq!(jobs[0]["target"], format!("{host}/json/app:v1"));
    assert_eq!(jobs[0]["blobs_copied"], 3);
    assert_eq!(jobs[1]["ok"], false);
    assert_eq!(jobs[1]["exit_code"], 6);
    assert_eq!(jobs[1]["line"], 2);
}

#[test]
fn lists_and_flags_that_cannot_work_are_usage_errors() {
    let cache = TestCache::new();
    let dir = TempDir::new("sync-usage");
    let list = dir.join("list.txt");
    fs::write(&list, "app.tar registry.example.com/app:v1\n").unwrap();
    let list = list.to_str().unwrap();
    for (args, says) in [
        (&["sync"][..], "--file LIST"),
        (&["sync", "-f", "/nonexistent/list"], "no such file"),
        (
            &["sync", "-f", "-", "--password-stdin", "-u", "x"],
            "standard input",
        ),
        (&["sync", "-f", list, "--to", "not a registry"], "--to"),
    ] {
        let run = cache.run(args).exits(2);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    // An archive that is not there is not found, as for extract and push.
    let missing = cache.run(&["sync", "-f", list]).exits(6);
    assert!(
        missing.stdout.contains("app.tar: no such file"),
        "{}",
        missing.stdout
    );
}

#[test]
fn an_unchanged_archive_line_is_present_the_second_time() {
    let registry = TestRegistry::start(Setup::Plain);
    let host = registry.host();
    let dir = TempDir::new("sync-archive-again");
    let archive = images::docker_archive(dir.path(), "example.com/app:v1");
    let list = dir.join("list.txt");
    fs::write(
        &list,
        format!("{}  {host}/again/app:v1\n", archive.display()),
    )
    .unwrap();
    let cache = TestCache::new();
    let outcome = || {
        let run = cache
            .run(&["sync", "--json", "-f", list.to_str().unwrap()])
            .success();
        let result: serde_json::Value =
            serde_json::from_str(run.stdout.lines().last().unwrap_or_default()).unwrap();
        result["jobs"][0]["outcome"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(outcome(), "copied");
    assert_eq!(outcome(), "present");
}

#[test]
fn two_sources_that_would_land_in_one_place_are_caught_before_anything_moves() {
    // Under --to the source's registry is left out: a/src/base:v1 and b/src/base:v1 both go
    // to edge/src/base:v1, and the later copy would silently replace the earlier.
    let (a, b) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let dir = TempDir::new("sync-collide");
    for (registry, file) in [(&a, "etc/a"), (&b, "etc/b")] {
        let layout = images::umoci_layout(
            dir.path(),
            file.trim_start_matches("etc/"),
            &[&[(file, file.as_bytes())]],
        );
        images::skopeo_push(
            &format!(
                "oci:{}:{}",
                layout.display(),
                file.trim_start_matches("etc/")
            ),
            &format!("{}/src/base:v1", registry.host()),
            false,
        );
    }
    let list = dir.join("list.txt");
    let (a_host, b_host) = (a.host(), b.host());
    fs::write(
        &list,
        format!(
            "{a_host}/src/base:v1\n{a_host}/src/base:v1\n{b_host}/src/base:v1\n{b_host}/src/base\n"
        ),
    )
    .unwrap();
    let edge = format!("{a_host}/edge");
    let run = TestCache::new()
        .run(&["sync", "-f", list.to_str().unwrap(), "--to", &edge])
        .exits(2);
    assert!(
        run.stderr.contains("2 of 4 images failed (lines 3, 4)"),
        "{}",
        run.stderr
    );
    let refused = format!("writes {edge}/src/base:v1, as line 1 does from {a_host}/src/base:v1");
    assert!(run.stdout.contains(&refused), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("writes {edge}/src/base, as line 1 does")),
        "{}",
        run.stdout
    );
    assert_eq!(
        seen(&format!("{edge}/src/base:v1")),
        seen(&format!("{a_host}/src/base:v1"))
    );
}
