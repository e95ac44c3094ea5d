//! How blobs move, against the real registry: large layers in chunks, a pull that resumes
//! what an earlier run left (and starts again when what it left is wrong), concurrent
//! transfers, the rate cap, and the bytes the summary tells; skopeo reads back what was
//! pushed.

mod support;

use std::fs;

use support::access::{archive, skopeo_sees};
use support::images::{self, listed_identity, registry_digest};
use support::registry::{Setup, TestRegistry};
use support::{TempDir, TestCache};

#[test]
fn large_layers_go_in_chunks() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("chunks");
    let archive = support::tarball::noisy_archive(dir.path(), 300_000);
    let source = images::skopeo_identity(&format!("docker-archive:{}", archive.display()));
    for (compress, repository) in [("gzip", "chunked/gzip"), ("none", "chunked/none")] {
        let before = registry.requests("PATCH /v2/");
        let target = format!("{}/{repository}:v1", registry.host());
        let args = [
            "push",
            archive.to_str().unwrap(),
            &target,
            "--compress",
            compress,
            "--large-layer-threshold",
            "64K",
            "--chunk-size",
            "32K",
        ];
        TestCache::new().run(&args).success();
        let patches = registry.requests("PATCH /v2/") - before;
        assert!(
            patches >= 10,
            "{compress}: 300 kB in 32 KiB chunks took {patches} PATCH requests"
        );
        assert_eq!(
            skopeo_sees(&registry, &format!("{repository}:v1")),
            source,
            "{compress}"
        );
    }
}

