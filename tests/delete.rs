//! `delete IMAGE` against the real registry: by tag (resolved to its digest first) with
//! Bearer tokens, by digest, `--dry-run` that leaves the image, and a registry with deletion
//! turned off, whose 405 is explained. A tag that shares its manifest with other tags is
//! deleted alone (the others stay); a digest is deleted with the tags it names, which are
//! listed. skopeo checks what is left.

mod support;

use support::access::{archive, run_with, skopeo_flags};
use support::images::{registry_digest, skopeo_push};
use support::registry::{Setup, TestRegistry};
use support::tarball::{legacy_items, write_tar};
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

/// The manifest digest skopeo reads for `reference` (`repository:tag`) of `registry`.
fn digest_of(registry: &TestRegistry, reference: &str) -> String {
    let flags = skopeo_flags(registry, "");
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    registry_digest(&flags, &format!("{}/{reference}", registry.host()))
}

/// Pushes one image as `team/app:` each of `tags`, and another image as `team/app:other`;
/// returns the first image's manifest digest.
fn tagged_images(
    registry: &TestRegistry,
    cache: &TestCache,
    dir: &TempDir,
    tags: &[&str],
) -> String {
    let archive = archive(dir);
    let other = dir.join("other.tar");
    write_tar(
        &other,
        &legacy_items(&[b"another image"], r#"["example.com/other:v1"]"#),
    );
    let host = registry.host();
    for (image, tag) in tags
        .iter()
        .map(|tag| (&archive, *tag))
        .chain([(&other, "other")])
    {
        let target = format!("{host}/team/app:{tag}");
        run_with(cache, &["push", image.to_str().unwrap(), &target], registry).success();
    }
    digest_of(registry, &format!("team/app:{}", tags[0]))
}

#[test]
fn deleting_a_tag_leaves_the_other_tags_of_its_manifest() {
    let registry = TestRegistry::start(Setup::Token);
    let (dir, cache) = (TempDir::new("delete-tag"), TestCache::new());
    let digest = tagged_images(&registry, &cache, &dir, &["a", "b", "c"]);
    let host = registry.host();

    let deleted = run_with(
        &cache,
        &["delete", &format!("{host}/team/app:b")],
        &registry,
    )
    .success();
    assert!(!exists(&registry, "team/app:b"), "{}", deleted.stderr);
    for tag in ["a", "c"] {
        assert_eq!(
            digest_of(&registry, &format!("team/app:{tag}")),
            digest,
            "{tag} stays"
        );
    }
    assert!(
        deleted.stderr.contains("tag") && deleted.stderr.contains("a, c"),
        "it says which tags stay: {}",
        deleted.stderr
    );

    let dry = run_with(
        &cache,
        &["delete", "-n", &format!("{host}/team/app:a")],
        &registry,
    )
    .success();
    assert!(
        dry.stderr.contains("would delete")
            && dry.stderr.contains(" c")
            && !dry.stderr.contains("other"),
        "{}",
        dry.stderr
    );
    assert!(exists(&registry, "team/app:a"), "a dry run deletes nothing");

    run_with(
        &cache,
        &["delete", &format!("{host}/team/app:a")],
        &registry,
    )
    .success();
    assert_eq!(digest_of(&registry, "team/app:c"), digest);
    // The last tag of the manifest takes it along.
    run_with(
        &cache,
        &["delete", &format!("{host}/team/app:c")],
        &registry,
    )
    .success();
    assert!(!exists(&registry, &format!("team/app@{digest}")));
    assert!(exists(&registry, "team/app:other"));
}

#[test]
fn deleting_a_digest_names_the_tags_that_go_with_it() {
    let registry = TestRegistry::start(Setup::Plain);
    let (dir, cache) = (TempDir::new("delete-digest"), TestCache::new());
    let digest = tagged_images(&registry, &cache, &dir, &["a", "b"]);
    let pinned = format!("{}/team/app@{digest}", registry.host());

    let dry = cache.run(&["delete", "--dry-run", &pinned]).success();
    assert!(
        dry.stderr.contains("would delete") && dry.stderr.contains("tags a, b"),
        "{}",
        dry.stderr
    );
    assert!(exists(&registry, "team/app:a") && exists(&registry, "team/app:b"));

    let deleted = cache.run(&["delete", &pinned]).success();
    assert!(deleted.stderr.contains("tags a, b"), "{}", deleted.stderr);
    assert!(!exists(&registry, "team/app:a") && !exists(&registry, "team/app:b"));
    assert!(exists(&registry, "team/app:other"));
}

#[test]
fn a_tag_that_cannot_be_deleted_alone_is_pointed_back() {
    let registry = TestRegistry::start_without_deletes(Setup::Plain);
    let (dir, cache) = (TempDir::new("delete-back"), TestCache::new());
    let digest = tagged_images(&registry, &cache, &dir, &["a", "b"]);
    let refused = cache
        .run(&["delete", &format!("{}/team/app:b", registry.host())])
        .exits(5);
    for words in ["does not allow deleting", &format!("names {digest} again")] {
        assert!(
            refused.stderr.contains(words),
            "{words}: {}",
            refused.stderr
        );
    }
    for tag in ["a", "b"] {
        assert_eq!(digest_of(&registry, &format!("team/app:{tag}")), digest);
    }
}
