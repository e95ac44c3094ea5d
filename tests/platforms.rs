//! Multi-platform indexes: copy, sync and push keep them whole by default (byte for byte)
//! and pull takes this host's image; --platform narrows, and is refused when the image has
//! no such platform; --all-platforms keeps them whole everywhere. skopeo and umoci make them.

mod support;

use support::access::archive;
use support::images;
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

    // From the cache, an index cached whole is pushed whole unless --platform narrows it.
    let whole = format!("{}/multi/whole:v1", registry.host());
    all.run(&["push", &target, &whole]).success();
    assert_eq!(
        raw_digest(&whole),
        raw_digest(&target),
        "the index, byte for byte"
    );
    let one = format!("{}/multi/one:v1", registry.host());
    all.run(&["push", "--platform", "linux/amd64", &target, &one])
        .success();
    assert_eq!(raw_digest(&one), digests[0], "the amd64 image, alone");

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

/// The JSON result `--json` prints last on stdout.
fn result(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

/// The digest of the manifest `reference` names on a test registry, computed from the bytes
/// skopeo reads there (`skopeo inspect --raw`), not taken from the registry's word.
fn raw_digest(reference: &str) -> String {
    let raw = images::registry_manifest(reference);
    format!("sha256:{}", support::sha256(raw.as_bytes()))
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
fn copy_and_sync_keep_an_index_whole_unless_a_platform_is_asked_for() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("copy-index");
    let (layout, digests) = images::multi_platform_layout(dir.path(), &["amd64", "arm64"]);
    let from = format!("{}/copy/multi:v1", registry.host());
    images::skopeo_push(&format!("oci:{}:multi", layout.display()), &from, true);
    let source = raw_digest(&from);
    let cache = TestCache::new();
    for (name, flags) in [("default", &[][..]), ("all", &["--all-platforms"][..])] {
        let to = format!("{}/copy/{name}:v1", registry.host());
        let mut args = vec!["copy", from.as_str(), to.as_str()];
        args.extend(flags);
        cache.run(&args).success();
        assert_eq!(raw_digest(&to), source, "{name}: the index, byte for byte");
    }
    let arm = format!("{}/copy/arm:v1", registry.host());
    let run = cache
        .run(&["copy", "--json", "--platform", "linux/arm64", &from, &arm])
        .success();
    assert_eq!(raw_digest(&arm), digests[1], "the arm64 image, as it is");
    assert_eq!(
        result(&run.stdout)["platforms"],
        serde_json::json!(["linux/arm64"])
    );
    let again = format!("{}/copy/json:v1", registry.host());
    let run = cache.run(&["copy", "--json", &from, &again]).success();
    assert_eq!(
        result(&run.stdout)["platforms"],
        "all",
        "the rule that applied"
    );

    let synced = format!("{}/mirror/multi:v1", registry.host());
    let run = cache.run(&["sync", "--json", &from, &synced]).success();
    assert_eq!(raw_digest(&synced), source, "sync keeps it whole too");
    assert_eq!(result(&run.stdout)["jobs"][0]["platforms"], "all");
    let again = cache.run(&["sync", &from, &synced]).success();
    assert!(again.stdout.contains("present"), "{}", again.stdout);
}

#[test]
fn several_platforms_give_an_index_of_those_rewritten_and_one_it_lacks_is_refused() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("copy-several");
    let (layout, digests) = images::multi_platform_layout(dir.path(), &["amd64", "arm64", "s390x"]);
    let from = format!("{}/several/multi:v1", registry.host());
    images::skopeo_push(&format!("oci:{}:multi", layout.display()), &from, true);
    let to = format!("{}/several/two:v1", registry.host());
    let cache = TestCache::new();
    let run = cache
        .run(&[
            "copy",
            "--json",
            "--platform",
            "linux/s390x,linux/amd64",
            &from,
            &to,
        ])
        .success();
    assert_eq!(
        result(&run.stdout)["platforms"],
        serde_json::json!(["linux/amd64", "linux/s390x"])
    );
    let raw: serde_json::Value = serde_json::from_str(&images::registry_manifest(&to)).unwrap();
    let listed: Vec<&str> = (raw["manifests"].as_array().unwrap().iter())
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [&digests[0], &digests[2]], "in the source's order");
    let (new, old) = (raw_digest(&to), raw_digest(&from));
    assert_ne!(new, old);
    assert!(
        run.stderr.contains("rewritten") && run.stderr.contains(&new) && run.stderr.contains(&old),
        "{}",
        run.stderr
    );
    for child in [&digests[0], &digests[2]] {
        let child = format!("{}/several/two@{child}", registry.host());
        assert_eq!(&raw_digest(&child), child.rsplit('@').next().unwrap());
    }

    let refused = cache
        .run(&[
            "copy",
            "--platform",
            "linux/arm64,linux/ppc64le",
            &from,
            &to,
        ])
        .exits(6);
    assert!(
        refused.stderr.contains("no image for linux/ppc64le")
            && refused
                .stderr
                .contains("linux/amd64, linux/arm64, linux/s390x"),
        "{}",
        refused.stderr
    );
    assert_eq!(raw_digest(&to), new, "nothing written");

    // pull takes the list too: the narrowed index, as copy writes it, and its two images.
    let pulled = TestCache::new();
    (pulled.run(&["pull", "--platform", "linux/s390x,linux/amd64", &from])).success();
    let index = (pulled.list().into_iter())
        .find(|image| image["name"] == from.as_str())
        .unwrap();
    assert_eq!(index["manifest_digest"], new.as_str());
    assert_eq!(index["children"].as_array().unwrap().len(), 2);
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
