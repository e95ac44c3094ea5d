//! `save --layout`: cached images written to an OCI image layout folder, and added to one over
//! several runs. skopeo (`oci:DIR:NAME`) and umoci read the folder and are the oracles for
//! what it holds; skopeo copies it to a real registry with the digests the source had;
//! sha256sum checks every blob file against its name.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use support::images::{
    listed_identity, multi_platform_layout, registry_digest, registry_manifest, skopeo_copy,
    skopeo_identity, skopeo_push, two_layers, umoci_add_layer, umoci_layout,
};
use support::referrers::Producer;
use support::registry::{Setup, TestRegistry};
use support::{TempDir, TestCache, sha256, tool};

/// The folder's `index.json`.
fn index(folder: &Path) -> Value {
    serde_json::from_slice(&fs::read(folder.join("index.json")).unwrap()).unwrap()
}

/// The entries of the folder's `index.json`.
fn entries(folder: &Path) -> Vec<Value> {
    index(folder)["manifests"].as_array().unwrap().clone()
}

/// Each blob file of the folder, by name, with its inode and modification time: what shows
/// that a later run left it alone.
fn blob_files(folder: &Path) -> BTreeMap<String, (u64, i64, i64)> {
    (fs::read_dir(folder.join("blobs/sha256")).unwrap())
        .map(|entry| {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            let name = entry.file_name().into_string().unwrap();
            (name, (meta.ino(), meta.mtime(), meta.mtime_nsec()))
        })
        .collect()
}

/// Checks with sha256sum that every blob file hashes to its name, and that nothing but the
/// layout's files is in the folder (no temporary file left).
fn every_blob_is_whole(folder: &Path) {
    let blobs = folder.join("blobs/sha256");
    for name in blob_files(folder).keys() {
        let sum = tool("sha256sum", &[blobs.join(name).to_str().unwrap()]);
        assert_eq!(sum.split_whitespace().next(), Some(name.as_str()));
    }
    let mut top: Vec<String> = (fs::read_dir(folder).unwrap())
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    top.sort();
    top.retain(|name| name != "docker-image-pusher-referrers.json");
    assert_eq!(top, ["blobs", "index.json", "oci-layout"]);
    assert_eq!(
        fs::read_to_string(folder.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
}

/// `skopeo inspect --raw` of `reference`: the manifest's bytes.
fn raw(reference: &str) -> String {
    tool("skopeo", &["inspect", "--raw", reference])
}

/// Runs `save IMAGE... --layout -o FOLDER` with `cache`.
fn save_layout(cache: &TestCache, images: &[&str], folder: &Path) -> support::Run {
    let mut args = vec!["save"];
    args.extend_from_slice(images);
    args.extend(["--layout", "-o", folder.to_str().unwrap()]);
    cache.run(&args)
}

/// Two OCI images sharing a base layer, `example.com/app:v1` and `example.com/worker:v1`
/// (one tag, two repositories), each extracted into `cache` from an oci-archive skopeo wrote.
fn two_images_sharing_a_layer(dir: &Path, cache: &TestCache) -> [&'static str; 2] {
    let layout = umoci_layout(dir, "base", &[&[("etc/base", b"shared\n")]]);
    let names = ["example.com/app:v1", "example.com/worker:v1"];
    for (tag, name) in ["app", "worker"].iter().zip(names) {
        umoci_add_layer(&layout, "base", tag, &[("etc/own", tag.as_bytes())]);
        let archive = dir.join(format!("{tag}.tar"));
        skopeo_copy(
            &format!("oci:{}:{tag}", layout.display()),
            &format!("oci-archive:{}:{name}", archive.display()),
        );
        cache.run(&["extract", archive.to_str().unwrap()]).success();
    }
    names
}

/// Unpacks `name` of the layout `folder` with umoci into `bundle`; returns the bundle's
/// root file system.
fn umoci_unpack(folder: &Path, name: &str, bundle: &Path) -> PathBuf {
    let image = format!("{}:{name}", folder.display());
    tool(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &image,
            bundle.to_str().unwrap(),
        ],
    );
    bundle.join("rootfs")
}

#[test]
fn a_saved_layout_is_read_by_skopeo_and_umoci_and_copied_to_a_registry_as_it_was() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("layout-oracles");
    let layout = umoci_layout(dir.path(), "src", &two_layers());
    let source = format!("{}/app:v1", registry.host());
    skopeo_push(&format!("oci:{}:src", layout.display()), &source, false);
    let digest = registry_digest(&["--tls-verify=false"], &source);
    let cache = TestCache::new();
    cache.run(&["pull", &source]).success();

    let folder = dir.join("saved");
    let saved = save_layout(&cache, &[&source], &folder).success();
    assert!(saved.stderr.contains("saved 1 image"), "{}", saved.stderr);
    every_blob_is_whole(&folder);
    let listed = entries(&folder);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["digest"], digest.as_str());
    assert_eq!(
        listed[0]["annotations"]["org.opencontainers.image.ref.name"],
        source.as_str(),
        "the full name, as skopeo writes oci:DIR:NAME"
    );

    let name = format!("oci:{}:{source}", folder.display());
    assert_eq!(format!("sha256:{}", sha256(raw(&name).as_bytes())), digest);
    assert_eq!(skopeo_identity(&name), listed_identity(&cache.list()[0]));

    let copied = format!("{}/copied/app:v2", registry.host());
    skopeo_push(&name, &copied, false);
    assert_eq!(registry_digest(&["--tls-verify=false"], &copied), digest);

    let rootfs = umoci_unpack(&folder, &source, &dir.join("bundle"));
    assert_eq!(fs::read(rootfs.join("etc/greeting")).unwrap(), b"hello\n");
    assert_eq!(fs::read(rootfs.join("bin/tool")).unwrap(), b"#!/bin/sh\n");
}

