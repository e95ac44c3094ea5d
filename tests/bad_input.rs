//! Bad archives are refused with one clear line and exit code 3, the cache stays byte for byte
//! as it was, and nothing is written outside it.

mod support;

use std::fs;
use std::path::Path;
use std::process::Stdio;

use support::tarball::{Item, config, legacy_items, write_tar};
use support::{TempDir, TestCache, command, gzip_file, sha256};

/// A cache that already holds an image, so "unchanged" means something.
fn populated_cache(dir: &TempDir) -> TestCache {
    let cache = TestCache::new();
    let good = dir.join("good.tar");
    write_tar(
        &good,
        &legacy_items(&[b"first layer", b"second layer"], r#"["good:v1"]"#),
    );
    cache.run(&["extract", good.to_str().unwrap()]).success();
    cache
}

/// Extracts `archive` (as a file, and gzip-compressed, and from standard input) and checks
/// that each attempt fails with exit 3, one line mentioning `expected`, the cache unchanged,
/// and nothing written to the working directory.
fn refused(archive: &Path, expected: &str) {
    let dir = TempDir::new("refused");
    let cache = populated_cache(&dir);
    let before = cache.snapshot();
    let gzipped = dir.join("archive.gz");
    gzip_file(archive, &gzipped);
    let workdir = TempDir::new("workdir");
    for (how, input) in [
        ("file", archive),
        ("gzip file", &gzipped),
        ("stdin", archive),
    ] {
        let mut extract = command(&["--cache-dir", cache.path().to_str().unwrap(), "extract"]);
        extract.current_dir(workdir.path());
        if how == "stdin" {
            extract.arg("-").stdin(fs::File::open(input).unwrap());
        } else {
            extract.arg(input).stdin(Stdio::null());
        }
        let output = extract.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(3),
            "{how}: {}: {stderr}",
            archive.display()
        );
        // Progress lines may come first (stderr is not a terminal here); the error is one
        // line, the last.
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|line| line.starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "{how}: one error line expected: {stderr}");
        assert_eq!(
            stderr.lines().last(),
            Some(errors[0]),
            "{how}: the error comes last: {stderr}"
        );
        assert!(
            errors[0].contains(expected),
            "{how}: {stderr} does not mention {expected:?}"
        );
        assert_eq!(cache.snapshot(), before, "{how}: the cache changed");
        assert_eq!(
            fs::read_dir(workdir.path()).unwrap().count(),
            0,
            "{how}: wrote to the working directory"
        );
    }
}

fn tar_of(dir: &TempDir, items: &[Item]) -> std::path::PathBuf {
    let path = dir.join("bad.tar");
    write_tar(&path, items);
    path
}

