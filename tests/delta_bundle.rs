//! Air-gap updates that carry only what changed: two bundles in a row, the second `--since`
//! the first, carry three images into a real registry byte for byte (skopeo reads the
//! manifests); the second alone against an empty registry fails naming what is missing and
//! pushes nothing; `push.sh --check` only reports; a bundle split at 20M has no file over
//! 20 MiB and pushes correctly; `save --split` parts extract as the archive; `sha256sum -c`
//! passes on every folder.

mod support;

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::images::{images_with_a_shared_base, registry_manifest, skopeo_push};
use support::registry::{Setup, TestRegistry};
use support::{TempDir, TestCache};

/// Runs a bundle's push.sh with `args`, with a cache of its own.
fn push_sh(bundle: &Path, args: &[&str], cache: &Path) -> Output {
    Command::new(bundle.join("push.sh"))
        .args(args)
        .env("DOCKER_PUSHER_CACHE_DIR", cache)
        .output()
        .unwrap()
}

fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Checks the folder's sums with GNU sha256sum.
fn sums_hold(bundle: &Path) {
    let checked = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(bundle)
        .output()
        .unwrap();
    assert!(checked.status.success(), "{}", said(&checked));
}

fn record(bundle: &Path) -> Value {
    serde_json::from_slice(&fs::read(bundle.join("bundle.json")).unwrap()).unwrap()
}

fn digests(list: &Value) -> Vec<String> {
    (list.as_array().unwrap().iter())
        .map(|blob| blob["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_delta_carries_only_what_changed_and_refuses_a_registry_without_the_rest() {
    let source = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("delta");
    let src = source.host();
    let base = images_with_a_shared_base(
        dir.path(),
        &source,
        &[("team/app", "v1"), ("team/app", "v2"), ("team/tool", "v1")],
    );
    let cache = TestCache::new();
    for name in ["team/app:v1", "team/app:v2", "team/tool:v1"] {
        cache.run(&["pull", &format!("{src}/{name}")]).success();
    }
    let (first, second) = (dir.join("week-47"), dir.join("week-48"));
    cache
        .run(&[
            "bundle",
            &format!("{src}/team/app:v1"),
            "-o",
            first.to_str().unwrap(),
        ])
        .success();
    let made = cache
        .run(&[
            "bundle",
            &format!("{src}/team/app:v2"),
            &format!("{src}/team/tool:v1"),
            "-o",
            second.to_str().unwrap(),
            "--since",
            first.to_str().unwrap(),
        ])
        .success();
    assert!(
        made.stderr.contains("leaving out 1 layer"),
        "{}",
        made.stderr
    );
    sums_hold(&first);
    sums_hold(&second);

    // The second holds every manifest and config, and no base layer: it is smaller by it.
    let (old, new) = (record(&first), record(&second));
    assert_eq!(new["delta"], true);
    assert_eq!(digests(&new["relies_on"]), vec![base.clone()]);
    assert!(!digests(&new["holds"]).contains(&base));
    assert!(digests(&old["holds"]).contains(&base));
    assert_eq!(new["since"]["given"], first.to_str().unwrap());
    let size = |bundle: &Path| fs::metadata(bundle.join("images.tar")).unwrap().len();
    let base_size = new["relies_on"][0]["size"].as_u64().unwrap();
    assert!(
        size(&second) + base_size / 2 < size(&first) + 4096,
        "{} {}",
        size(&second),
        size(&first)
    );
    let readme = fs::read_to_string(second.join("README.txt")).unwrap();
    assert!(
        readme.contains("NOT an archive for docker load"),
        "{readme}"
    );

    // Alone, against a registry that never received the first: named, and nothing pushed.
    let empty = TestRegistry::start(Setup::Plain);
    let elsewhere = TempDir::new("delta-elsewhere");
    let to = format!("{}/edge", empty.host());
    for args in [&["--check", &to][..], &[&to]] {
        let refused = push_sh(&second, args, &elsewhere.join("cache"));
        let words = said(&refused);
        assert_eq!(refused.status.code(), Some(6), "{words}");
        for expected in [
            base.as_str(),
            "week-47",
            "push that bundle",
            "Nothing was pushed",
        ] {
            assert!(words.contains(expected), "{expected}: {words}");
        }
    }
    assert_eq!(empty.requests("PUT /v2/"), 0, "nothing was pushed");

    // In order, into one registry: every image byte for byte, the base uploaded once.
    let registry = TestRegistry::start(Setup::Plain);
    let to = format!("{}/edge", registry.host());
    let pushed = push_sh(&first, &[&to], &elsewhere.join("cache"));
    assert!(pushed.status.success(), "{}", said(&pushed));
    let checked = push_sh(&second, &["--check", &to], &elsewhere.join("cache"));
    assert!(checked.status.success(), "{}", said(&checked));
    assert!(said(&checked).contains("would"), "{}", said(&checked));
    let pushed = push_sh(&second, &[&to], &elsewhere.join("cache"));
    assert!(pushed.status.success(), "{}", said(&pushed));
    for name in ["team/app:v1", "team/app:v2", "team/tool:v1"] {
        assert_eq!(
            registry_manifest(&format!("{to}/{name}")),
            registry_manifest(&format!("{src}/{name}")),
            "{name}"
        );
    }
    let hex = base.trim_start_matches("sha256:");
    let uploads = (registry.log().lines())
        .filter(|line| line.contains("\"PUT /v2/") && line.contains(hex))
        .count();
    assert_eq!(uploads, 1, "team/tool mounts the base from team/app");
}

#[test]
fn a_split_bundle_has_no_file_over_its_size_and_pushes_as_a_whole_one() {
    let source = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("split");
    // One layer of 30 MiB of random bytes: gzip cannot make it smaller than 20 MiB.
    let mut bytes = Vec::with_capacity(30 << 20);
    (fs::File::open("/dev/urandom").unwrap().take(30 << 20))
        .read_to_end(&mut bytes)
        .unwrap();
    let layout = support::images::umoci_layout(dir.path(), "big", &[&[("srv/random.bin", &bytes)]]);
    let image = format!("{}/big/app:v1", source.host());
    skopeo_push(&format!("oci:{}:big", layout.display()), &image, false);
    let cache = TestCache::new();
    cache.run(&["pull", &image]).success();

    // The program goes in whole, so it must fit too: the test build, stripped (8 MB; the
    // static release build is under 4 MB).
    let program = dir.join("docker-image-pusher");
    fs::copy(support::bin(), &program).unwrap();
    support::tool("strip", &[program.to_str().unwrap()]);
    let bundle = dir.join("split-bundle");
    let binary = ["--binary", program.to_str().unwrap()];
    let split = ["-o", bundle.to_str().unwrap(), "--split", "20M"];
    cache
        .run(&[&["bundle", &image][..], &split, &binary].concat())
        .success();
    sums_hold(&bundle);
    let mut parts = 0;
    for entry in fs::read_dir(&bundle).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            entry.metadata().unwrap().len() <= 20 << 20,
            "{name} is over 20 MiB"
        );
        parts += usize::from(name.starts_with("images.tar."));
    }
    assert!(parts >= 2, "{parts} parts");
    assert!(!bundle.join("images.tar").exists());
    let registry = TestRegistry::start(Setup::Plain);
    let to = format!("{}/edge", registry.host());
    let elsewhere = TempDir::new("split-elsewhere");
    let pushed = push_sh(&bundle, &[&to], &elsewhere.join("cache"));
    assert!(pushed.status.success(), "{}", said(&pushed));
    assert_eq!(
        registry_manifest(&format!("{to}/big/app:v1")),
        registry_manifest(&image)
    );

    // save --split: the parts concatenate to the archive, and extract reads them as it.
    let saved = dir.join("saved.tar");
    cache
        .run(&[
            "save",
            &image,
            "-o",
            saved.to_str().unwrap(),
            "--split",
            "20M",
        ])
        .success();
    assert!(
        !saved.exists() && dir.join("saved.tar.000").exists() && dir.join("saved.tar.001").exists()
    );
    let other = TestCache::new();
    other.run(&["extract", saved.to_str().unwrap()]).success();
    assert_eq!(
        other.list()[0]["manifest_digest"],
        cache.list()[0]["manifest_digest"]
    );
}

