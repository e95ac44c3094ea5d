//! `delete IMAGE` against the real registry: by tag (resolved to its digest first) with
//! Bearer tokens, by digest, `--dry-run` that leaves the image, and a registry with deletion
//! turned off, whose 405 is explained. skopeo checks what is left.

mod support;

use support::access::{archive, run_with, skopeo_flags};
use support::images::{registry_digest, skopeo_push};
use support::registry::{Setup, TestRegistry};
use support::{TempDir, TestCache};

/// Whether skopeo finds `reference` in `registry`.
fn exists(registry: &TestRegistry, reference: &str) -> bool {
    let flags = skopeo_flags(registry, "");
    let output = std::process::Command::new("skopeo")
        .arg("inspect")
        .args(&flags)
        .arg(format!("docker://{}/{reference}", registry.host()))
        .output()
        .expect("running skopeo");
    output.status.success()
}

#[test]
fn delete_by_tag_and_by_digest_with_tokens_and_a_dry_run_first() {
    let registry = TestRegistry::start(Setup::Token);
    let dir = TempDir::new("delete");
    let archive = archive(&dir);
    let cache = TestCache::new();
    let host = registry.host();
    for tag in ["v1", "v2"] {
        let target = format!("{host}/team/app-{tag}:{tag}");
        run_with(
            &cache,
            &["push", archive.to_str().unwrap(), &target],
            &registry,
        )
        .success();
    }

    let dry = run_with(
        &cache,
        &["delete", &format!("{host}/team/app-v1:v1"), "-n"],
        &registry,
    )
    .success();
    assert!(dry.stderr.contains("would delete"), "{}", dry.stderr);
    assert!(
        exists(&registry, "team/app-v1:v1"),
        "a dry run deletes nothing"
    );

    let deleted = run_with(
        &cache,
        &["delete", &format!("{host}/team/app-v1:v1")],
        &registry,
    )
    .success();
    assert!(deleted.stderr.contains("deleted"), "{}", deleted.stderr);
    assert!(!exists(&registry, "team/app-v1:v1"));
    assert!(
        registry
            .token_scopes()
            .iter()
            .any(|s| s == "repository:team/app-v1:delete"),
        "{:?}",
        registry.token_scopes()
    );

    let flags = skopeo_flags(&registry, "");
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let digest = registry_digest(&flags, &format!("{host}/team/app-v2:v2"));
    let pinned = format!("{host}/team/app-v2@{digest}");
    run_with(&cache, &["delete", &pinned], &registry).success();
    assert!(!exists(&registry, "team/app-v2:v2"));

    let gone = run_with(
        &cache,
        &["delete", &format!("{host}/team/app-v2:v2")],
        &registry,
    )
    .exits(6);
    assert!(gone.stderr.contains("no image"), "{}", gone.stderr);
}

#[test]
fn a_registry_that_does_not_delete_says_so() {
    let registry = TestRegistry::start_without_deletes(Setup::Plain);
    let dir = TempDir::new("no-delete");
    let archive = archive(&dir);
    let image = format!("{}/team/app:v1", registry.host());
    skopeo_push(
        &format!("docker-archive:{}", archive.display()),
        &image,
        false,
    );
    let refused = TestCache::new().run(&["delete", &image]).exits(5);
    for words in [
        "HTTP 405",
        "UNSUPPORTED",
        "does not allow deleting",
        "storage.delete.enabled",
    ] {
        assert!(
            refused.stderr.contains(words),
            "{words}: {}",
            refused.stderr
        );
    }
    assert!(exists(&registry, "team/app:v1"));
}
