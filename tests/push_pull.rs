//! `push` and `pull` against the real registry on loopback: plain HTTP, HTTPS with a test CA,
//! htpasswd Basic authentication and Bearer tokens. skopeo, which this project did not write,
//! pushes the images we pull and reads back the images we push.

mod support;

use std::fs;

use support::access::{archive, run_with, skopeo_flags, skopeo_sees};
use support::images::{self, listed_identity, two_layers};
use support::registry::{ROBOT_PASSWORD, ROBOT_USER, Setup, TestRegistry};
use support::tarball::{legacy_items, noise, write_tar};
use support::{TempDir, TestCache, tool};

/// Push an archive, read it back with skopeo, pull it back with the tool, push it again (no
/// upload at all), and force an upload.
fn round_trip(setup: Setup) {
    let registry = TestRegistry::start(setup);
    let dir = TempDir::new("round-trip");
    let archive = archive(&dir);
    let source = images::skopeo_identity(&format!("docker-archive:{}", archive.display()));
    let target = format!("{}/team/app:v1", registry.host());
    let cache = TestCache::new();

    let pushed = run_with(
        &cache,
        &["push", archive.to_str().unwrap(), &target, "-v"],
        &registry,
    )
    .success();
    let head = format!("://{}/v2/team/app/blobs/sha256:", registry.host());
    assert!(
        pushed.stderr.contains("HEAD http") && pushed.stderr.contains(&head),
        "-v shows each request: {}",
        pushed.stderr
    );
    assert_eq!(
        skopeo_sees(&registry, "team/app:v1"),
        source,
        "skopeo reads back what was pushed"
    );
    let back = dir.join("back.tar");
    let flags = skopeo_flags(&registry, "src-");
    let mut copy: Vec<&str> = vec!["--insecure-policy", "copy", "--quiet"];
    copy.extend(flags.iter().map(String::as_str));
    let from = format!("docker://{target}");
    let to = format!("docker-archive:{}:example.com/app:v1", back.display());
    copy.extend([from.as_str(), to.as_str()]);
    tool("skopeo", &copy);
    assert_eq!(
        images::skopeo_identity(&format!("docker-archive:{}", back.display())),
        source
    );

    let pulled = TestCache::new();
    run_with(&pulled, &["pull", &target], &registry).success();
    assert_eq!(
        listed_identity(&pulled.list()[0]),
        source,
        "pulled back with the same config and diff_ids"
    );

    let uploads = registry.requests("POST /v2/team/app/blobs/uploads/");
    assert_eq!(uploads, 3, "config and two layers");
    let again = run_with(
        &cache,
        &["push", archive.to_str().unwrap(), &target],
        &registry,
    )
    .success();
    assert!(
        again.stderr.contains("0 blobs uploaded"),
        "{}",
        again.stderr
    );
    assert_eq!(
        registry.requests("POST /v2/team/app/blobs/uploads/"),
        uploads,
        "a second push uploads nothing"
    );
    assert_eq!(
        registry.requests("PATCH /v2/"),
        2,
        "only the first push streamed its two layers"
    );
    run_with(
        &cache,
        &["push", archive.to_str().unwrap(), &target, "--force-upload"],
        &registry,
    )
    .success();
    assert_eq!(
        registry.requests("POST /v2/team/app/blobs/uploads/"),
        uploads + 3,
        "--force-upload uploads again"
    );

    let extracted = TestCache::new();
    extracted
        .run(&["extract", archive.to_str().unwrap()])
        .success();
    let from_cache = format!("{}/team/from-cache:v1", registry.host());
    run_with(
        &extracted,
        &["push", "example.com/app:v1", &from_cache],
        &registry,
    )
    .success();
    assert_eq!(
        skopeo_sees(&registry, "team/from-cache:v1"),
        source,
        "pushed from the cache"
    );
    let scheme = if registry.ca_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let one_shot = format!("{scheme}://{}/team/one-shot:v1", registry.host());
    run_with(
        &extracted,
        &["-r", &one_shot, "-f", archive.to_str().unwrap()],
        &registry,
    )
    .success();
    assert_eq!(
        skopeo_sees(&registry, "team/one-shot:v1"),
        source,
        "pushed with the one-shot form"
    );

    pull_what_skopeo_pushed(&registry);
}

#[test]
fn round_trip_over_plain_http() {
    round_trip(Setup::Plain);
}

#[test]
fn round_trip_over_https_with_a_private_ca() {
    round_trip(Setup::Tls);
}

#[test]
fn round_trip_with_basic_authentication() {
    round_trip(Setup::Basic {
        username: ROBOT_USER,
        password: ROBOT_PASSWORD,
    });
}

