//! `save`: cached images written to one archive. skopeo reads the archive back (as
//! `docker-archive`, and as `oci-archive` where the manifests are OCI ones) and is the oracle
//! for what it holds; `extract` of the archive must give back the same manifests, and what it
//! gives pushes as the original.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use support::images::{self, skopeo_copy, skopeo_identity, umoci_add_layer, umoci_layout};
use support::registry::{Setup, TestRegistry};
use support::{TempDir, TestCache, tool};

/// Two images sharing a base layer, each in its own docker-archive, named
/// `example.com/app:a` and `example.com/app:b`.
fn two_archives_sharing_a_layer(dir: &Path) -> [PathBuf; 2] {
    let layout = umoci_layout(dir, "base", &[&[("etc/base", b"shared\n")]]);
    ["a", "b"].map(|tag| {
        umoci_add_layer(&layout, "base", tag, &[("etc/own", tag.as_bytes())]);
        let archive = dir.join(format!("{tag}.tar"));
        skopeo_copy(
            &format!("oci:{}:{tag}", layout.display()),
            &format!("docker-archive:{}:example.com/app:{tag}", archive.display()),
        );
        archive
    })
}

/// A small image in a docker-archive written by skopeo, named `example.com/app:v1`.
fn app_archive(dir: &Path) -> PathBuf {
    images::docker_archive(dir, "example.com/app:v1")
}

/// [`app_archive`], and a cache it was extracted into.
fn extracted_app(dir: &Path) -> (PathBuf, TestCache) {
    let archive = app_archive(dir);
    let cache = TestCache::new();
    cache.run(&["extract", archive.to_str().unwrap()]).success();
    (archive, cache)
}

