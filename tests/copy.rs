//! `copy` between registries and repositories, and mounts: each blob streamed once, or
//! mounted where the registry holds it already; skopeo reads back what was copied.

mod support;

use std::fs;

use support::access::{archive, run_with, skopeo_sees};
use support::images::{self, listed_identity};
use support::registry::{ROBOT_PASSWORD, ROBOT_USER, Setup, TestRegistry};
use support::{TempDir, TestCache};

/// A push to a sibling repository mounts the blobs instead of uploading them.
fn mounts_between_repositories(setup: Setup) {
    let registry = TestRegistry::start(setup);
    let dir = TempDir::new("mount");
    let archive = archive(&dir);
    let cache = TestCache::new();
    let first = format!("{}/mount/first:v1", registry.host());
    let second = format!("{}/mount/second:v1", registry.host());
    run_with(
        &cache,
        &["push", archive.to_str().unwrap(), &first],
        &registry,
    )
    .success();
    let run = run_with(
        &cache,
        &["push", archive.to_str().unwrap(), &second],
        &registry,
    )
    .success();
    assert!(
        run.stderr.contains("0 blobs uploaded") && run.stderr.contains("3 mounted"),
        "{}",
        run.stderr
    );
    let mounts = (registry.log().lines())
        .filter(|line| {
            line.contains("\"POST /v2/mount/second/blobs/uploads/?mount=")
                && line.contains("\" 201 ")
        })
        .count();
    assert_eq!(
        mounts,
        3,
        "the registry saw three mounts:\n{}",
        registry.log()
    );
    assert_eq!(
        registry.requests("PATCH /v2/mount/second/"),
        0,
        "and no upload"
    );
    let source = images::skopeo_identity(&format!("docker-archive:{}", archive.display()));
    assert_eq!(skopeo_sees(&registry, "mount/second:v1"), source);
}

#[test]
fn blobs_are_mounted_between_repositories() {
    mounts_between_repositories(Setup::Plain);
}

#[test]
fn blobs_are_mounted_between_repositories_with_tokens() {
    mounts_between_repositories(Setup::Token);
}

#[test]
fn copy_between_registries_streams_each_blob() {
    let plain = TestRegistry::start(Setup::Plain);
    let token = TestRegistry::start(Setup::Token);
    let dir = TempDir::new("copy");
    let archive = archive(&dir);
    let source = images::skopeo_identity(&format!("docker-archive:{}", archive.display()));
    let from = format!("{}/copy/app:v1", plain.host());
    TestCache::new()
        .run(&["push", archive.to_str().unwrap(), &from])
        .success();

    let cache = TestCache::new();
    let to = format!("{}/copy/app:v1", token.host());
    let run = run_with(&cache, &["copy", &from, &to], &token).success();
    assert!(
        run.stderr.contains("copied ") && run.stderr.contains("3 blobs uploaded"),
        "{}",
        run.stderr
    );
    assert_eq!(skopeo_sees(&token, "copy/app:v1"), source);
    assert!(
        !cache.path().join("blobs").exists(),
        "nothing touched the disk"
    );

    let kept = TestCache::new();
    let again = format!("{}/copy/kept:v1", token.host());
    run_with(&kept, &["copy", &from, &again, "--via-cache"], &token).success();
    assert_eq!(skopeo_sees(&token, "copy/kept:v1"), source);
    assert_eq!(
        listed_identity(&kept.list()[0]),
        source,
        "--via-cache kept a copy"
    );

    // --password-stdin is read once, though two registries are connected to.
    let password = dir.join("password");
    fs::write(&password, format!("{ROBOT_PASSWORD}\n")).unwrap();
    let stdin = format!("{}/copy/stdin:v1", token.host());
    let mut args = vec!["copy", &from, &stdin, "-u", ROBOT_USER, "--password-stdin"];
    let ca = token.ca_args();
    args.extend(ca.iter().map(String::as_str));
    TestCache::new().run_with_stdin(&args, &password).success();
    assert_eq!(skopeo_sees(&token, "copy/stdin:v1"), source);
}

#[test]
fn copy_within_one_registry_mounts_instead_of_uploading() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("copy-mount");
    let archive = archive(&dir);
    let from = format!("{}/copy/from:v1", registry.host());
    TestCache::new()
        .run(&["push", archive.to_str().unwrap(), &from])
        .success();
    let run = TestCache::new()
        .run(&["copy", &from, &format!("{}/copy/to:v1", registry.host())])
        .success();
    assert!(run.stderr.contains("3 mounted"), "{}", run.stderr);
    let mounts = (registry.log().lines())
        .filter(|line| {
            line.contains("\"POST /v2/copy/to/blobs/uploads/?mount=") && line.contains("\" 201 ")
        })
        .count();
    assert_eq!(mounts, 3, "the registry saw mounts");
    assert_eq!(registry.requests("PATCH /v2/copy/to/"), 0, "and no upload");
    assert_eq!(registry.requests("PUT /v2/copy/to/blobs/"), 0);
    let source = images::skopeo_identity(&format!("docker-archive:{}", archive.display()));
    assert_eq!(skopeo_sees(&registry, "copy/to:v1"), source);
}