#[test]
fn round_trip_with_bearer_tokens() {
    round_trip(Setup::Token);
}

/// Pulls images skopeo pushed to `registry` in both manifest formats, and checks them.
fn pull_what_skopeo_pushed(registry: &TestRegistry) {
    let dir = TempDir::new("skopeo-pushed");
    let layout = images::umoci_layout(dir.path(), "src", &two_layers());
    for format in ["oci", "v2s2"] {
        let target = format!("{}/pushed/{format}:v1", registry.host());
        let mut copy = vec![
            "--insecure-policy".to_string(),
            "copy".into(),
            "--quiet".into(),
            "--format".into(),
            format.into(),
        ];
        copy.extend(skopeo_flags(registry, "dest-"));
        copy.extend([
            format!("oci:{}:src", layout.display()),
            format!("docker://{target}"),
        ]);
        tool(
            "skopeo",
            &copy.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let cache = TestCache::new();
        run_with(&cache, &["pull", &target], registry).success();
        let listed = cache.list();
        let expected_type = if format == "oci" {
            "application/vnd.oci.image.manifest.v1+json"
        } else {
            "application/vnd.docker.distribution.manifest.v2+json"
        };
        assert_eq!(listed[0]["media_type"], expected_type);
        assert_eq!(
            listed_identity(&listed[0]),
            skopeo_sees(registry, &format!("pushed/{format}:v1")),
            "{format}"
        );
        let again = run_with(&cache, &["pull", &target], registry).success();
        assert!(
            again.stderr.contains("already up to date: ")
                && again.stderr.contains(": nothing downloaded, "),
            "cached blobs are not fetched again, and it says so in words: {}",
            again.stderr
        );
    }
}

#[test]
fn compress_none_pushes_the_layers_as_they_are_under_an_oci_manifest() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("none");
    let archive = archive(&dir);
    let target = format!("{}/plain/app:v1", registry.host());
    support::push_uncompressed(&archive, &target);
    let raw: serde_json::Value = serde_json::from_str(&tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{target}"),
        ],
    ))
    .unwrap();
    assert_eq!(
        raw["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let source = images::skopeo_identity(&format!("docker-archive:{}", archive.display()));
    for (layer, diff_id) in raw["layers"].as_array().unwrap().iter().zip(&source.1) {
        assert_eq!(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar");
        assert_eq!(
            &layer["digest"], diff_id,
            "uncompressed: the digest is the diff_id"
        );
    }
    assert_eq!(skopeo_sees(&registry, "plain/app:v1"), source);
}

#[test]
fn the_seed_form_names_registry_repository_and_reference() {
    let registry = TestRegistry::start(Setup::Basic {
        username: ROBOT_USER,
        password: ROBOT_PASSWORD,
    });
    let dir = TempDir::new("seed");
    let archive = archive(&dir);
    let source = images::skopeo_identity(&format!("docker-archive:{}", archive.display()));
    let cache = TestCache::new();
    let registry_url = format!("https://{}", registry.host());
    let push = [
        "push",
        "--source",
        archive.to_str().unwrap(),
        "--registry",
        &registry_url,
        "--repository",
        "seed/form",
        "--reference",
        "v3",
    ];
    run_with(&cache, &push, &registry).success();
    assert_eq!(skopeo_sees(&registry, "seed/form:v3"), source);
    let pull = [
        "pull",
        "--registry",
        &registry_url,
        "--repository",
        "seed/form",
        "--reference",
        "v3",
    ];
    run_with(&cache, &pull, &registry).success();
    assert!(
        cache
            .list()
            .iter()
            .any(|image| image["name"] == format!("{}/seed/form:v3", registry.host()))
    );
}

#[test]
fn a_dry_run_sends_no_upload_and_no_manifest() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("dry");
    let archive = archive(&dir);
    let target = format!("{}/dry/app:v1", registry.host());
    let run = TestCache::new()
        .run(&["push", archive.to_str().unwrap(), &target, "--dry-run"])
        .success();
    assert!(run.stderr.contains("would push"), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("would copy sha256:").count(),
        3,
        "each blob is reported: {}",
        run.stderr
    );
    assert_eq!(registry.requests("POST /v2/"), 0);
    assert_eq!(registry.requests("PUT /v2/"), 0);
    let pulled = TestCache::new();
    pulled.run(&["pull", &target]).exits(6);
    let dry_pull = pulled
        .run(&["pull", &format!("{}/dry/app:v1", registry.host()), "-n"])
        .exits(6);
    assert!(
        dry_pull.stderr.contains("MANIFEST_UNKNOWN"),
        "{}",
        dry_pull.stderr
    );
    assert!(!fs::exists(pulled.path().join("index.json")).unwrap());

    // Pushed for real, then a dry run: what is there is reported as skipped. (A fresh cache
    // does not know the layers' compressed digests, so only the config can be seen.)
    TestCache::new()
        .run(&[
            "push",
            archive.to_str().unwrap(),
            &format!("{}/dry/other:v1", registry.host()),
        ])
        .success();
    let again = TestCache::new()
        .run(&[
            "push",
            archive.to_str().unwrap(),
            &format!("{}/dry/other:v1", registry.host()),
            "-n",
        ])
        .success();
    assert_eq!(
        again.stderr.matches("would skip sha256:").count(),
        1,
        "the config is there: {}",
        again.stderr
    );
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_never_pushed() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("tampered");
    let mut items = legacy_items(&[b"the real layer"], r#"["example.com/tampered:v1"]"#);
    items[0] = support::tarball::Item::File("0/layer.tar".into(), b"a tampered layer".to_vec());
    let archive = dir.join("tampered.tar");
    write_tar(&archive, &items);
    let expected = format!("sha256:{}", support::sha256(b"the real layer"));
    for compress in ["gzip", "none"] {
        let target = format!("{}/tampered/{compress}:v1", registry.host());
        let run = TestCache::new().run(&[
            "push",
            archive.to_str().unwrap(),
            &target,
            "--compress",
            compress,
        ]);
        assert_eq!(run.code, 3, "{compress}: {}", run.stderr);
        assert!(run.stderr.contains(&expected), "{compress}: {}", run.stderr);
        let manifests = format!("PUT /v2/tampered/{compress}/manifests/");
        assert_eq!(
            registry.requests(&manifests),
            0,
            "{compress}: no manifest was pushed"
        );
    }
}

#[test]
fn gzip_layers_with_incompressible_stretches_decompress_with_gnu_gzip() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("gzip-mixed");
    // Random stretches long enough to be stored, between text that is compressed.
    let text = |len: usize| -> Vec<u8> {
        b"GET /items 200\n"
            .iter()
            .copied()
            .cycle()
            .take(len)
            .collect()
    };
    let layer = [
        text(1 << 20),
        noise(4 << 20, 0x2545_f491_4f6c_dd1d),
        text(12 << 20),
        noise(1 << 20, 0x9e37_79b9_7f4a_7c15),
    ]
    .concat();
    let archive = dir.join("mixed.tar");
    write_tar(
        &archive,
        &legacy_items(&[&layer], r#"["example.com/mixed:v1"]"#),
    );
    let target = format!("{}/mixed/app:v1", registry.host());
    TestCache::new()
        .run(&["push", archive.to_str().unwrap(), &target])
        .success();

    let copied = dir.join("copied");
    let from = format!("docker://{target}");
    let to = format!("dir:{}", copied.display());
    tool(
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &from,
            &to,
        ],
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(copied.join("manifest.json")).unwrap()).unwrap();
    let blob = manifest["layers"][0]["digest"].as_str().unwrap();
    let compressed = copied.join(blob.trim_start_matches("sha256:"));
    assert!(
        fs::metadata(&compressed).unwrap().len() < layer.len() as u64 - (6 << 20),
        "the text after the random stretch was compressed again"
    );
    let output = std::process::Command::new("gzip")
        .args(["-dc", compressed.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        support::sha256(&output.stdout),
        support::sha256(&layer),
        "GNU gzip gives the layer back"
    );
}

/// The memo keeps each layer's gzip digest: a push of the same layers to another registry
/// sends each in one `PUT` carrying its digest (no `PATCH`). When the remembered form is
/// stale, the bytes go again, streamed, and the image is whole.
#[test]
fn a_remembered_gzip_digest_saves_the_patch_and_a_stale_one_costs_nothing_but_time() {
    let [first, second, third] = [(); 3].map(|_| TestRegistry::start(Setup::Plain));
    let dir = TempDir::new("likely");
    let archive = archive(&dir);
    let cache = TestCache::new();
    let push = |registry: &TestRegistry| {
        let target = format!("{}/team/app:v1", registry.host());
        cache
            .run(&["push", archive.to_str().unwrap(), &target])
            .success();
        images::registry_digest(&["--tls-verify=false"], &target)
    };
    let pushed = push(&first);
    assert_eq!(first.requests("PATCH /v2/"), 2, "each layer streamed once");

    assert_eq!(push(&second), pushed, "the same manifest, byte for byte");
    assert_eq!(
        second.requests("PATCH /v2/"),
        0,
        "no layer streamed in chunks"
    );
    assert_eq!(
        second.requests("PUT /v2/team/app/blobs/uploads/"),
        3,
        "config and two layers, one PUT each"
    );

    // The memo's forms made stale: each layer's PUT is refused, and it goes again streamed.
    let memo_path = cache.path().join("memo.json");
    let mut memo: serde_json::Value =
        serde_json::from_slice(&fs::read(&memo_path).unwrap()).unwrap();
    let forms = memo["compressed"].as_object_mut().unwrap();
    assert_eq!(forms.len(), 2, "{forms:?}");
    let remembered: Vec<String> = forms
        .values()
        .map(|form| form["digest"].as_str().unwrap().to_string())
        .collect();
    for (n, form) in forms.values_mut().enumerate() {
        form["digest"] = format!(
            "sha256:{}",
            support::sha256(format!("stale {n}").as_bytes())
        )
        .into();
    }
    fs::write(&memo_path, serde_json::to_vec(&memo).unwrap()).unwrap();
    assert_eq!(push(&third), pushed, "the same manifest again");
    assert_eq!(third.requests("PATCH /v2/"), 2, "both layers streamed");
    assert_eq!(
        third.requests("PUT /v2/team/app/blobs/uploads/"),
        5,
        "two PUTs refused, then one for the config and each layer"
    );
    let memo: serde_json::Value = serde_json::from_slice(&fs::read(&memo_path).unwrap()).unwrap();
    let mut now: Vec<String> = (memo["compressed"].as_object().unwrap().values())
        .map(|form| form["digest"].as_str().unwrap().to_string())
        .collect();
    now.sort();
    let mut remembered = remembered;
    remembered.sort();
    assert_eq!(now, remembered, "the memo knows the true forms again");
}

#[test]
fn two_pulls_of_one_image_at_once_say_what_each_did() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("two-pulls");
    let archive = archive(&dir);
    let target = format!("{}/both/app:v1", registry.host());
    TestCache::new()
        .run(&["push", archive.to_str().unwrap(), &target])
        .success();
    // Blobs at 2 kB/s: both pulls are downloading before either is done.
    let slow = support::front::Front::start(registry.port(), |request, _| {
        match request.target.contains("/blobs/") {
            true => support::front::Action::Throttle(2_000),
            false => support::front::Action::Forward,
        }
    });
    let image = format!("{}/both/app:v1", slow.host());
    let cache = TestCache::new();
    let pulls: Vec<std::process::Child> = (0..2)
        .map(|_| {
            support::command(&[
                "--cache-dir",
                cache.path().to_str().unwrap(),
                "pull",
                &image,
            ])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let said: Vec<String> = (pulls.into_iter())
        .map(|pull| {
            let output = pull.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr).to_string();
            assert!(output.status.success(), "{stderr}");
            stderr
        })
        .collect();
    for stderr in &said {
        assert!(
            !(stderr.contains("already up to date") && stderr.contains("downloaded (")),
            "up to date and downloading at once: {stderr}"
        );
    }
    assert_eq!(listed_identity(&cache.list()[0]).1.len(), 2, "{said:?}");
}

/// A layer the registry already holds in the gzip form the memo remembers is not compressed
/// again at another `--compress-level`: the push says which level that form was made at and
/// that the level given does not apply, whether the form is found in place or mounted from a
/// sibling repository. At the same level, or with `--force-upload`, nothing is said.
#[test]
fn a_remembered_gzip_form_of_another_level_is_kept_and_said() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("levels");
    let archive = archive(&dir);
    let cache = TestCache::new();
    let push = |target: &str, flags: &[&str]| {
        let target = format!("{}/{target}", registry.host());
        let given = [&["push", archive.to_str().unwrap(), &target][..], flags].concat();
        cache.run(&given).success().stderr
    };
    let said = |level: u32| {
        format!(
            "made at level 2 by an earlier push (the cache remembers it), so that form is kept and --compress-level {level} does not apply"
        )
    };
    let first = push("team/app:v1", &[]);
    assert!(!first.contains("does not apply"), "{first}");
    let again = push("team/app:v2", &[]);
    assert!(!again.contains("does not apply"), "the same level: {again}");

    let in_place = push("team/app:v3", &["--compress-level", "9"]);
    assert_eq!(
        in_place.matches(&said(9)).count(),
        2,
        "one line a layer: {in_place}"
    );
    let mounted = push("other/app:v1", &["--compress-level", "6"]);
    assert!(
        mounted.contains("mounted") || mounted.contains("present"),
        "{mounted}"
    );
    assert_eq!(mounted.matches(&said(6)).count(), 2, "{mounted}");

    let forced = push("team/app:v4", &["--compress-level", "9", "--force-upload"]);
    assert!(!forced.contains("does not apply"), "{forced}");
    let after = push("team/app:v5", &["--compress-level", "9"]);
    assert!(
        !after.contains("does not apply"),
        "the forms are now level 9's: {after}"
    );
}
