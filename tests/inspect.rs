//! `tags` and `inspect` against the real registry, with skopeo as the oracle.

mod support;

use support::access::skopeo_sees;
use support::front::{Action, Front};
use support::images::{self, two_layers};
use support::registry::{Setup, TestRegistry};
use support::{TempDir, TestCache, tool};

#[test]
fn tags_lists_what_skopeo_pushed() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("tags");
    let layout = images::umoci_layout(dir.path(), "src", &two_layers());
    let mut pushed = Vec::new();
    for n in 1..=5 {
        let tag = format!("v{n}");
        let target = format!("{}/tags/app:{tag}", registry.host());
        images::skopeo_push(&format!("oci:{}:src", layout.display()), &target, false);
        pushed.push(tag);
    }
    let run = TestCache::new()
        .run(&[
            "tags",
            &format!("{}/tags/app", registry.host()),
            "--page-size",
            "2",
        ])
        .success();
    let mut listed: Vec<&str> = run.stdout.lines().collect();
    listed.sort();
    assert_eq!(listed, pushed);
    assert!(
        registry.requests("GET /v2/tags/app/tags/list?n=2") >= 1,
        "the page size was asked for"
    );
    // Distribution 2.8 answers every tag in one page whatever n is; a front pages its list as
    // Distribution 3 and Harbor do, with Link headers to follow.
    let front = Front::start(registry.port(), |request, _| {
        match request.target.contains("/tags/list") {
            true => Action::Paginate,
            false => Action::Forward,
        }
    });
    let paged = TestCache::new()
        .run(&[
            "tags",
            &format!("{}/tags/app", front.host()),
            "--page-size",
            "2",
        ])
        .success();
    assert_eq!(
        paged.stdout.lines().collect::<Vec<_>>(),
        pushed,
        "every page, in order"
    );
    let pages: Vec<String> = (front.seen().into_iter())
        .filter(|(_, target, _)| target.contains("/tags/list"))
        .map(|(_, target, _)| target)
        .collect();
    assert_eq!(
        pages,
        [
            "/v2/tags/app/tags/list?n=2",
            "/v2/tags/app/tags/list?last=v2&n=2",
            "/v2/tags/app/tags/list?last=v4&n=2"
        ],
        "three pages, each from the Link of the one before"
    );
    let json = TestCache::new()
        .run(&["tags", &format!("{}/tags/app", registry.host()), "--json"])
        .success();
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(parsed["tags"].as_array().unwrap().len(), 5);
    let tagged = TestCache::new()
        .run(&["tags", &format!("{}/tags/app:v1", registry.host())])
        .exits(2);
    assert!(tagged.stderr.contains("without a tag"), "{}", tagged.stderr);
}

#[test]
fn inspect_describes_images_and_prints_their_exact_bytes() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("inspect");
    let layout = images::umoci_layout(dir.path(), "src", &two_layers());
    let target = format!("{}/inspect/app:v1", registry.host());
    images::skopeo_push(&format!("oci:{}:src", layout.display()), &target, false);
    let skopeo: serde_json::Value = serde_json::from_str(&tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{target}"),
        ],
    ))
    .unwrap();

    let cache = TestCache::new();
    let raw = cache.run(&["inspect", "--raw", &target]).success();
    assert_eq!(
        format!("sha256:{}", support::sha256(raw.stdout.as_bytes())),
        skopeo["Digest"].as_str().unwrap()
    );
    let config: serde_json::Value = serde_json::from_str(
        &cache
            .run(&["inspect", "--config", &target])
            .success()
            .stdout,
    )
    .unwrap();
    let (_, diff_ids) = skopeo_sees(&registry, "inspect/app:v1");
    assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!(diff_ids));
    let text = cache.run(&["inspect", &target]).success().stdout;
    for part in [
        "Digest:",
        "Layers:      2",
        "Image ID:",
        "Platform:    linux/amd64",
    ] {
        assert!(text.contains(part), "{part} missing:\n{text}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&cache.run(&["inspect", "--json", &target]).success().stdout).unwrap();
    assert_eq!(json["digest"], skopeo["Digest"]);
    assert_eq!(json["layers"].as_array().unwrap().len(), 2);

    cache.run(&["pull", &target]).success();
    drop(registry);
    let offline = cache.run(&["inspect", "--json", &target]).success();
    let cached: serde_json::Value = serde_json::from_str(&offline.stdout).unwrap();
    assert_eq!(
        cached["digest"], skopeo["Digest"],
        "a cached image is inspected without its registry"
    );
}
