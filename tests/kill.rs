//! Killed with SIGKILL at five points while extracting a 300 MB archive (from a file and from
//! standard input), the cache stays consistent, and a re-run succeeds.

mod support;

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

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
    for (i, fraction) in [0.01, 0.2, 0.45, 0.7, 0.95].into_iter().enumerate() {
        let from_stdin = i % 2 == 1;
        let mut extract = command(&[
            "--cache-dir",
            cache.path().to_str().unwrap(),
            "-q",
            "extract",
        ]);
        if from_stdin {
            extract.arg("-").stdin(fs::File::open(&archive).unwrap());
        } else {
            extract.arg(&archive).stdin(Stdio::null());
        }
        let mut child = extract.spawn().unwrap();
        let threshold = (total as f64 * fraction) as u64;
        let deadline = Instant::now() + Duration::from_secs(120);
        let killed = loop {
            if child.try_wait().unwrap().is_some() {
                break false; // finished before reaching the point: still a valid run
            }
            if bytes_written(&cache.path()) >= threshold {
                child.kill().unwrap();
                break true;
            }
            assert!(Instant::now() < deadline, "extract made no progress");
            std::thread::sleep(Duration::from_millis(2));
        };
        let status = child.wait().unwrap();
        eprintln!(
            "point {i}: at {fraction} of {total} bytes, stdin {from_stdin}, killed {killed}, {status}"
        );
        cache.verify();
        // What a killed run committed is complete; what it did not is only temporary.
        for image in cache.list() {
            assert_eq!(image["name"], "example.com/big:v1");
        }
    }

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
