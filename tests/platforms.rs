//! Multi-platform indexes: the platform asked for (or this host's), refused when the image
//! has no such platform, and whole indexes with --all-platforms; skopeo and umoci make them.

mod support;

use support::access::archive;
use support::images::{self, registry_digest};
use support::registry::{Setup, TestRegistry};
use support::{TempDir, TestCache};

#[test]
fn a_multi_platform_index_resolves_to_the_platform_asked_for() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("multi");
    let (layout, digests) = images::multi_platform_layout(dir.path(), &["amd64", "arm64"]);
    let target = format!("{}/multi/app:v1", registry.host());
    images::skopeo_push(&format!("oci:{}:multi", layout.display()), &target, true);
    for (platform, expected) in [
        (None, &digests[0]),
        (Some("linux/arm64"), &digests[1]),
        (Some("linux/aarch64"), &digests[1]),
    ] {
        let cache = TestCache::new();
        let mut args = vec!["pull", target.as_str()];
        args.extend(platform.map(|p| ["--platform", p]).into_iter().flatten());
        cache.run(&args).success();
        assert_eq!(
            cache.list()[0]["manifest_digest"],
            expected.as_str(),
            "{platform:?}"
        );
    }
    let missing = TestCache::new()
        .run(&["pull", &target, "--platform", "linux/s390x"])
        .exits(6);
    assert!(
        missing.stderr.contains("linux/amd64, linux/arm64"),
        "{}",
        missing.stderr
    );

    let all = TestCache::new();
    all.run(&["pull", &target, "--all-platforms"]).success();
    let listed = all.list();
    assert_eq!(listed.len(), 3, "the index and both images");
    let index = listed
        .iter()
        .find(|image| image["name"] == target.as_str())
        .unwrap();
    let children: Vec<&str> = index["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(children, [digests[0].as_str(), digests[1].as_str()]);

    // From the cache, as from anywhere: this host's image unless --all-platforms.
    let one = format!("{}/multi/one:v1", registry.host());
    all.run(&["push", &target, &one]).success();
    let pushed = registry_digest(&["--tls-verify=false"], &one);
    assert_eq!(pushed, digests[0], "the amd64 image, alone");

    let copy = format!("{}/multi/copy:v1", registry.host());
    all.run(&["push", "--all-platforms", &target, &copy])
        .success();
    let raw: serde_json::Value = serde_json::from_str(&images::registry_manifest(&copy)).unwrap();
    let pushed: Vec<&str> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        pushed, children,
        "the index went up after its children, unchanged"
    );
}

#[test]
fn a_platform_asked_for_is_not_replaced_by_another() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("platform-asked");
    let archive = archive(&dir);
    let target = format!("{}/single/app:v1", registry.host());
    TestCache::new()
        .run(&["push", archive.to_str().unwrap(), &target])
        .success();
    let refused = TestCache::new()
        .run(&["pull", &target, "--platform", "linux/s390x"])
        .exits(6);
    assert!(
        refused.stderr.contains("only, not linux/s390x"),
        "{}",
        refused.stderr
    );
    TestCache::new().run(&["pull", &target]).success();
}

#[test]
fn copy_all_platforms_carries_the_index() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("copy-index");
    let (layout, digests) = images::multi_platform_layout(dir.path(), &["amd64", "arm64"]);
    let from = format!("{}/copy/multi:v1", registry.host());
    images::skopeo_push(&format!("oci:{}:multi", layout.display()), &from, true);
    let to = format!("{}/copy/multi-copy:v1", registry.host());
    TestCache::new()
        .run(&["copy", &from, &to, "--all-platforms"])
        .success();
    let raw: serde_json::Value = serde_json::from_str(&images::registry_manifest(&to)).unwrap();
    let children: Vec<&str> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(children, [digests[0].as_str(), digests[1].as_str()]);
}

#[test]
fn inspect_lists_the_platforms_of_an_index() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("inspect-index");
    let (layout, digests) = images::multi_platform_layout(dir.path(), &["amd64", "arm64"]);
    let target = format!("{}/inspect/multi:v1", registry.host());
    images::skopeo_push(&format!("oci:{}:multi", layout.display()), &target, true);
    let text = TestCache::new().run(&["inspect", &target]).success().stdout;
    assert!(
        text.contains("linux/amd64") && text.contains("linux/arm64") && text.contains(&digests[1]),
        "{text}"
    );
    let arm: serde_json::Value = serde_json::from_str(
        &TestCache::new()
            .run(&["inspect", &target, "--platform", "linux/arm64", "--json"])
            .success()
            .stdout,
    )
    .unwrap();
    assert_eq!(arm["digest"], digests[1].as_str());
    assert_eq!(arm["config"]["architecture"], "arm64");
}
