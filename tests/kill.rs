//! Killed with SIGKILL while extracting, pulling or pushing, the cache stays consistent and a
//! re-run succeeds: five points of a 300 MB extract (file and stdin), and ten fixed-seed random
//! points of each of extract, pull and push of a 30 MB image. Two pulls into one cache at once
//! both succeed.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::front::{Action, Front};
use support::images::{listed_identity, skopeo_identity, skopeo_identity_with};
use support::registry::{Setup, TestRegistry};
use support::tarball::write_big_legacy;
use support::{TempDir, TestCache, command, files_under};

const LAYERS: [u64; 3] = [150_000_000, 100_000_000, 50_000_000];

/// Bytes written so far under the cache's `tmp/` and `blobs/`.
fn bytes_written(cache: &Path) -> u64 {
    ["tmp", "blobs"]
        .iter()
        .map(|dir| cache.join(dir))
        .filter(|dir| dir.exists())
        .flat_map(|dir| files_under(&dir))
        .filter_map(|file| fs::metadata(file).ok())
        .map(|meta| meta.len())
        .sum()
}

#[test]
fn a_killed_extract_leaves_a_consistent_cache_and_a_rerun_succeeds() {
    let dir = TempDir::new("kill");
    let archive = dir.join("big.tar");
    let diff_ids = write_big_legacy(&archive, "example.com/big:v1", &LAYERS);
    let total: u64 = LAYERS.iter().sum();
    let cache = TestCache::new();

    // Alternate file and stdin (spooled) reads; kill once this fraction is written.
    let fractions = [0.01, 0.2, 0.45, 0.7, 0.95];
    let mut killed = 0;
    for (i, fraction) in fractions.into_iter().enumerate() {
        let from_stdin = i % 2 == 1;
        let mut extract = command(&[
            "--cache-dir",
            cache.path().to_str().unwrap(),
            "-q",
            "extract",
        ]);
        match from_stdin {
            true => extract.arg("-").stdin(fs::File::open(&archive).unwrap()),
            false => extract.arg(&archive).stdin(Stdio::null()),
        };
        let path = cache.path();
        let threshold = (total as f64 * fraction) as u64;
        killed += usize::from(kill_after(extract, &|| bytes_written(&path), threshold));
        cache.verify();
        // What a killed run committed is complete; what it did not is only temporary.
        for image in cache.list() {
            assert_eq!(image["name"], "example.com/big:v1");
        }
    }
    // The last point may be reached only as the run ends; the others are well inside it.
    assert!(
        killed >= fractions.len() - 1,
        "killed midway: {killed} of {}",
        fractions.len()
    );

    let run = cache.run(&["extract", archive.to_str().unwrap()]).success();
    assert!(run.stderr.contains("example.com/big:v1"), "{}", run.stderr);
    let listed = cache.list();
    assert_eq!(listed.len(), 1);
    let cached: Vec<&str> = listed[0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["diff_id"].as_str().unwrap())
        .collect();
    assert_eq!(cached, diff_ids);
    cache.run(&["clean"]).success();
    assert_eq!(
        fs::read_dir(cache.path().join("tmp")).map_or(0, |d| d.count()),
        0,
        "clean removes every leftover"
    );
}

const SMALL_LAYERS: [u64; 3] = [15_000_000, 10_000_000, 5_000_000];

/// The killed commands read at 20 MiB/s: 30 MB take 1.4 s, so the last kill point (two
/// thirds in) leaves half a second, a hundred polls, to land midway on a loaded machine.
const SLOW: [&str; 2] = ["--limit-rate", "20M"];

/// Ten kill points, as fractions of the work, from a fixed seed.
fn kill_points() -> Vec<f64> {
    let mut state = 42u64;
    (0..10)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            0.02 + (state >> 11) as f64 / (1u64 << 53) as f64 * 0.96
        })
        .collect()
}

