//! A repository of many tags (distinct manifests over one image's blobs, as a nightly build
//! leaves them) synced whole between two paths of one registry with `--jobs`, the requests
//! counted by a front: the second run of an unchanged mirror costs exactly one manifest
//! `HEAD` per tag at each end, and a constant besides (the ping, the tag list, the one probe
//! for the Referrers API), whatever the number of tags. The rows, spooled to a file in
//! `$TMPDIR` as the images end in any order, come back in the order the registry listed the
//! tags, and leave nothing there; where no file can be made, the sync runs all the same.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::front::{Action, Front};
use support::images::registry_digest;
use support::registry::{Setup, TestRegistry};
use support::{Run, TempDir, TestCache};

/// How many tags the repository has.
const TAGS: usize = 60;

/// What a second run may send besides the manifest `HEAD`s: `GET /v2/`, the tag list, the
/// Referrers API probe.
const CONSTANT: usize = 3;

/// Stores `src/tags` with tags `v1` … `vTAGS` on `registry`: one config and one layer, each
/// manifest told apart by an annotation naming its tag.
fn tags_repository(registry: &TestRegistry) {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = b"a layer every tag shares";
    let config_digest = registry.put_blob("src/tags", config);
    let layer_digest = registry.put_blob("src/tags", layer);
    for i in 1..=TAGS {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config.len(),
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest,
                "size": layer.len(),
            }],
            "annotations": { "org.example.tag": format!("v{i}") },
        });
        registry.put_manifest(
            "src/tags",
            &format!("v{i}"),
            "application/vnd.oci.image.manifest.v1+json",
            manifest.to_string().as_bytes(),
        );
    }
}

/// The sources of the repository's images, in the order the registry at `host` lists its
/// tags (as curl reads the list).
fn listed(host: &str) -> Vec<String> {
    let list = support::tool(
        "curl",
        &["-sSf", &format!("http://{host}/v2/src/tags/tags/list")],
    );
    let list: Value = serde_json::from_str(&list).unwrap();
    (list["tags"].as_array().unwrap().iter())
        .map(|tag| format!("{host}/src/tags:{}", tag.as_str().unwrap()))
        .collect()
}

/// Runs `sync --json SOURCE --to TO --jobs 8` with `TMPDIR` at `temporary`; returns how many
/// jobs ended in each outcome, having checked that they come in the order `listed`.
fn sync(
    cache: &TestCache,
    (source, to): (&str, &str),
    temporary: &Path,
    listed: &[String],
) -> BTreeMap<String, usize> {
    let cache_dir = cache.path();
    let mut command = support::command(&["--cache-dir", cache_dir.to_str().unwrap()]);
    command.args(["sync", "--json", source, "--to", to, "--jobs", "8"]);
    let run = Run::from(command.env("TMPDIR", temporary).output().unwrap()).success();
    let last = run.stdout.lines().last().unwrap_or_default();
    let result: Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    let jobs = result["jobs"].as_array().unwrap();
    let sources: Vec<&str> = jobs
        .iter()
        .map(|job| job["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, listed, "the rows in the registry's order");
    let mut outcomes = BTreeMap::new();
    for job in jobs {
        *outcomes
            .entry(job["outcome"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    outcomes
}

#[test]
fn a_second_run_of_many_tags_costs_one_manifest_head_per_tag_at_each_end() {
    let registry = TestRegistry::start(Setup::Plain);
    tags_repository(&registry);
    let front = Front::start(registry.port(), |_, _| Action::Forward);
    let source = format!("http://{}/src/tags", front.host());
    let to = format!("http://{}/mirror", front.host());
    let cache = TestCache::new();
    let temporary = TempDir::new("mirror-tags-tmp");
    let listed = listed(&front.host());

    let first = sync(&cache, (&source, &to), temporary.path(), &listed);
    assert_eq!(first, BTreeMap::from([("copied".to_string(), TAGS)]));
    assert_eq!(
        support::files_under(temporary.path()),
        Vec::<PathBuf>::new()
    );
    let before = front.seen().len();
    // The first run asks the destination for each shared blob once, not once a tag: after
    // one copy put it there, the run's ledger knows.
    let blob_asks = (front.seen().iter())
        .filter(|(method, target, _)| {
            method != "GET"
                && target.starts_with("/v2/mirror/")
                && target.contains("/blobs/")
                && !target.contains("/uploads/")
        })
        .count();
    assert_eq!(blob_asks, 2, "one HEAD for the config, one for the layer");
    // No temporary folder to spool to: the rows are held in memory instead.
    let second = sync(&cache, (&source, &to), &temporary.join("missing"), &listed);
    assert_eq!(second, BTreeMap::from([("present".to_string(), TAGS)]));

    let seen = &front.seen()[before..];
    let mut heads: BTreeMap<String, usize> = BTreeMap::new();
    let mut others = Vec::new();
    for (method, target, _) in seen {
        match method.as_str() {
            "HEAD" if target.contains("/manifests/") => {
                *heads.entry(target.clone()).or_default() += 1
            }
            _ => others.push(format!("{method} {target}")),
        }
    }
    let wanted: BTreeMap<String, usize> = (1..=TAGS)
        .flat_map(|i| {
            [
                format!("/v2/src/tags/manifests/v{i}"),
                format!("/v2/mirror/src/tags/manifests/v{i}"),
            ]
        })
        .map(|target| (target, 1))
        .collect();
    assert_eq!(heads, wanted, "one HEAD per tag at each end");
    assert!(
        others.len() <= CONSTANT
            && !others
                .iter()
                .any(|o| o.contains("/manifests/") || o.contains("/blobs/")),
        "besides the HEADs: {others:#?}"
    );
    // What was mirrored is byte for byte the source's, as skopeo reads it.
    let digest = |image: &str| {
        registry_digest(
            &["--tls-verify=false"],
            &format!("{}/{image}", registry.host()),
        )
    };
    assert_eq!(digest("mirror/src/tags:v7"), digest("src/tags:v7"));
}
