//! Images without a name (`docker save <id>`): picked by image ID for extract and push,
//! listed by ID when the pick fails, and saved back as Docker saves them, with no made-up
//! name; and a cached index pushed whole.

mod support;

use std::path::{Path, PathBuf};

use support::images;
use support::registry::{Setup, TestRegistry};
use support::tarball::{Item, config, write_tar};
use support::{TempDir, TestCache, sha256, tool};

/// An archive of two images saved by ID (`RepoTags: null`); returns it and the image IDs.
fn two_unnamed(dir: &Path) -> (PathBuf, [String; 2]) {
    let mut items = Vec::new();
    let mut entries = Vec::new();
    let mut ids = Vec::new();
    for (i, layer) in [&b"first image's layer"[..], b"second image's layer"]
        .iter()
        .enumerate()
    {
        let config = config(&[format!("sha256:{}", sha256(layer))]);
        ids.push(sha256(config.as_bytes()));
        items.push(Item::File(format!("{i}/layer.tar"), layer.to_vec()));
        items.push(Item::File(format!("config{i}.json"), config.into_bytes()));
        entries.push(serde_json::json!({
            "Config": format!("config{i}.json"),
            "RepoTags": null,
            "Layers": [format!("{i}/layer.tar")],
        }));
    }
    let manifest = serde_json::Value::Array(entries).to_string().into_bytes();
    items.push(Item::File("manifest.json".into(), manifest));
    let path = dir.join("unnamed.tar");
    write_tar(&path, &items);
    (path, [ids[0].clone(), ids[1].clone()])
}

#[test]
fn an_image_saved_by_id_is_picked_by_id_and_saved_without_a_name() {
    let dir = TempDir::new("unnamed");
    let (archive, ids) = two_unnamed(dir.path());
    let archive = archive.to_str().unwrap();
    let cache = TestCache::new();
    let missing = cache
        .run(&["extract", archive, "--image", "sha256:0000000"])
        .exits(6);
    for id in &ids {
        assert!(
            missing
                .stderr
                .contains(&format!("no name (ID sha256:{}", &id[..12])),
            "{}",
            missing.stderr
        );
    }
    let wanted = format!("sha256:{}", &ids[1][..12]);
    cache
        .run(&["extract", archive, "--image", &wanted])
        .success();
    let listed = cache.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["config_digest"], format!("sha256:{}", ids[1]));

    let saved = dir.join("saved.tar");
    cache
        .run(&["save", &ids[1][..12], "-o", saved.to_str().unwrap()])
        .success();
    let saved = saved.to_str().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&tool("tar", &["-xOf", saved, "manifest.json"])).unwrap();
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::Value::Null,
        "{manifest}"
    );
    let index = tool("tar", &["-xOf", saved, "index.json"]);
    assert!(
        !index.contains("io.containerd.image.name") && !index.contains("library/sha256"),
        "no name is made up: {index}"
    );
}

#[test]
fn the_cache_reads_an_id_prefix_as_an_archive_does() {
    let dir = TempDir::new("unnamed-case");
    let (archive, ids) = two_unnamed(dir.path());
    let archive = archive.to_str().unwrap();
    let cache = TestCache::new();
    let upper = ids[1][..12].to_ascii_uppercase();
    assert_ne!(upper, ids[1][..12], "the prefix has letters");
    cache
        .run(&["extract", archive, "--image", &upper])
        .success();
    let saved = dir.join("saved.tar");
    let saved = saved.to_str().unwrap();
    cache.run(&["save", &upper, "-o", saved]).success();

    let too_long = format!("sha256:{}0", ids[1]);
    let by_archive = cache
        .run(&["extract", archive, "--image", &too_long])
        .exits(2);
    let by_cache = cache.run(&["save", &too_long, "-o", saved]).exits(2);
    for refused in [&by_archive.stderr, &by_cache.stderr] {
        assert!(refused.contains("is not an image ID"), "{refused}");
    }
}

#[test]
fn push_picks_an_unnamed_image_by_id() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("unnamed-push");
    let (archive, ids) = two_unnamed(dir.path());
    let archive = archive.to_str().unwrap();
    let target = format!("{}/unnamed/app:v1", registry.host());
    let cache = TestCache::new();
    let run = cache.run(&["push", archive, &target]).exits(2);
    assert!(
        run.stderr.contains("holds 2 images") && run.stderr.contains(&ids[0][..12]),
        "{}",
        run.stderr
    );
    cache
        .run(&["push", archive, &target, "--image", &ids[0][..12]])
        .success();
    let (config, _) =
        images::skopeo_identity_with(&["--tls-verify=false"], &format!("docker://{target}"));
    assert_eq!(config, format!("sha256:{}", ids[0]));
}

#[test]
fn a_cached_index_is_pushed_whole_with_all_platforms() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("cached-index");
    let (layout, _) = images::multi_platform_layout(dir.path(), &["amd64", "arm64"]);
    let source = format!("{}/multi/app:v1", registry.host());
    images::skopeo_push(&format!("oci:{}:multi", layout.display()), &source, true);
    let cache = TestCache::new();
    cache.run(&["pull", "--all-platforms", &source]).success();
    let again = format!("{}/again/app:v1", registry.host());
    cache
        .run(&["push", "--all-platforms", &source, &again])
        .success();
    let digest = |reference: &str| sha256(images::registry_manifest(reference).as_bytes());
    assert_eq!(digest(&again), digest(&source));
}
