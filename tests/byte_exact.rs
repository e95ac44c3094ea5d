//! Copies keep every digest: `copy` moves blobs and manifests as they are (an image with
//! uncompressed layers keeps its manifest digest, run after run, and nothing is written to
//! disk), re-encodes only when asked and says so, and every layer's media type belongs to the
//! family of the manifest that lists it, whatever the cache's memo remembers.

mod support;

use support::registry::{Setup, TestRegistry};
use support::tarball::noisy_archive;
use support::{TempDir, TestCache, command, images, sha256};

/// The manifest `reference` names on `registry`, as stored: its bytes, parsed, and digest.
fn stored_manifest(registry: &TestRegistry, reference: &str) -> (serde_json::Value, String) {
    let raw = images::registry_manifest(&format!("{}/{reference}", registry.host()));
    (serde_json::from_str(&raw).unwrap(), sha256(raw.as_bytes()))
}

/// The media types of a manifest's layers.
fn layer_types(manifest: &serde_json::Value) -> Vec<String> {
    (manifest["layers"].as_array().unwrap().iter())
        .map(|layer| layer["mediaType"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn copy_keeps_the_digest_of_an_uncompressed_image_and_writes_nothing() {
    let (from, to) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let dir = TempDir::new("byte-exact");
    let archive = noisy_archive(dir.path(), 300_000);
    let source = format!("{}/src/app:v1", from.host());
    support::push_uncompressed(&archive, &source);
    let (manifest, digest) = stored_manifest(&from, "src/app:v1");
    assert!(layer_types(&manifest).iter().all(|t| t.ends_with(".tar")));

    for run in 0..3 {
        let workdir = TempDir::new("copy-workdir");
        let target = format!("{}/dst{run}/app:v1", to.host());
        let output = command(&["copy", &source, &target])
            .current_dir(workdir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert_eq!(
            stored_manifest(&to, &format!("dst{run}/app:v1")).1,
            digest,
            "run {run}: the copy has another manifest digest"
        );
        let left: Vec<_> = std::fs::read_dir(workdir.path()).unwrap().collect();
        assert!(left.is_empty(), "run {run}: the copy wrote {left:?}");
    }

    let reencoded = TestCache::new()
        .run(&[
            "copy",
            &source,
            &format!("{}/gz/app:v1", to.host()),
            "--compress",
            "gzip",
        ])
        .success();
    assert!(
        reencoded.stderr.contains("re-encoded"),
        "{}",
        reencoded.stderr
    );
    let (manifest, gzip_digest) = stored_manifest(&to, "gz/app:v1");
    assert_ne!(gzip_digest, digest);
    assert_eq!(
        layer_types(&manifest),
        ["application/vnd.oci.image.layer.v1.tar+gzip"; 2]
    );
}

#[test]
fn layers_keep_their_manifests_family_whatever_the_memo_remembers() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("family");
    let archive = noisy_archive(dir.path(), 200_000);
    let archive = archive.to_str().unwrap();
    // An OCI image with uncompressed layers, pulled into the cache.
    let oci = format!("{}/oci/app:v1", registry.host());
    support::push_uncompressed(std::path::Path::new(archive), &oci);
    let cache = TestCache::new();
    cache.run(&["pull", &oci]).success();
    // The same layers pushed from the docker save archive, gzipped: the memo now holds
    // their compressed form as a Docker layer type.
    let docker = format!("{}/docker/app:v1", registry.host());
    cache.run(&["push", archive, &docker]).success();
    let (manifest, _) = stored_manifest(&registry, "docker/app:v1");
    assert_eq!(
        layer_types(&manifest),
        ["application/vnd.docker.image.rootfs.diff.tar.gzip"; 2]
    );
    // The OCI image gzipped from the cache: found through the memo, typed as OCI.
    let again = format!("{}/again/app:v1", registry.host());
    cache
        .run(&["push", &oci, &again, "--compress", "gzip"])
        .success();
    let (manifest, _) = stored_manifest(&registry, "again/app:v1");
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        layer_types(&manifest),
        ["application/vnd.oci.image.layer.v1.tar+gzip"; 2]
    );
}