#[test]
fn a_second_save_adds_to_the_layout_and_leaves_what_it_held_alone() {
    let dir = TempDir::new("layout-add");
    let cache = TestCache::new();
    let [app, worker] = two_images_sharing_a_layer(dir.path(), &cache);
    // A trailing slash means --layout.
    let folder = dir.join("images");
    let slashed = format!("{}/", folder.display());
    cache.run(&["save", app, "-o", &slashed]).success();
    let (first_entries, first_blobs) = (entries(&folder), blob_files(&folder));
    assert_eq!(first_entries.len(), 1);

    let second = save_layout(&cache, &[worker], &folder).success();
    // The shared base layer is there: only the worker's own layer, config and manifest.
    assert!(second.stderr.contains(": 2 blobs ("), "{}", second.stderr);
    let now = blob_files(&folder);
    for (name, file) in &first_blobs {
        assert_eq!(now.get(name), Some(file), "{name} was written again");
    }
    assert_eq!(
        now.len(),
        first_blobs.len() + 3,
        "the worker's layer, config, manifest"
    );
    let listed = entries(&folder);
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed[0], first_entries[0],
        "the first entry is kept as it was"
    );
    every_blob_is_whole(&folder);
    for (name, own) in [(app, "app"), (worker, "worker")] {
        let rootfs = umoci_unpack(&folder, name, &dir.join(&format!("bundle-{own}")));
        assert_eq!(fs::read(rootfs.join("etc/own")).unwrap(), own.as_bytes());
        assert_eq!(fs::read(rootfs.join("etc/base")).unwrap(), b"shared\n");
        let reference = format!("oci:{}:{name}", folder.display());
        let digest = format!("sha256:{}", sha256(raw(&reference).as_bytes()));
        let cached = cache.list();
        let image = cached.iter().find(|image| image["name"] == name).unwrap();
        assert_eq!(image["manifest_digest"], digest.as_str());
    }

    // Saving an image again replaces its entry (no twin) and writes no blob.
    let again = save_layout(&cache, &[app], &folder).success();
    assert!(again.stderr.contains("0 blobs"), "{}", again.stderr);
    assert_eq!(entries(&folder), listed);
    assert_eq!(blob_files(&folder), now);

    // skopeo writes the worker under the app's name into the folder (it reads and writes
    // what we wrote); saving the app takes the name back, and no other entry keeps it.
    let other = format!("oci:{}:{app}", folder.display());
    skopeo_copy(&format!("oci:{}:{worker}", folder.display()), &other);
    save_layout(&cache, &[app], &folder).success();
    let listed = entries(&folder);
    let naming = |name: &str| -> Vec<Value> {
        (listed.iter())
            .filter(|entry| {
                let annotations = &entry["annotations"];
                annotations["org.opencontainers.image.ref.name"] == name
                    || annotations["io.containerd.image.name"] == name
            })
            .cloned()
            .collect()
    };
    assert_eq!(naming(app), [first_entries[0].clone()], "{listed:?}");
    assert_eq!(naming(worker).len(), 1, "{listed:?}");
    assert_eq!(listed.len(), 2, "{listed:?}");
}