#[test]
fn manifest_json_missing() {
    let dir = TempDir::new("bad");
    let mut items = legacy_items(&[b"layer"], r#"["x:v1"]"#);
    items.pop();
    refused(
        &tar_of(&dir, &items),
        "neither manifest.json nor an OCI layout",
    );
}

#[test]
fn manifest_json_null() {
    let dir = TempDir::new("bad");
    refused(
        &tar_of(
            &dir,
            &[Item::File("manifest.json".into(), b"null".to_vec())],
        ),
        "manifest.json: is null",
    );
}

#[test]
fn manifest_json_not_json() {
    let dir = TempDir::new("bad");
    refused(
        &tar_of(&dir, &[Item::File("manifest.json".into(), b"[{".to_vec())]),
        "manifest.json: not valid JSON",
    );
}

#[test]
fn not_a_tar_at_all() {
    let dir = TempDir::new("bad");
    let path = dir.join("random.bin");
    let noise: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(&path, noise).unwrap();
    refused(&path, "not a valid tar archive");
}

#[test]
fn an_empty_file() {
    let dir = TempDir::new("bad");
    let path = dir.join("empty.tar");
    fs::write(&path, b"").unwrap();
    refused(&path, "empty or not a tar archive");
}

#[test]
fn an_archive_cut_short_anywhere() {
    let dir = TempDir::new("bad");
    let whole = dir.join("whole.tar");
    let layer = vec![7u8; 20_000];
    write_tar(&whole, &legacy_items(&[&layer, b"small"], r#"["x:v1"]"#));
    let bytes = fs::read(&whole).unwrap();
    let offsets = entry_offsets(&whole);
    let layer_data = offsets["0/layer.tar"];
    let manifest_data = offsets["manifest.json"];
    for (what, cut) in [
        ("in the middle of a layer", layer_data + 10_000),
        ("in the middle of a header", layer_data + 20_480 + 100),
        ("in the middle of manifest.json", manifest_data + 20),
    ] {
        let path = dir.join("cut.tar");
        fs::write(&path, &bytes[..cut as usize]).unwrap();
        eprintln!("cutting {what}, at byte {cut}");
        refused(&path, "cut short");
    }
    // Cut exactly between entries, the archive looks whole but lacks what comes after.
    let path = dir.join("cut.tar");
    fs::write(&path, &bytes[..(manifest_data - 512) as usize]).unwrap();
    refused(&path, "neither manifest.json nor an OCI layout");
}

#[test]
fn a_cut_gzip_stream() {
    let dir = TempDir::new("bad");
    let whole = dir.join("whole.tar");
    write_tar(&whole, &legacy_items(&[&vec![1u8; 50_000]], r#"["x:v1"]"#));
    let gzipped = dir.join("whole.tar.gz");
    gzip_file(&whole, &gzipped);
    let bytes = fs::read(&gzipped).unwrap();
    let cut = dir.join("cut.tar.gz");
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    refused(&cut, "cut short");
}

#[test]
fn an_extended_header_larger_than_a_mebibyte() {
    // A pax header or GNU long name is read whole into memory by the tar reader: 2 MiB of
    // one, before manifest.json, is refused (and a 300 MB one never fills the memory).
    for kind in [b'x', b'g', b'L', b'K'] {
        let dir = TempDir::new("extended");
        let mut items = legacy_items(&[b"a layer"], r#"["big:v1"]"#);
        items.insert(items.len() - 1, Item::Extended(kind, 2 << 20));
        let archive = tar_of(&dir, &items);
        refused(
            &archive,
            "extended header (pax or GNU long name) of 2097152 bytes",
        );
    }
}

#[test]
fn extended_headers_within_the_bound_are_read() {
    let dir = TempDir::new("extended-small");
    let mut items = legacy_items(&[b"a layer"], r#"["small:v1"]"#);
    for kind in [b'x', b'g', b'L', b'K'] {
        items.insert(0, Item::Extended(kind, 1 << 20));
    }
    let archive = tar_of(&dir, &items);
    let cache = TestCache::new();
    cache.run(&["extract", archive.to_str().unwrap()]).success();
    cache.run_with_stdin(&["extract", "-"], &archive).success();
}

#[test]
fn a_layer_that_does_not_match_its_diff_id() {
    let dir = TempDir::new("bad");
    let mut items = legacy_items(&[b"the real layer"], r#"["x:v1"]"#);
    items[0] = Item::File("0/layer.tar".into(), b"a tampered layer".to_vec());
    refused(
        &tar_of(&dir, &items),
        &format!("sha256:{}", sha256(b"the real layer")),
    );
}

#[test]
fn manifest_json_names_a_missing_entry() {
    let dir = TempDir::new("bad");
    let mut items = legacy_items(&[b"layer"], r#"["x:v1"]"#);
    items.remove(0);
    refused(&tar_of(&dir, &items), "'0/layer.tar' is not in the archive");
}

#[test]
fn entries_that_climb_out_or_are_absolute() {
    for name in ["../x", "a/../../x", "/etc/x"] {
        let dir = TempDir::new("bad");
        let mut items = legacy_items(&[b"layer"], r#"["x:v1"]"#);
        items.insert(0, Item::RawName(name.into(), b"payload".to_vec()));
        refused(&tar_of(&dir, &items), name);
    }
}

#[test]
fn a_symlink_pointing_outside_the_archive() {
    for target in ["../../etc/passwd", "/etc/passwd"] {
        let dir = TempDir::new("bad");
        let mut items = legacy_items(&[b"layer"], r#"["x:v1"]"#);
        items[0] = Item::Symlink("0/layer.tar".into(), target.into());
        refused(&tar_of(&dir, &items), "points outside the archive");
    }
}

#[test]
fn a_config_that_is_not_json() {
    let dir = TempDir::new("bad");
    let mut items = legacy_items(&[b"layer"], r#"["x:v1"]"#);
    let config_at = items
        .iter()
        .position(|i| matches!(i, Item::File(name, _) if name == "config.json"))
        .unwrap();
    items[config_at] = Item::File("config.json".into(), b"{not json".to_vec());
    refused(&tar_of(&dir, &items), "not a valid image config");
}

#[test]
fn a_config_with_fewer_diff_ids_than_layers() {
    let dir = TempDir::new("bad");
    let mut items = legacy_items(&[b"one", b"two"], r#"["x:v1"]"#);
    let config_at = items
        .iter()
        .position(|i| matches!(i, Item::File(name, _) if name == "config.json"))
        .unwrap();
    items[config_at] = Item::File(
        "config.json".into(),
        config(&[format!("sha256:{}", sha256(b"one"))]).into_bytes(),
    );
    refused(
        &tar_of(&dir, &items),
        "lists 2 layers, but its config has 1 diff_ids",
    );
}

#[test]
fn an_invalid_repo_tag() {
    let dir = TempDir::new("bad");
    refused(
        &tar_of(&dir, &legacy_items(&[b"layer"], r#"["Not/Valid:x"]"#)),
        "must be lowercase",
    );
}

/// A file that is not there is not found (exit 6), as an image the cache lacks.
#[test]
fn a_missing_file_is_named() {
    let dir = TempDir::new("bad");
    let cache = populated_cache(&dir);
    let before = cache.snapshot();
    let missing = dir.join("nowhere.tar");
    let run = cache.run(&["extract", missing.to_str().unwrap()]).exits(6);
    assert!(
        run.stderr.contains("nowhere.tar: no such file"),
        "{}",
        run.stderr
    );
    assert_eq!(cache.snapshot(), before);
}

/// Where each file's data starts in a tar file.
fn entry_offsets(path: &Path) -> std::collections::HashMap<String, u64> {
    let mut archive = tar::Archive::new(fs::File::open(path).unwrap());
    (archive.entries().unwrap())
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.path().unwrap().to_string_lossy().into_owned(),
                entry.raw_file_position(),
            )
        })
        .collect()
}

#[test]
fn bad_input_against_a_cache_that_does_not_exist_creates_nothing() {
    let dir = TempDir::new("no-cache");
    let garbage = dir.join("garbage.tar");
    fs::write(&garbage, b"not a tar at all").unwrap();
    let cache = dir.join("cache");
    for input in [garbage.as_path(), dir.path()] {
        let run = support::run(&[
            "--cache-dir",
            cache.to_str().unwrap(),
            "extract",
            input.to_str().unwrap(),
        ]);
        assert_eq!(run.code, 3, "{}: {}", input.display(), run.stderr);
        assert!(
            !cache.exists(),
            "{}: the cache was created",
            input.display()
        );
    }
    let run = support::run(&[
        "--cache-dir",
        cache.to_str().unwrap(),
        "extract",
        dir.path().to_str().unwrap(),
    ]);
    assert!(
        run.stderr.contains("is a folder, but not an OCI layout"),
        "{}",
        run.stderr
    );
}

#[test]
fn local_mistakes_are_found_before_the_network() {
    let dir = TempDir::new("local-first");
    let archive = dir.join("app.tar");
    write_tar(&archive, &legacy_items(&[b"layer"], r#"["app:v1"]"#));
    let broken = dir.join("broken.tar");
    fs::write(&broken, b"not an archive").unwrap();
    let cache = TestCache::new();
    // Nothing listens there: a run that connected would exit 5.
    let target = "127.0.0.1:9/app:v1";
    let missing = dir.join("missing.tar");
    for (args, code, says) in [
        (
            vec!["push", missing.to_str().unwrap(), target],
            6,
            "missing.tar: no such file",
        ),
        (
            vec!["push", target, archive.to_str().unwrap()],
            2,
            "the archive comes first",
        ),
        (
            vec!["push", broken.to_str().unwrap(), target],
            3,
            "broken.tar",
        ),
        (
            vec!["push", "nosuchimage", target],
            6,
            "nor is \"nosuchimage\" a file",
        ),
    ] {
        let run = cache.run(&args).exits(code);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn https_to_a_plain_http_registry_says_so_at_once() {
    let registry = support::registry::TestRegistry::start(support::registry::Setup::Plain);
    let image = format!("https://{}/app:v1", registry.host());
    let run = TestCache::new().run(&["pull", &image]).exits(5);
    assert!(
        run.stderr.contains("answered in plain HTTP"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("http://{}", registry.host())),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("retrying"),
        "a TLS mistake is not retried: {}",
        run.stderr
    );
}