/// Runs `spawn()` and kills it once `progress()` has grown by `bytes` since it started (or
/// lets it finish first). Returns whether it was killed.
fn kill_after(mut command: std::process::Command, progress: &dyn Fn() -> u64, bytes: u64) -> bool {
    let start = progress();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if progress() >= start + bytes {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn small_image(dir: &TempDir) -> PathBuf {
    let archive = dir.join("small.tar");
    write_big_legacy(&archive, "example.com/small:v1", &SMALL_LAYERS);
    archive
}

/// The parts of one kill scenario: the command to kill (given a fresh cache directory and the
/// point's number), how far it has got, and the re-run that must then succeed.
struct Scenario<'a> {
    run: &'a dyn Fn(&Path, usize) -> std::process::Command,
    progress: &'a dyn Fn(&Path) -> u64,
    rerun: &'a dyn Fn(&TestCache, usize, f64),
}

/// For each kill point: a fresh cache, the command killed at that fraction of the work, the
/// cache checked, the re-run, the cache checked again. Returns how many were killed midway.
fn kill_at_points(scenario: Scenario<'_>, total: u64) -> usize {
    let mut killed = 0;
    for (n, fraction) in kill_points().into_iter().enumerate() {
        let cache = TestCache::new();
        let path = cache.path();
        if kill_after(
            (scenario.run)(&path, n),
            &|| (scenario.progress)(&path),
            (total as f64 * fraction) as u64,
        ) {
            killed += 1;
        }
        cache.verify();
        (scenario.rerun)(&cache, n, fraction);
    }
    killed
}

#[test]
fn killed_extracts_pulls_and_pushes_leave_consistent_caches_and_reruns_succeed() {
    let dir = TempDir::new("kill-ten");
    let archive = small_image(&dir);
    let total: u64 = SMALL_LAYERS.iter().sum();
    let expected = skopeo_identity(&format!("docker-archive:{}", archive.display()));
    let cache_arg = |path: &Path| path.to_str().unwrap().to_string();

    let killed = kill_at_points(
        Scenario {
            run: &|cache, _| {
                let mut c = command(&[
                    "--cache-dir",
                    &cache_arg(cache),
                    "extract",
                    SLOW[0],
                    SLOW[1],
                ]);
                c.arg(&archive);
                c
            },
            progress: &|cache| bytes_written(cache),
            rerun: &|cache, _, _| {
                cache.run(&["extract", archive.to_str().unwrap()]).success();
                assert_eq!(listed_identity(&cache.list()[0]), expected);
            },
        },
        total,
    );
    assert_eq!(killed, 10, "extracts killed midway");

    let registry = TestRegistry::start(Setup::Plain);
    let front = Front::start(registry.port(), |_, _| Action::Forward);
    let target = |n: usize| format!("{}/kill/push{n}:v1", front.host());
    let killed = kill_at_points(
        Scenario {
            run: &|cache, n| {
                let mut c = command(&[
                    "--cache-dir",
                    &cache_arg(cache),
                    "push",
                    "--compress",
                    "none",
                    SLOW[0],
                    SLOW[1],
                ]);
                c.arg(&archive).arg(target(n));
                c
            },
            progress: &|_| front.bytes_up(),
            rerun: &|cache, n, _| {
                cache
                    .run(&[
                        "push",
                        "--compress",
                        "none",
                        archive.to_str().unwrap(),
                        &target(n),
                    ])
                    .success();
                let pushed = format!("docker://{}/kill/push{n}:v1", registry.host());
                assert_eq!(
                    skopeo_identity_with(&["--tls-verify=false"], &pushed),
                    expected
                );
            },
        },
        total,
    );
    assert_eq!(killed, 10, "pushes killed midway");

    let source = format!("{}/kill/push0:v1", registry.host());
    let killed = kill_at_points(
        Scenario {
            run: &|cache, _| {
                command(&[
                    "--cache-dir",
                    &cache_arg(cache),
                    "pull",
                    &source,
                    SLOW[0],
                    SLOW[1],
                ])
            },
            progress: &|cache| bytes_written(cache),
            rerun: &|cache, _, fraction| {
                let counting = Front::start(registry.port(), |_, _| Action::Forward);
                cache
                    .run(&["pull", &format!("{}/kill/push0:v1", counting.host())])
                    .success();
                if fraction > 0.5 {
                    let fetched = counting.bytes_down();
                    assert!(
                        fetched < total,
                        "killed at {fraction:.2}, the re-run fetched {fetched} of {total} bytes"
                    );
                }
                assert_eq!(listed_identity(&cache.list()[0]), expected);
            },
        },
        total,
    );
    assert_eq!(killed, 10, "pulls killed midway");
}

#[test]
fn two_pulls_into_one_cache_at_once_both_succeed() {
    let dir = TempDir::new("shared-pull");
    let archive = small_image(&dir);
    let registry = TestRegistry::start(Setup::Plain);
    for name in ["one", "two"] {
        let target = format!("{}/shared/{name}:v1", registry.host());
        support::push_uncompressed(&archive, &target);
    }
    let cache = TestCache::new();
    let targets = ["one", "one", "two"].map(|name| format!("{}/shared/{name}:v1", registry.host()));
    let children: Vec<_> = (targets.iter())
        .map(|target| {
            command(&[
                "--cache-dir",
                cache.path().to_str().unwrap(),
                "pull",
                target,
            ])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let names: Vec<String> = cache
        .list()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, [targets[0].clone(), targets[2].clone()]);
}