#[test]
fn a_folder_that_is_not_a_layout_or_a_damaged_layout_is_refused_and_left_alone() {
    let dir = TempDir::new("layout-refused");
    let cache = TestCache::new();
    let [app, worker] = two_images_sharing_a_layer(dir.path(), &cache);

    let other = dir.join("photos");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("holiday.jpg"), b"not an image layout").unwrap();
    let refused = save_layout(&cache, &[app], &other).exits(2);
    assert!(
        refused.stderr.contains(other.to_str().unwrap())
            && refused.stderr.contains("not an OCI image layout"),
        "{}",
        refused.stderr
    );
    assert_eq!(fs::read_dir(&other).unwrap().count(), 1);

    let file = dir.join("app.tar");
    save_layout(&cache, &[app], &file).exits(2);
    cache.run(&["save", app, "--layout", "-o", "-"]).exits(2);
    let folder = dir.join("layout");
    let mixed = cache.run(&[
        "save",
        app,
        "--layout",
        "--gzip",
        "-o",
        folder.to_str().unwrap(),
    ]);
    mixed.exits(2);
    assert!(!folder.exists());

    // A blob cut short in the layout is named, never written over nor used.
    save_layout(&cache, &[app], &folder).success();
    let archive = cache
        .run(&["save", app, "-o", folder.to_str().unwrap()])
        .exits(2);
    assert!(archive.stderr.contains("--layout"), "{}", archive.stderr);
    let base = cache.list();
    let base = (base.iter().find(|image| image["name"] == app).unwrap()["layers"][0]["digest"])
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let cut = folder.join("blobs/sha256").join(&base);
    fs::write(&cut, b"short").unwrap();
    let index_before = fs::read(folder.join("index.json")).unwrap();
    let damaged = save_layout(&cache, &[worker], &folder).exits(3);
    assert!(damaged.stderr.contains(&base), "{}", damaged.stderr);
    assert_eq!(fs::read(&cut).unwrap(), b"short");
    assert_eq!(fs::read(folder.join("index.json")).unwrap(), index_before);

    // A link in a blob's place is never followed, nor written through.
    let outside = dir.join("outside");
    fs::write(&outside, b"not the layout's").unwrap();
    fs::remove_file(&cut).unwrap();
    std::os::unix::fs::symlink(&outside, &cut).unwrap();
    let linked = save_layout(&cache, &[worker], &folder).exits(3);
    assert!(
        linked.stderr.contains("not a regular file"),
        "{}",
        linked.stderr
    );
    assert_eq!(fs::read(&outside).unwrap(), b"not the layout's");
    assert_eq!(fs::read(folder.join("index.json")).unwrap(), index_before);
}

