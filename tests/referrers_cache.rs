//! Referrers (an SPDX SBOM, its fallback index, a cosign signature) travel with their image
//! through the cache and archives: pulled, saved, extracted and pushed again across a cache
//! boundary, the target ends with every one of them byte for byte; `list` counts them and
//! `clean` keeps their blobs. The registry is Distribution 2.8, which has no Referrers API:
//! the fallback tag `sha256-<hex>` lists a subject's referrers.

mod support;

use serde_json::{Value, json};

use support::images::{
    multi_platform_layout, registry_manifest, skopeo_push, two_layers, umoci_layout,
};
use support::registry::{Setup, TestRegistry};
use support::{TempDir, TestCache, sha256};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const SPDX: &str = "application/spdx+json";

/// What was made at the source: the image and its referrers, as their bytes.
struct Signed {
    /// `sha256:<hex>` of the image's manifest.
    image: String,
    /// Its descriptor, as a referrer names it.
    subject: Value,
    sbom: Vec<u8>,
    /// The fallback index at `sha256-<hex>`.
    index: Vec<u8>,
    /// cosign's simple-signing manifest at `sha256-<hex>.sig`.
    signature: Vec<u8>,
}

impl Signed {
    /// The fallback tag of the image.
    fn tag(&self) -> String {
        self.image.replacen(':', "-", 1)
    }
}

/// Pushes an image to `repository:v1` of `registry` and gives it an SBOM (an artifact with
/// an empty config that names it as its `subject`, listed in the fallback index) and a
/// cosign signature at its `.sig` tag, laid out as syft/oras and cosign write them.
fn signed_image(registry: &TestRegistry, repository: &str) -> Signed {
    let dir = TempDir::new("referrers-src");
    let layout = umoci_layout(dir.path(), "src", &two_layers());
    let target = format!("{}/{repository}:v1", registry.host());
    skopeo_push(&format!("oci:{}:src", layout.display()), &target, false);
    let manifest = registry_manifest(&target);
    let image = format!("sha256:{}", sha256(manifest.as_bytes()));
    let subject = json!({"mediaType": OCI_MANIFEST, "digest": image, "size": manifest.len()});

    let document: &[u8] = br#"{"spdxVersion":"SPDX-2.3","name":"app"}"#;
    let sbom = put_artifact(registry, repository, &subject, (SPDX, document));
    let index = put_fallback(registry, repository, &image, &[(&sbom, SPDX)]);
    let tag = image.replacen(':', "-", 1);

    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{target}"}},"image":{{"docker-manifest-digest":"{}"}},"type":"cosign container image signature"}}}}"#,
        image
    );
    let payload_digest = registry.put_blob(repository, payload.as_bytes());
    let config = json!({
        "architecture": "", "os": "", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [payload_digest]},
    })
    .to_string();
    let config_digest = registry.put_blob(repository, config.as_bytes());
    let signature = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest, "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "digest": payload_digest, "size": payload.len(),
            "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQDsig"},
        }],
    })
    .to_string()
    .into_bytes();
    registry.put_manifest(repository, &format!("{tag}.sig"), OCI_MANIFEST, &signature);
    Signed {
        image,
        subject,
        sbom,
        index,
        signature,
    }
}

/// Stores an artifact of `artifact_type` holding `document` that names `subject`, as syft,
/// oras and cosign's in-toto attestations lay it out (an empty config, one layer); returns
/// its manifest.
fn put_artifact(
    registry: &TestRegistry,
    repository: &str,
    subject: &Value,
    (artifact_type, document): (&str, &[u8]),
) -> Vec<u8> {
    let empty = registry.put_blob(repository, b"{}");
    let layer = registry.put_blob(repository, document);
    let artifact = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": artifact_type, "digest": layer, "size": document.len()}],
        "subject": subject,
        "annotations": {"org.opencontainers.image.created": "2026-12-01T00:00:00Z"},
    })
    .to_string()
    .into_bytes();
    let digest = format!("sha256:{}", sha256(&artifact));
    registry.put_manifest(repository, &digest, OCI_MANIFEST, &artifact);
    artifact
}