/// An OCI archive of one image whose single layer is left out, with a delta entry that
/// declares it at `declared` bytes (its real size is that of `LAYER`).
fn hand_made_delta(path: &Path, declared: usize) -> String {
    use support::sha256;
    use support::tarball::{Item, config, write_tar};
    const LAYER: &[u8] = b"the layer an earlier bundle carried";
    let layer = format!("sha256:{}", sha256(LAYER));
    let config = config(std::slice::from_ref(&layer)).into_bytes();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": format!("sha256:{}", sha256(&config)), "size": config.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar",
                     "digest": layer, "size": LAYER.len() }],
    })
    .to_string()
    .into_bytes();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{ "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": format!("sha256:{}", sha256(&manifest)), "size": manifest.len(),
                        "annotations": { "io.containerd.image.name": "example.com/delta/app:v1" } }],
    });
    let delta = serde_json::json!({
        "since": { "created": "2026-01-01T00:00:00Z", "bundle_json": null, "given": "week-1" },
        "omitted": [{ "digest": layer, "size": declared, "held_by": ["example.com/delta/app:v0"] }],
    });
    let blob = |bytes: &[u8]| Item::File(format!("blobs/sha256/{}", sha256(bytes)), bytes.to_vec());
    write_tar(
        path,
        &[
            Item::File(
                "oci-layout".into(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
            Item::File("index.json".into(), index.to_string().into_bytes()),
            blob(&config),
            blob(&manifest),
            Item::File(
                "docker-image-pusher-delta.json".into(),
                delta.to_string().into_bytes(),
            ),
        ],
    );
    layer
}

#[test]
fn a_delta_entry_stands_in_for_nothing_it_does_not_match_and_lands_nothing() {
    let dir = TempDir::new("hostile-delta");
    let lying = dir.join("lying.tar");
    let layer = hand_made_delta(&lying, 36);
    let cache = TestCache::new();
    let refused = cache.run(&["extract", lying.to_str().unwrap()]).exits(3);
    assert!(
        refused.stderr.contains("is left out as 36 bytes"),
        "{}",
        refused.stderr
    );

    // Declared at its true size, the archive opens, but what it leaves out is nowhere: the
    // cache takes nothing, and a registry that lacks the layer gets nothing either.
    let honest = dir.join("honest.tar");
    hand_made_delta(&honest, 35);
    let run = cache.run(&["extract", honest.to_str().unwrap()]).exits(6);
    assert!(
        run.stderr.contains("left out of this delta archive"),
        "{}",
        run.stderr
    );
    assert!(cache.list().is_empty());
    let registry = TestRegistry::start(Setup::Plain);
    let target = format!("{}/delta/app:v1", registry.host());
    let run = cache
        .run(&["push", honest.to_str().unwrap(), &target])
        .exits(6);
    assert!(
        run.stderr.contains(&layer) && run.stderr.contains("week-1"),
        "{}",
        run.stderr
    );
    assert_eq!(
        registry.requests("PUT /v2/") + registry.requests("POST /v2/"),
        0
    );
}