#[test]
fn a_multi_platform_image_keeps_its_index() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("layout-multi");
    let (layout, children) = multi_platform_layout(dir.path(), &["amd64", "arm64"]);
    let source = format!("{}/multi/app:v1", registry.host());
    skopeo_push(&format!("oci:{}:multi", layout.display()), &source, true);
    let index_digest = format!("sha256:{}", sha256(registry_manifest(&source).as_bytes()));
    let cache = TestCache::new();
    cache.run(&["pull", &source, "--all-platforms"]).success();

    let folder = dir.join("saved");
    save_layout(&cache, &[&source], &folder).success();
    every_blob_is_whole(&folder);
    let listed = entries(&folder);
    assert_eq!(listed.len(), 1, "the index, not its images");
    assert_eq!(listed[0]["digest"], index_digest.as_str());
    assert_eq!(
        listed[0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let name = format!("oci:{}:{source}", folder.display());
    assert_eq!(
        format!("sha256:{}", sha256(raw(&name).as_bytes())),
        index_digest
    );
    for child in &children {
        let path = folder
            .join("blobs/sha256")
            .join(child.trim_start_matches("sha256:"));
        assert!(path.is_file(), "{child}");
    }
    let copied = format!("{}/copied/multi:v1", registry.host());
    skopeo_push(&name, &copied, true);
    let copied_index = format!("sha256:{}", sha256(registry_manifest(&copied).as_bytes()));
    assert_eq!(copied_index, index_digest);
}

#[test]
fn referrers_go_into_the_layout_listed_beside_the_images() {
    let registry = TestRegistry::start(Setup::Plain);
    let producer = Producer::new(&registry.host());
    let image = producer.image("app", "v1", "app");
    let sbom = producer.sbom("app", &image, "app");
    let fallback = producer.link_fallback("app", &image, &[&sbom]);
    let signature = producer.cosign_signature("app", &image, "signed");
    let other = producer.image("other", "v1", "other");
    let (app, other_name) = (
        format!("{}/app:v1", registry.host()),
        format!("{}/other:v1", registry.host()),
    );
    let cache = TestCache::new();
    cache.run(&["pull", &app]).success();
    cache.run(&["pull", &other_name]).success();

    let dir = TempDir::new("layout-referrers");
    let folder = dir.join("saved");
    let saved = save_layout(&cache, &[&app], &folder).success();
    assert!(saved.stderr.contains("2 referrers"), "{}", saved.stderr);
    every_blob_is_whole(&folder);
    let listed = entries(&folder);
    assert_eq!(listed.len(), 1, "index.json lists the image alone");
    assert_eq!(listed[0]["digest"], image.digest.as_str());
    let blobs = blob_files(&folder);
    for manifest in [&sbom, &fallback, &signature] {
        assert!(blobs.contains_key(manifest.hex()), "{}", manifest.digest);
    }
    let sbom_layer: Value = serde_json::from_slice(&sbom.bytes).unwrap();
    let layer = sbom_layer["layers"][0]["digest"].as_str().unwrap();
    assert!(blobs.contains_key(layer.trim_start_matches("sha256:")));
    let referrers = |folder: &Path| -> Value {
        let path = folder.join("docker-image-pusher-referrers.json");
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    };
    let listing = referrers(&folder);
    assert_eq!(
        listing["indexes"][&image.digest]["digest"],
        fallback.digest.as_str()
    );
    let signature_tag = format!("{}/app:sha256-{}.sig", registry.host(), image.hex());
    assert_eq!(
        listing["tags"][&signature_tag]["digest"],
        signature.digest.as_str()
    );

    // Another image added later keeps the referrers listed before.
    save_layout(&cache, &[&other_name], &folder).success();
    assert_eq!(entries(&folder).len(), 2);
    assert_eq!(referrers(&folder), listing);
    assert_eq!(
        other.digest,
        entries(&folder)[1]["digest"].as_str().unwrap()
    );
}

#[test]
fn a_blob_that_does_not_match_its_digest_leaves_nothing_under_its_name() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("layout-corrupt");
    let cache = TestCache::new();
    let [app, worker] = two_images_sharing_a_layer(dir.path(), &cache);
    let folder = dir.join("layout");
    save_layout(&cache, &[app], &folder).success();
    let (index_before, blobs_before) = (index(&folder), blob_files(&folder));

    // The worker's own layer, changed in the cache at its size.
    let listed = cache.list();
    let image = listed.iter().find(|image| image["name"] == worker).unwrap();
    let layer = image["layers"][1]["digest"].as_str().unwrap();
    let hex = layer.trim_start_matches("sha256:");
    let cached = cache.path().join("blobs/sha256").join(hex);
    let good = fs::read(&cached).unwrap();
    let mode = fs::metadata(&cached).unwrap().permissions();
    fs::set_permissions(&cached, fs::Permissions::from_mode(0o600)).unwrap();
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 0xff;
    fs::write(&cached, &bad).unwrap();

    let failed = save_layout(&cache, &[worker], &folder).exits(3);
    assert!(failed.stderr.contains(hex), "{}", failed.stderr);
    assert!(!folder.join("blobs/sha256").join(hex).exists());
    assert_eq!(index(&folder), index_before);
    let after = blob_files(&folder);
    for (name, file) in &blobs_before {
        assert_eq!(after.get(name), Some(file));
    }
    assert!(
        after.keys().all(|name| !name.starts_with('.')),
        "a temporary file is left: {after:?}"
    );
    every_blob_is_whole(&folder);

    // The cache put right, the same folder takes the worker.
    fs::write(&cached, &good).unwrap();
    fs::set_permissions(&cached, mode).unwrap();
    save_layout(&cache, &[worker], &folder).success();
    assert_eq!(entries(&folder).len(), 2);
}