/// The paths of the entries of a tar file, in order.
fn entries(archive: &Path) -> Vec<String> {
    tool("tar", &["-tf", archive.to_str().unwrap()])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Name and manifest digest of every cached image.
fn manifests(cache: &TestCache) -> BTreeMap<String, String> {
    (cache.list().iter())
        .map(|image| {
            let name = image["name"].as_str().unwrap().to_string();
            (name, image["manifest_digest"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn two_images_go_into_one_archive_that_skopeo_reads_and_extract_restores() {
    let dir = TempDir::new("save-two");
    let archives = two_archives_sharing_a_layer(dir.path());
    let cache = TestCache::new();
    for archive in &archives {
        cache.run(&["extract", archive.to_str().unwrap()]).success();
    }
    let saved = dir.join("both.tar");
    let run = cache
        .run(&[
            "save",
            "example.com/app:a",
            "example.com/app:b",
            "-o",
            saved.to_str().unwrap(),
        ])
        .success();
    assert!(run.stderr.contains("saved 2 images"), "{}", run.stderr);
    assert!(!dir.join("both.tar.partial").exists());

    let listed = entries(&saved);
    let mut unique = listed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), listed.len(), "every blob once: {listed:?}");
    for name in ["manifest.json", "index.json", "oci-layout"] {
        assert!(
            listed.iter().any(|entry| entry == name),
            "{name} in {listed:?}"
        );
    }

    for (tag, archive) in ["a", "b"].iter().zip(&archives) {
        let original = skopeo_identity(&format!("docker-archive:{}", archive.display()));
        let named = format!("docker-archive:{}:example.com/app:{tag}", saved.display());
        assert_eq!(skopeo_identity(&named), original, "{named}");
        let copied = dir.join(&format!("copied-{tag}"));
        skopeo_copy(&named, &format!("oci:{}:{tag}", copied.display()));
        let copied = format!("oci:{}:{tag}", copied.display());
        assert_eq!(
            skopeo_identity(&copied).1,
            original.1,
            "{copied}: the same layers (skopeo rewrites the config for OCI)"
        );
    }

    let restored = TestCache::new();
    restored
        .run(&["extract", saved.to_str().unwrap()])
        .success();
    assert_eq!(manifests(&restored), manifests(&cache));
}

#[test]
fn gzip_to_standard_output_is_an_archive_skopeo_reads() {
    let dir = TempDir::new("save-stdout");
    let (archive, cache) = extracted_app(dir.path());
    let compressed = cache.stdout_bytes(&["save", "example.com/app:v1", "--gzip", "-o", "-"]);
    let plain = dir.join("stdout.tar");
    let mut decoded = Vec::new();
    std::io::copy(
        &mut flate2::read::GzDecoder::new(compressed.as_slice()),
        &mut decoded,
    )
    .unwrap();
    fs::write(&plain, decoded).unwrap();
    assert_eq!(
        skopeo_identity(&format!("docker-archive:{}", plain.display())),
        skopeo_identity(&format!("docker-archive:{}", archive.display()))
    );
}

#[test]
fn a_multi_platform_image_keeps_its_index_and_lists_one_platform_for_docker() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("save-index");
    let (layout, digests) = images::multi_platform_layout(dir.path(), &["amd64", "arm64"]);
    let target = format!("{}/save/multi:v1", registry.host());
    images::skopeo_push(&format!("oci:{}:multi", layout.display()), &target, true);
    let cache = TestCache::new();
    cache.run(&["pull", &target, "--all-platforms"]).success();
    let saved = dir.join("multi.tar");
    cache
        .run(&["save", &target, "-o", saved.to_str().unwrap()])
        .success();

    let raw =
        |transport_reference: &str| tool("skopeo", &["inspect", "--raw", transport_reference]);
    let index = raw(&format!("oci-archive:{}", saved.display()));
    let pushed = images::registry_manifest(&target);
    assert_eq!(index, pushed, "the index, byte for byte");
    for digest in &digests {
        assert!(index.contains(digest.as_str()), "{digest} in {index}");
    }
    let host = match std::env::consts::ARCH {
        "aarch64" => 1,
        _ => 0,
    };
    let listed: serde_json::Value =
        serde_json::from_str(&raw(&format!("docker-archive:{}", saved.display()))).unwrap();
    let child = format!("docker://{}/save/multi@{}", registry.host(), digests[host]);
    let expected: serde_json::Value = serde_json::from_str(&tool(
        "skopeo",
        &["inspect", "--raw", "--tls-verify=false", &child],
    ))
    .unwrap();
    assert_eq!(
        listed["config"]["digest"], expected["config"]["digest"],
        "manifest.json lists the host's platform"
    );
    let one = TestCache::new();
    one.run(&["extract", saved.to_str().unwrap()]).success();
    assert_eq!(
        one.list()[0]["manifest_digest"],
        digests[host].as_str(),
        "by default, the host's platform"
    );
    // --platform picks the other one, for extract, push FILE and sync's archive lines alike.
    let other = ["linux/amd64", "linux/arm64"][1 - host];
    let picked = TestCache::new();
    picked
        .run(&["extract", saved.to_str().unwrap(), "--platform", other])
        .success();
    assert_eq!(
        picked.list()[0]["manifest_digest"],
        digests[1 - host].as_str()
    );
    let missing = TestCache::new()
        .run(&[
            "extract",
            saved.to_str().unwrap(),
            "--platform",
            "linux/s390x",
        ])
        .exits(6);
    assert!(
        missing.stderr.contains("no image for linux/s390x"),
        "{}",
        missing.stderr
    );
    let one_pushed = format!("{}/save/one:v1", registry.host());
    TestCache::new()
        .run(&[
            "push",
            saved.to_str().unwrap(),
            &one_pushed,
            "--platform",
            other,
        ])
        .success();
    let list = dir.join("list.txt");
    let synced = format!("{}/save/synced:v1", registry.host());
    std::fs::write(&list, format!("{} {synced}\n", saved.display())).unwrap();
    TestCache::new()
        .run(&[
            "sync",
            "--file",
            list.to_str().unwrap(),
            "--platform",
            other,
        ])
        .success();
    for reference in [&one_pushed, &synced] {
        let raw = images::registry_manifest(reference);
        assert_eq!(
            format!("sha256:{}", support::sha256(raw.as_bytes())),
            digests[1 - host],
            "{reference} is the image for {other}"
        );
    }
    let restored = TestCache::new();
    restored
        .run(&["extract", saved.to_str().unwrap(), "--all-platforms"])
        .success();
    assert_eq!(
        manifests(&restored),
        manifests(&cache),
        "the index comes back"
    );

    let pushed = format!("{}/save/pushed:v1", registry.host());
    TestCache::new()
        .run(&["push", saved.to_str().unwrap(), &pushed, "--all-platforms"])
        .success();
    let pushed = images::registry_manifest(&pushed);
    assert_eq!(pushed, index, "an archive pushes its index whole");
}

#[test]
fn a_damaged_cache_blob_leaves_no_archive_behind() {
    let dir = TempDir::new("save-damaged");
    let (_, cache) = extracted_app(dir.path());
    let layer = cache.list()[0]["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = cache
        .path()
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    let original = fs::read(&blob).unwrap();
    let mut damaged = original.clone();
    damaged[0] ^= 1;
    fs::write(&blob, damaged).unwrap();

    let saved = dir.join("out.tar");
    let run = cache.run(&["save", "example.com/app:v1", "-o", saved.to_str().unwrap()]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains(&layer), "{}", run.stderr);
    assert!(!saved.exists() && !dir.join("out.tar.partial").exists());
    fs::write(&blob, original).unwrap();
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = (fs::read_dir(dir).unwrap())
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_split_save_that_cannot_finish_leaves_no_partial_part() {
    let dir = TempDir::new("save-split-blocked");
    let (_, cache) = extracted_app(dir.path());
    let out = dir.path().join("out");
    fs::create_dir_all(out.join("app.tar.001/in the way")).unwrap();
    let saved = out.join("app.tar");
    let split = ["-o", saved.to_str().unwrap(), "--split", "1K"];
    let run = cache.run(&[&["save", "example.com/app:v1"][..], &split].concat());
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("app.tar.001"), "{}", run.stderr);
    assert_eq!(names(&out), ["app.tar.000", "app.tar.001"]);

    // A whole archive that cannot be renamed into place leaves no temporary file either.
    let whole = out.join("app.tar.001");
    let run = cache.run(&["save", "example.com/app:v1", "-o", whole.to_str().unwrap()]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert_eq!(names(&out), ["app.tar.000", "app.tar.001"]);
}

#[test]
fn usage_and_missing_images_are_told_apart() {
    let cache = TestCache::new();
    let no_output = cache.run(&["save", "app:v1"]).exits(2);
    assert!(no_output.stderr.contains("-o FILE"), "{}", no_output.stderr);
    cache.run(&["save", "-o", "out.tar"]).exits(2);
    let dir = TempDir::new("save-missing");
    let saved = dir.join("out.tar");
    let missing = cache
        .run(&["save", "nothing:here", "-o", saved.to_str().unwrap()])
        .exits(6);
    assert!(missing.stderr.contains("nothing"), "{}", missing.stderr);
    assert!(!saved.exists());
}

#[test]
fn a_pulled_image_saved_extracted_and_pushed_is_the_image_pulled() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("save-trip");
    let archive = app_archive(dir.path());
    let original = format!("{}/trip/app:v1", registry.host());
    images::skopeo_push(
        &format!("docker-archive:{}", archive.display()),
        &original,
        false,
    );
    let connected = TestCache::new();
    connected.run(&["pull", &original]).success();
    let carried = dir.join("carried.tar");
    connected
        .run(&["save", &original, "-o", carried.to_str().unwrap()])
        .success();

    let air_gapped = TestCache::new();
    air_gapped
        .run(&["extract", carried.to_str().unwrap()])
        .success();
    assert_eq!(manifests(&air_gapped), manifests(&connected));
    let pushed = format!("{}/trip/app-copy:v1", registry.host());
    air_gapped.run(&["push", &original, &pushed]).success();
    let inspect = |image: &str| {
        images::skopeo_identity_with(&["--tls-verify=false"], &format!("docker://{image}"))
    };
    assert_eq!(inspect(&pushed), inspect(&original));
}

#[test]
fn save_and_bundle_report_like_the_other_transfers() {
    let dir = TempDir::new("save-json");
    let (_, cache) = extracted_app(dir.path());
    let pull_shape = |stdout: &str| -> serde_json::Value {
        let last = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    };
    let saved = dir.join("out.tar");
    let run = cache
        .run(&[
            "save",
            "example.com/app:v1",
            "-o",
            saved.to_str().unwrap(),
            "--json",
        ])
        .success();
    let result = pull_shape(&run.stdout);
    assert_eq!(result["event"], "result");
    assert_eq!(result["command"], "save");
    assert_eq!(result["images"][0], "example.com/app:v1");
    assert_eq!(result["blobs_copied"], 3, "{result}");
    assert!(result["bytes_copied"].as_u64().unwrap() > 0);
    assert!(
        run.stdout
            .lines()
            .any(|line| line.contains("\"event\":\"blob\"")),
        "blob events come first: {}",
        run.stdout
    );
    let bundle = dir.join("carried");
    let run = cache
        .run(&[
            "bundle",
            "example.com/app:v1",
            "-o",
            bundle.to_str().unwrap(),
            "--json",
            "--progress",
            "none",
        ])
        .success();
    let result = pull_shape(&run.stdout);
    assert_eq!(result["command"], "bundle");
    assert_eq!(result["blobs_copied"], 3, "{result}");

    let refused = cache
        .run(&["save", "example.com/app:v1", "-o", "-", "--json"])
        .exits(2);
    assert!(refused.stderr.contains("-o FILE"), "{}", refused.stderr);
}