/// Stores the fallback index of the manifest `subject` (`sha256:<hex>`) listing `listed`
/// (each artifact's manifest and type); returns it.
fn put_fallback(
    registry: &TestRegistry,
    repository: &str,
    subject: &str,
    listed: &[(&[u8], &str)],
) -> Vec<u8> {
    let entries: Vec<Value> = (listed.iter())
        .map(|(artifact, artifact_type)| {
            json!({
                "mediaType": OCI_MANIFEST,
                "digest": format!("sha256:{}", sha256(artifact)),
                "size": artifact.len(),
                "artifactType": artifact_type,
            })
        })
        .collect();
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
        .to_string()
        .into_bytes();
    let tag = subject.replacen(':', "-", 1);
    registry.put_manifest(repository, &tag, OCI_INDEX, &index);
    index
}

/// Checks that `repository` of `registry` holds every referrer of `signed` byte for byte:
/// the SBOM by digest, the fallback index and the signature at their tags.
fn holds_every_referrer(registry: &TestRegistry, repository: &str, signed: &Signed) {
    let at = |reference: &str| format!("{}/{repository}{reference}", registry.host());
    let sbom = format!("@sha256:{}", sha256(&signed.sbom));
    for (reference, bytes) in [
        (sbom.as_str(), &signed.sbom),
        (&format!(":{}", signed.tag()), &signed.index),
        (&format!(":{}.sig", signed.tag()), &signed.signature),
    ] {
        let there = registry_manifest(&at(reference));
        assert_eq!(sha256(there.as_bytes()), sha256(bytes), "{reference}");
    }
}

#[test]
fn pull_records_referrers_that_push_carries_and_clean_keeps() {
    let (source, target) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let signed = signed_image(&source, "app");
    let image = format!("{}/app:v1", source.host());
    let cache = TestCache::new();
    let pulled = cache.run(&["pull", &image]).success();
    assert!(pulled.stderr.contains("2 referrers"), "{}", pulled.stderr);
    let fallback = cache
        .path()
        .join(format!("manifests/{}/app/{}", source.host(), signed.tag()));
    assert_eq!(
        sha256(&std::fs::read(&fallback).unwrap()),
        sha256(&signed.index)
    );

    cache.run(&["clean"]).success();
    let blobs = cache.path().join("blobs/sha256");
    let document = br#"{"spdxVersion":"SPDX-2.3","name":"app"}"#;
    assert!(
        blobs.join(sha256(document)).exists(),
        "clean removed the SBOM"
    );
    assert!(
        blobs.join(sha256(b"{}")).exists(),
        "clean removed the empty config"
    );
    assert!(
        cached_manifest(&cache, &signed.sbom),
        "clean removed the SBOM's manifest"
    );

    let mirror = format!("{}/mirror/app:v1", target.host());
    let pushed = cache.run(&["push", &image, &mirror]).success();
    assert!(pushed.stderr.contains("2 referrers"), "{}", pushed.stderr);
    holds_every_referrer(&target, "mirror/app", &signed);
}

/// Whether the cache holds `manifest` as an entry of its own, its file in place.
fn cached_manifest(cache: &TestCache, manifest: &[u8]) -> bool {
    let index = std::fs::read(cache.path().join("index.json")).unwrap();
    let index: Value = serde_json::from_slice(&index).unwrap();
    let digest = format!("sha256:{}", sha256(manifest));
    (index.as_object().unwrap().values()).any(|record| {
        let path = cache.path().join(record["manifest_path"].as_str().unwrap());
        record["manifest_digest"] == digest.as_str() && path.exists()
    })
}

#[test]
fn referrers_cross_a_cache_boundary_through_an_archive() {
    let (source, target) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let signed = signed_image(&source, "app");
    let image = format!("{}/app:v1", source.host());
    let (near, far) = (TestCache::new(), TestCache::new());
    near.run(&["pull", &image]).success();
    let dir = TempDir::new("referrers-archive");
    let archive = dir.join("app.tar");
    let saved = near.run(&["save", &image, "-o", archive.to_str().unwrap()]);
    let saved = saved.success();
    assert!(saved.stderr.contains("2 referrers"), "{}", saved.stderr);

    // The loaders' listings name the image alone, as before.
    let listing = |entry: &str| -> Value {
        serde_json::from_str(&support::tool(
            "tar",
            &["-xOf", archive.to_str().unwrap(), entry],
        ))
        .unwrap()
    };
    assert_eq!(listing("manifest.json").as_array().unwrap().len(), 1);
    assert_eq!(
        listing("index.json")["manifests"].as_array().unwrap().len(),
        1
    );
    let referrers = listing("docker-image-pusher-referrers.json");
    assert_eq!(
        referrers["indexes"][&signed.image]["digest"],
        format!("sha256:{}", sha256(&signed.index))
    );

    let extracted = far.run(&["extract", archive.to_str().unwrap()]).success();
    assert!(
        extracted.stderr.contains("2 referrers"),
        "{}",
        extracted.stderr
    );
    let mirror = format!("{}/mirror/app:v1", target.host());
    far.run(&["push", &image, &mirror]).success();
    holds_every_referrer(&target, "mirror/app", &signed);

    // And straight from the archive to a registry.
    let direct = format!("{}/direct/app:v1", target.host());
    let pushed = support::run(&["push", archive.to_str().unwrap(), &direct]).success();
    assert!(pushed.stderr.contains("2 referrers"), "{}", pushed.stderr);
    holds_every_referrer(&target, "direct/app", &signed);
}