#[test]
fn a_run_waits_for_another_writing_the_same_layout() {
    let dir = TempDir::new("layout-lock");
    let cache = TestCache::new();
    let [app, worker] = two_images_sharing_a_layer(dir.path(), &cache);
    let folder = dir.join("layout");
    save_layout(&cache, &[app], &folder).success();

    // Another run holds the layout (as a save between its open and its finish does).
    let held = fs::File::open(folder.join("oci-layout")).unwrap();
    held.lock().unwrap();
    let cache_dir = cache.path();
    let mut waiting = support::command(&[
        "--cache-dir",
        cache_dir.to_str().unwrap(),
        "save",
        worker,
        "--layout",
        "-o",
        folder.to_str().unwrap(),
    ])
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert!(waiting.try_wait().unwrap().is_none(), "it waits");
    assert_eq!(entries(&folder).len(), 1);
    drop(held);
    let done = waiting.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(
        stderr.contains("waiting for another run writing"),
        "{stderr}"
    );
    assert_eq!(entries(&folder).len(), 2);
}

#[test]
fn a_docker_format_manifest_keeps_its_digest_in_the_layout_and_is_said_so() {
    // `docker save` has no manifest of its own: the cache makes Docker's (what `docker push`
    // would send), and the folder keeps it byte for byte, saying who will not see it.
    let dir = TempDir::new("layout-docker-format");
    let archive = dir.join("legacy.tar");
    let layer: &[u8] = b"a legacy layer";
    support::tarball::write_tar(
        &archive,
        &support::tarball::legacy_items(&[layer], r#"["example.com/legacy:v1"]"#),
    );
    let cache = TestCache::new();
    cache.run(&["extract", archive.to_str().unwrap()]).success();
    let listed: Value =
        serde_json::from_str(&cache.run(&["list", "--json"]).success().stdout).unwrap();
    let digest = listed[0]["manifest_digest"].as_str().unwrap().to_string();
    let folder = dir.join("layout");
    let saved = save_layout(&cache, &["example.com/legacy:v1"], &folder).success();
    assert!(
        saved
            .stderr
            .contains("its manifest is Docker's format, kept as it is"),
        "{}",
        saved.stderr
    );
    let entry = &entries(&folder)[0];
    assert_eq!(entry["digest"], digest.as_str());
    assert_eq!(
        entry["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    every_blob_is_whole(&folder);

    // Read back by this tool (as crane and regctl would read it), the same image.
    let again = TestCache::new();
    let named = format!("{}:example.com/legacy:v1", folder.display());
    again.run(&["extract", &named]).success();
    let listed: Value =
        serde_json::from_str(&again.run(&["list", "--json"]).success().stdout).unwrap();
    assert_eq!(listed[0]["manifest_digest"], digest.as_str());
}

#[test]
fn an_empty_oci_layout_left_by_a_cut_run_is_written_and_the_folder_used() {
    let dir = TempDir::new("layout-empty-marker");
    let cache = TestCache::new();
    let [app, _] = two_images_sharing_a_layer(dir.path(), &cache);
    // A run cut between making oci-layout and writing it leaves it empty, and nothing else.
    let folder = dir.join("cut");
    fs::create_dir(&folder).unwrap();
    fs::write(folder.join("oci-layout"), b"").unwrap();
    save_layout(&cache, &[app], &folder).success();
    every_blob_is_whole(&folder);
    let listed = entries(&folder);
    assert_eq!(listed.len(), 1);
    let reference = format!("oci:{}:{app}", folder.display());
    let digest = format!("sha256:{}", sha256(raw(&reference).as_bytes()));
    assert_eq!(listed[0]["digest"], digest.as_str(), "skopeo reads it");
}

#[test]
fn a_layout_others_could_change_while_it_is_written_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("layout-shared");
    let cache = TestCache::new();
    let [app, _] = two_images_sharing_a_layer(dir.path(), &cache);
    // Anyone could swap blobs/ for a link into a folder of theirs while the blobs go in.
    let open = dir.join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let refused = save_layout(&cache, &[app], &open).exits(3);
    assert!(
        refused.stderr.contains("every user can write it"),
        "{}",
        refused.stderr
    );
    assert_eq!(fs::read_dir(&open).unwrap().count(), 0, "nothing written");

    // The same for blobs/ of a layout that is there.
    let layout = dir.join("layout");
    save_layout(&cache, &[app], &layout).success();
    fs::set_permissions(layout.join("blobs"), fs::Permissions::from_mode(0o777)).unwrap();
    let refused = save_layout(&cache, &[app], &layout).exits(3);
    assert!(refused.stderr.contains("blobs"), "{}", refused.stderr);
}
