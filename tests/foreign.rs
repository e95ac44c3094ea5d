//! Images with foreign (non-distributable) layers, as Windows base images have: the real
//! registry holds the manifest and the other blobs, never the foreign layer, whose bytes are at
//! a URL. `copy` and `sync` keep the manifest byte for byte without fetching the URL; `pull` refuses
//! plainly, naming the layer, and caches nothing.

mod support;

use std::net::TcpListener;

use support::images::{registry_digest, registry_manifest};
use support::registry::TestRegistry;
use support::tarball::{Item, config, write_tar};
use support::{TempDir, TestCache, gzip_file, sha256};

/// A layer that stands for one a registry never holds, and the listener its URL names: the
/// test fails if anything connects to it.
struct Foreign {
    digest: String,
    diff_id: String,
    size: usize,
    url: String,
    listener: TcpListener,
}

impl Foreign {
    fn new() -> Foreign {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let bytes = b"the bytes of a Windows base layer, kept by its vendor";
        Foreign {
            digest: format!("sha256:{}", sha256(bytes)),
            diff_id: format!("sha256:{}", sha256(b"its uncompressed form")),
            size: bytes.len(),
            url: format!("http://127.0.0.1:{port}/base.tar.gz"),
            listener,
        }
    }

    /// Fails if anything connected to its URL.
    fn never_fetched(&self) {
        assert!(
            self.listener.accept().is_err(),
            "the foreign layer's URL was fetched"
        );
    }
}

/// Pushes to `repository:v1` of `registry` an image whose first layer is `foreign`, of
/// `manifest_type` with the layer as `layer_type`, and one ordinary gzip layer of
/// `ordinary_type`; returns the manifest's bytes.
fn push_foreign_image(
    registry: &TestRegistry,
    repository: &str,
    (manifest_type, layer_type, ordinary_type, config_type): (&str, &str, &str, &str),
    foreign: &Foreign,
) -> Vec<u8> {
    let dir = TempDir::new("foreign");
    write_tar(
        &dir.join("layer.tar"),
        &[Item::File(
            "etc/app".into(),
            b"on top of the base\n".to_vec(),
        )],
    );
    gzip_file(&dir.join("layer.tar"), &dir.join("layer.tar.gz"));
    let diff_id = format!("sha256:{}", support::sha256_file(&dir.join("layer.tar")));
    let layer = std::fs::read(dir.join("layer.tar.gz")).unwrap();
    let layer_digest = registry.put_blob(repository, &layer);
    let config = config(&[foreign.diff_id.clone(), diff_id]).into_bytes();
    let config_digest = registry.put_blob(repository, &config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": config_type, "digest": config_digest, "size": config.len()},
        "layers": [
            {"mediaType": layer_type, "digest": foreign.digest, "size": foreign.size,
             "urls": [foreign.url]},
            {"mediaType": ordinary_type, "digest": layer_digest, "size": layer.len()},
        ],
    });
    let manifest = serde_json::to_vec_pretty(&manifest).unwrap();
    registry.put_manifest(repository, "v1", manifest_type, &manifest);
    manifest
}

/// `copy` and `sync` keep the image whole and byte for byte, its foreign layer left where it is; `pull`
/// (and `copy --via-cache`) refuse it, naming the layer, and leave the cache empty.
fn copied_as_it_is_and_never_pulled(types: (&str, &str, &str, &str)) {
    let (source, target) = (
        TestRegistry::start_allowing_foreign_layers(),
        TestRegistry::start_allowing_foreign_layers(),
    );
    let foreign = Foreign::new();
    let manifest = push_foreign_image(&source, "win/app", types, &foreign);
    let (from, to) = (
        format!("{}/win/app:v1", source.host()),
        format!("{}/win/app:v1", target.host()),
    );
    let cache = TestCache::new();
    cache.run(&["copy", &from, &to]).success();
    let plain = ["--tls-verify=false"];
    assert_eq!(
        registry_digest(&plain, &to),
        format!("sha256:{}", sha256(&manifest))
    );
    assert_eq!(registry_manifest(&to).into_bytes(), manifest);
    assert_eq!(
        target.requests(&format!("HEAD /v2/win/app/blobs/{}", foreign.digest)),
        0,
        "the foreign layer is not asked for at the destination"
    );
    let dir = TempDir::new("foreign-sync");
    let (list, synced) = (
        dir.join("list.txt"),
        format!("{}/win/synced:v1", target.host()),
    );
    std::fs::write(&list, format!("{from} {synced}\n")).unwrap();
    cache
        .run(&["sync", "--file", list.to_str().unwrap()])
        .success();
    assert_eq!(registry_manifest(&synced).into_bytes(), manifest);

    for args in [vec!["pull", &from], vec!["copy", "--via-cache", &from, &to]] {
        let refused = cache.run(&args).exits(3);
        for words in [foreign.digest.as_str(), "foreign layer", "not hold"] {
            assert!(
                refused.stderr.contains(words),
                "{words}: {}",
                refused.stderr
            );
        }
    }
    assert!(cache.list().is_empty(), "nothing was cached");
    foreign.never_fetched();
}

#[test]
fn a_docker_image_with_a_foreign_layer() {
    copied_as_it_is_and_never_pulled((
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.container.image.v1+json",
    ));
}

#[test]
fn an_oci_image_with_a_non_distributable_layer() {
    copied_as_it_is_and_never_pulled((
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.config.v1+json",
    ));
}