#[test]
fn a_bundle_carries_referrers_that_its_push_sh_pushes() {
    let (source, target) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let signed = signed_image(&source, "app");
    let image = format!("{}/app:v1", source.host());
    let cache = TestCache::new();
    cache.run(&["pull", &image]).success();
    let dir = TempDir::new("referrers-bundle");
    let bundle = dir.join("carried");
    cache
        .run(&["bundle", &image, "-o", bundle.to_str().unwrap()])
        .success();
    let elsewhere = TempDir::new("referrers-elsewhere");
    let pushed = std::process::Command::new(bundle.join("push.sh"))
        .arg(format!("{}/edge", target.host()))
        .env("DOCKER_PUSHER_CACHE_DIR", elsewhere.join("cache"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&pushed.stderr);
    assert!(pushed.status.success(), "{said}");
    holds_every_referrer(&target, "edge/app", &signed);
}

#[test]
fn list_counts_referrers_and_clean_of_the_image_takes_them() {
    let registry = TestRegistry::start(Setup::Plain);
    let signed = signed_image(&registry, "app");
    let image = format!("{}/app:v1", registry.host());
    let cache = TestCache::new();
    cache.run(&["pull", &image]).success();
    let listed = cache.list();
    assert_eq!(listed.len(), 1, "only the image is listed: {listed:?}");
    assert_eq!(listed[0]["name"], image.as_str());
    assert_eq!(listed[0]["referrers"], 2, "the SBOM and the signature");
    let table = cache.run(&["list"]).success().stdout;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    let column = header.iter().position(|h| *h == "REFERRERS").unwrap();
    assert_eq!(row[column], "2", "{table}");

    // A pull without them records none.
    let bare = TestCache::new();
    bare.run(&["pull", &image, "--no-referrers"]).success();
    assert_eq!(bare.list()[0]["referrers"], 0);
    let typed = TestCache::new();
    typed
        .run(&["pull", &image, "--referrers-type", SPDX])
        .success();
    assert_eq!(typed.list()[0]["referrers"], 1, "the SBOM alone");

    cache.run(&["clean", &image]).success();
    assert!(cache.list().is_empty());
    let index = std::fs::read_to_string(cache.path().join("index.json")).unwrap();
    assert!(!index.contains(&signed.tag()), "{index}");
    let blobs = cache.path().join("blobs/sha256");
    assert!(
        !blobs.join(sha256(b"{}")).exists(),
        "the SBOM's config stayed"
    );
}

#[test]
fn a_delta_bundle_after_a_new_sbom_brings_only_the_new_artifact() {
    let (source, target) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let signed = signed_image(&source, "app");
    let image = format!("{}/app:v1", source.host());
    let cache = TestCache::new();
    cache.run(&["pull", &image]).success();
    let dir = TempDir::new("referrers-delta");
    let (first, second) = (dir.join("first"), dir.join("second"));
    cache
        .run(&["bundle", &image, "-o", first.to_str().unwrap()])
        .success();

    // Signed again: a second SBOM of the unchanged image.
    let document: &[u8] = br#"{"spdxVersion":"SPDX-2.3","name":"app","rescanned":true}"#;
    let newer = put_artifact(&source, "app", &signed.subject, (SPDX, document));
    let listed = [(&signed.sbom[..], SPDX), (&newer[..], SPDX)];
    let index = put_fallback(&source, "app", &signed.image, &listed);
    cache.run(&["pull", &image]).success();
    cache
        .run(&[
            "bundle",
            &image,
            "--since",
            first.to_str().unwrap(),
            "-o",
            second.to_str().unwrap(),
        ])
        .success();

    let record: Value =
        serde_json::from_slice(&std::fs::read(second.join("bundle.json")).unwrap()).unwrap();
    let listed: Vec<&str> = (record["referrers"].as_array().unwrap().iter())
        .map(|referrer| referrer["manifest"]["digest"].as_str().unwrap())
        .collect();
    for manifest in [&signed.sbom, &newer, &signed.signature] {
        let digest = format!("sha256:{}", sha256(manifest));
        assert!(
            listed.contains(&digest.as_str()),
            "{listed:?} lacks {digest}"
        );
    }
    let relied: Vec<&str> = (record["relies_on"].as_array().unwrap().iter())
        .map(|blob| blob["digest"].as_str().unwrap())
        .collect();
    let old_layer = format!(
        "sha256:{}",
        sha256(br#"{"spdxVersion":"SPDX-2.3","name":"app"}"#)
    );
    assert!(relied.contains(&old_layer.as_str()), "{relied:?}");
    let entries = support::tool("tar", &["-tf", second.join("images.tar").to_str().unwrap()]);
    assert!(
        entries.contains(&sha256(document)),
        "the new SBOM is carried"
    );
    assert!(
        !entries.contains(&old_layer[7..]),
        "the old SBOM's layer is carried again"
    );

    let elsewhere = TempDir::new("referrers-delta-elsewhere");
    for bundle in [&first, &second] {
        let pushed = std::process::Command::new(bundle.join("push.sh"))
            .arg(format!("{}/edge", target.host()))
            .env("DOCKER_PUSHER_CACHE_DIR", elsewhere.join("cache"))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&pushed.stderr);
        assert!(pushed.status.success(), "{said}");
    }
    let at = |reference: &str| format!("{}/edge/app{reference}", target.host());
    let there = registry_manifest(&at(&format!("@sha256:{}", sha256(&newer))));
    assert_eq!(sha256(there.as_bytes()), sha256(&newer));
    let fallback: Value =
        serde_json::from_str(&registry_manifest(&at(&format!(":{}", signed.tag())))).unwrap();
    let wanted: Value = serde_json::from_slice(&index).unwrap();
    let digests = |index: &Value| -> Vec<String> {
        let mut digests: Vec<String> = (index["manifests"].as_array().unwrap().iter())
            .map(|entry| entry["digest"].as_str().unwrap().to_string())
            .collect();
        digests.sort();
        digests
    };
    assert_eq!(digests(&fallback), digests(&wanted));
}

#[test]
fn an_attestation_of_one_platform_crosses_the_cache_with_its_index() {
    let (source, target) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let dir = TempDir::new("referrers-multi");
    let (layout, children) = multi_platform_layout(dir.path(), &["amd64", "arm64"]);
    let image = format!("{}/multi:v1", source.host());
    skopeo_push(&format!("oci:{}:multi", layout.display()), &image, true);
    let arm64 = registry_manifest(&format!("{}/multi@{}", source.host(), children[1]));
    let subject = json!({"mediaType": OCI_MANIFEST, "digest": children[1], "size": arm64.len()});
    let in_toto = "application/vnd.in-toto+json";
    let statement: &[u8] = br#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1"}"#;
    let attestation = put_artifact(&source, "multi", &subject, (in_toto, statement));
    let index = put_fallback(&source, "multi", &children[1], &[(&attestation, in_toto)]);

    let (near, far) = (TestCache::new(), TestCache::new());
    near.run(&["pull", "--all-platforms", &image]).success();
    let listed = near.list();
    let child = (listed.iter())
        .find(|entry| entry["manifest_digest"] == children[1].as_str())
        .expect("the arm64 child is listed");
    assert_eq!(child["referrers"], 1);
    let archive = dir.join("multi.tar");
    near.run(&["save", &image, "-o", archive.to_str().unwrap()])
        .success();
    far.run(&["extract", "--all-platforms", archive.to_str().unwrap()])
        .success();
    let mirror = format!("{}/mirror/multi:v1", target.host());
    far.run(&["push", "--all-platforms", &image, &mirror])
        .success();
    let at = |reference: &str| format!("{}/mirror/multi{reference}", target.host());
    let there = registry_manifest(&at(&format!("@sha256:{}", sha256(&attestation))));
    assert_eq!(sha256(there.as_bytes()), sha256(&attestation));
    let fallback = registry_manifest(&at(&format!(":{}", children[1].replacen(':', "-", 1))));
    assert_eq!(sha256(fallback.as_bytes()), sha256(&index));
}