#[test]
fn a_pull_resumes_from_what_an_earlier_run_left() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("resume");
    let archive = support::tarball::noisy_archive(dir.path(), 400_000);
    let target = format!("{}/resume/app:v1", registry.host());
    support::push_uncompressed(&archive, &target);

    let cache = TestCache::new();
    cache.run(&["pull", &target]).success();
    let listed = cache.list();
    let layer = listed[0]["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let hex = layer.trim_start_matches("sha256:");
    let whole = fs::read(cache.path().join("blobs/sha256").join(hex)).unwrap();
    cache.run(&["clean", "--all"]).success();
    let partial = cache.path().join("tmp/partial");
    fs::create_dir_all(&partial).unwrap();
    fs::write(partial.join(hex), &whole[..whole.len() / 2]).unwrap();

    let resumed = cache.run(&["pull", &target, "--json"]).success();
    let result: serde_json::Value =
        serde_json::from_str(resumed.stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(
        result["bytes_resumed"],
        whole.len() / 2,
        "the summary tells what was resumed: {result}"
    );
    let ranged = registry
        .log()
        .lines()
        .filter(|line| line.contains(&layer) && line.contains("\" 206 "))
        .count();
    assert_eq!(
        ranged,
        1,
        "the second pull asked for the missing half only:\n{}",
        registry.log()
    );
    assert!(
        !partial.join(hex).exists(),
        "the partial file became the blob"
    );

    // Kept bytes that are not the blob's (zeros, as a power cut can leave a partial file's
    // tail): fetched again from the start, not blamed on the registry.
    cache.run(&["clean", "--all"]).success();
    fs::create_dir_all(&partial).unwrap();
    fs::write(partial.join(hex), vec![0; whole.len() / 2]).unwrap();
    let again = cache.run(&["pull", &target, "--json"]).success();
    let result: serde_json::Value =
        serde_json::from_str(again.stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(
        result["bytes_resumed"], 0,
        "nothing kept was used: {result}"
    );
    assert_eq!(
        fs::read(cache.path().join("blobs/sha256").join(hex)).unwrap(),
        whole
    );
    let whole_gets = (registry.log().lines())
        .filter(|line| line.contains(&layer) && line.contains("\"GET ") && line.contains("\" 200 "))
        .count();
    assert_eq!(
        whole_gets, 2,
        "the first pull's, and the one after the bad bytes"
    );
}

#[test]
fn concurrent_transfers_give_the_same_image() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("concurrent");
    let layers: Vec<Vec<u8>> = (1..=6u8).map(|n| vec![n; 20_000 * n as usize]).collect();
    let layer_refs: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
    let archive = dir.join("six.tar");
    support::tarball::write_tar(
        &archive,
        &support::tarball::legacy_items(&layer_refs, r#"["example.com/six:v1"]"#),
    );
    let source = images::skopeo_identity(&format!("docker-archive:{}", archive.display()));
    let target = format!("{}/concurrent/six:v1", registry.host());
    TestCache::new()
        .run(&[
            "push",
            archive.to_str().unwrap(),
            &target,
            "--max-concurrent",
            "4",
        ])
        .success();
    assert_eq!(skopeo_sees(&registry, "concurrent/six:v1"), source);

    let one = TestCache::new();
    one.run(&["pull", &target]).success();
    let four = TestCache::new();
    four.run(&[
        "pull",
        &target,
        "--max-concurrent",
        "4",
        "--limit-rate",
        "100M",
    ])
    .success();
    assert_eq!(listed_identity(&four.list()[0]), source);
    assert_eq!(
        four.list()[0]["manifest_digest"],
        one.list()[0]["manifest_digest"]
    );
    assert_eq!(
        four.content_snapshot(),
        one.content_snapshot(),
        "the same blobs, byte for byte"
    );

    for (n, spelling) in [
        ["--concurrency", "dynamic"],
        ["--concurrency-manager", "dynamic"],
        ["--enable-dynamic-concurrency", "-v"],
        // The older tool's design, as it writes its tuning flags.
        ["--concurrency-manager", "adaptive"],
        ["--speed-threshold", "1048576"],
        ["--strategy-switch-confidence", "0.9"],
        ["--confidence-threshold", "0.7"],
    ]
    .iter()
    .enumerate()
    {
        let dynamic = TestCache::new();
        let args = [
            &["pull", target.as_str(), "--max-concurrent", "4", "--json"][..],
            &spelling[..],
        ]
        .concat();
        let run = dynamic.run(&args).success();
        let result: serde_json::Value =
            serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
        assert!(
            result["adjustments"].is_array(),
            "{spelling:?}: {}",
            run.stdout
        );
        assert_eq!(
            dynamic.content_snapshot(),
            one.content_snapshot(),
            "{spelling:?}"
        );
        let again = format!("{}/concurrent/dynamic{n}:v1", registry.host());
        TestCache::new()
            .run(&[
                "push",
                archive.to_str().unwrap(),
                &again,
                "--max-concurrent",
                "3",
                spelling[0],
                spelling[1],
            ])
            .success();
        assert_eq!(
            skopeo_sees(&registry, &format!("concurrent/dynamic{n}:v1")),
            source,
            "{spelling:?}"
        );
    }
}

#[test]
fn a_rate_limit_caps_the_transfer() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("rate");
    let archive = dir.join("three.tar");
    support::tarball::write_tar(
        &archive,
        &support::tarball::legacy_items(&[&vec![7u8; 3 << 20]], r#"["example.com/three:v1"]"#),
    );
    let target = format!("{}/rate/three:v1", registry.host());
    support::push_uncompressed(&archive, &target);
    // 3 MiB at 1 MiB/s, with a tenth of a second of burst: the cap holds within 10 %.
    let started = std::time::Instant::now();
    TestCache::new()
        .run(&[
            "pull",
            &target,
            "--limit-rate",
            "1M",
            "--max-concurrent",
            "2",
        ])
        .success();
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(2700),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn the_summary_tells_bytes_read_from_bytes_sent() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("bytes-sent");
    let archive = archive(&dir);
    let target = format!("{}/sent/app:v1", registry.host());
    let pushed = TestCache::new()
        .run(&["push", archive.to_str().unwrap(), &target, "--json"])
        .success();
    let result: serde_json::Value =
        serde_json::from_str(pushed.stdout.lines().last().unwrap_or_default()).unwrap();
    let raw = images::registry_manifest(&target);
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let stored: u64 = std::iter::once(&manifest["config"])
        .chain(manifest["layers"].as_array().unwrap())
        .map(|blob| blob["size"].as_u64().unwrap())
        .sum();
    assert_eq!(
        result["bytes_sent"], stored,
        "what the registry holds: {result}"
    );
    assert!(
        result["bytes_copied"].as_u64().unwrap() > stored,
        "the layers were read uncompressed and sent gzipped: {result}"
    );
    assert_eq!(result["bytes_resumed"], 0);
}

#[test]
fn one_worker_or_four_push_the_same_bytes() {
    // (Segments compressed ahead on helper threads are checked byte for byte against the
    // sequential reader by gzip's unit tests; here they run only on hosts with six cores.)
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("ahead");
    let archive = dir.join("text.tar");
    let text: Vec<u8> = (0..6 << 20)
        .map(|i| b"line of a log file\n"[i % 19])
        .collect();
    support::tarball::write_tar(
        &archive,
        &support::tarball::legacy_items(&[&text], r#"["example.com/text:v1"]"#),
    );
    let digests: Vec<String> = ["1", "4"]
        .iter()
        .map(|workers| {
            let target = format!("{}/ahead/w{workers}:v1", registry.host());
            TestCache::new()
                .run(&[
                    "push",
                    archive.to_str().unwrap(),
                    &target,
                    "--max-concurrent",
                    workers,
                ])
                .success();
            registry_digest(&["--tls-verify=false"], &target)
        })
        .collect();
    assert_eq!(digests[0], digests[1], "the same bytes, however compressed");
}
