//! `clean`: removing named images keeps blobs that other images share, `--all` empties the
//! cache, `--dry-run` changes nothing, and leftovers of killed runs go.

mod support;

use std::fs;

use support::tarball::{legacy_items, write_tar};
use support::{TempDir, TestCache, sha256};

/// A cache with two images sharing their first layer.
fn two_images(dir: &TempDir) -> TestCache {
    let cache = TestCache::new();
    for (file, layers, tag) in [
        (
            "a.tar",
            [&b"shared layer"[..], b"only in a"],
            r#"["example.com/a:v1"]"#,
        ),
        (
            "b.tar",
            [&b"shared layer"[..], b"only in b"],
            r#"["example.com/b:v1"]"#,
        ),
    ] {
        let path = dir.join(file);
        write_tar(&path, &legacy_items(&layers, tag));
        cache.run(&["extract", path.to_str().unwrap()]).success();
    }
    cache
}

fn blob_exists(cache: &TestCache, content: &[u8]) -> bool {
    cache
        .path()
        .join("blobs/sha256")
        .join(sha256(content))
        .exists()
}

#[test]
fn removing_one_image_keeps_what_the_other_uses() {
    let dir = TempDir::new("clean");
    let cache = two_images(&dir);
    let run = cache.run(&["clean", "c:v1"]).exits(6);
    assert!(run.stderr.contains("no image \"c:v1\""), "{}", run.stderr);

    let run = cache.run(&["clean", "a:v1"]).success(); // an unambiguous short name
    assert!(
        run.stderr.contains("removed example.com/a:v1"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("2 blobs"),
        "a's config and own layer: {}",
        run.stderr
    );
    let names: Vec<String> = cache
        .list()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["example.com/b:v1"]);
    assert!(blob_exists(&cache, b"shared layer"));
    assert!(blob_exists(&cache, b"only in b"));
    assert!(!blob_exists(&cache, b"only in a"));
    assert!(
        !cache.path().join("manifests/example.com/a").exists(),
        "empty manifest folders go too"
    );
}

#[test]
fn a_dry_run_changes_nothing() {
    let dir = TempDir::new("clean");
    let cache = two_images(&dir);
    let before = cache.snapshot();
    let run = cache.run(&["clean", "--all", "--dry-run"]).success();
    assert!(
        run.stderr.contains("would remove example.com/a:v1"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("would free"), "{}", run.stderr);
    assert_eq!(cache.snapshot(), before);
}

#[test]
fn all_empties_the_cache() {
    let dir = TempDir::new("clean");
    let cache = two_images(&dir);
    cache.run(&["clean", "--all"]).success();
    assert!(cache.list().is_empty());
    assert_eq!(
        fs::read_dir(cache.path().join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    let both = cache.run(&["clean", "--all", "x"]).exits(2);
    assert!(both.stderr.contains("not both"), "{}", both.stderr);
}

#[test]
fn images_can_be_named_by_id_prefix() {
    let dir = TempDir::new("clean");
    let cache = two_images(&dir);
    let listed = cache.list();
    let id = listed[0]["config_digest"].as_str().unwrap();
    cache
        .run(&["clean", &id["sha256:".len()..][..12]])
        .success();
    assert_eq!(cache.list().len(), 1);
}

/// The names `list` shows, in order.
fn names(cache: &TestCache) -> Vec<String> {
    (cache.list().iter())
        .map(|image| image["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_name_removes_only_itself_and_an_id_of_several_names_is_said_with_all_names() {
    let dir = TempDir::new("clean");
    let archive = dir.join("three-names.tar");
    let tags = r#"["example.com/a:v1", "example.com/a:v2", "example.com/b:v1"]"#;
    write_tar(&archive, &legacy_items(&[b"one layer, three names"], tags));
    let cache = TestCache::new();
    cache.run(&["extract", archive.to_str().unwrap()]).success();
    let id = cache.list()[0]["config_digest"]
        .as_str()
        .unwrap()
        .to_string();
    let prefix = &id["sha256:".len()..][..12];

    let before = cache.snapshot();
    let refused = cache.run(&["clean", prefix]).exits(2);
    for name in ["example.com/a:v1", "example.com/a:v2", "example.com/b:v1"] {
        assert!(refused.stderr.contains(name), "{}", refused.stderr);
    }
    assert!(refused.stderr.contains("--all-names"), "{}", refused.stderr);
    assert_eq!(cache.snapshot(), before, "a refused clean removes nothing");

    let run = cache.run(&["clean", "example.com/a:v2"]).success();
    assert!(
        run.stderr.contains("removed example.com/a:v2") && run.stderr.contains("0 blobs"),
        "{}",
        run.stderr
    );
    assert_eq!(names(&cache), ["example.com/a:v1", "example.com/b:v1"]);
    assert!(blob_exists(&cache, b"one layer, three names"));

    let run = cache.run(&["clean", prefix, "--all-names"]).success();
    for name in ["example.com/a:v1", "example.com/b:v1"] {
        assert!(
            run.stderr.contains(&format!("removed {name}")),
            "{}",
            run.stderr
        );
    }
    assert!(cache.list().is_empty());
    assert!(
        !blob_exists(&cache, b"one layer, three names"),
        "the image goes with its last name"
    );
}

#[test]
fn leftovers_of_killed_runs_are_removed() {
    let dir = TempDir::new("clean");
    let cache = two_images(&dir);
    let stale = cache.path().join("tmp/run-99999-0");
    fs::create_dir_all(&stale).unwrap();
    fs::write(stale.join(".partial-99999-0"), vec![0u8; 4096]).unwrap();
    let stray = cache.path().join("blobs/sha256").join(sha256(b"nobody's"));
    fs::write(&stray, b"nobody's").unwrap();

    let run = cache.run(&["clean"]).success();
    assert!(run.stderr.contains("1 blob,"), "{}", run.stderr);
    assert!(run.stderr.contains("1 temporary file"), "{}", run.stderr);
    assert!(!stale.exists() && !stray.exists());
    assert_eq!(
        cache.list().len(),
        2,
        "clean with no image removes no image"
    );
}

#[test]
fn the_next_extract_sweeps_leftovers_when_alone() {
    let dir = TempDir::new("clean");
    let cache = two_images(&dir);
    let stale = cache.path().join("tmp/run-99999-0");
    fs::create_dir_all(&stale).unwrap();
    fs::write(stale.join(".partial-99999-0"), b"half a layer").unwrap();
    let archive = dir.join("a.tar");
    cache.run(&["extract", archive.to_str().unwrap()]).success();
    assert!(!stale.exists());
}

/// A directory outside the cache holding a file named like a staged blob and another file:
/// what a link planted in a shared cache would point the sweeps at.
fn outside_files(dir: &TempDir) -> Vec<std::path::PathBuf> {
    let outside = dir.join("outside");
    fs::create_dir_all(&outside).unwrap();
    let files = vec![outside.join(sha256(b"precious")), outside.join("notes.txt")];
    fs::write(&files[0], b"precious").unwrap();
    fs::write(&files[1], b"keep me").unwrap();
    files
}

#[test]
fn links_inside_the_cache_are_removed_as_links_never_followed() {
    let dir = TempDir::new("links");
    let cache = two_images(&dir);
    let files = outside_files(&dir);
    let outside = files[0].parent().unwrap();
    for link in ["tmp/evil", "blobs/sha256/evil"] {
        std::os::unix::fs::symlink(outside, cache.path().join(link)).unwrap();
    }
    let archive = dir.join("c.tar");
    write_tar(
        &archive,
        &legacy_items(&[b"only in c"], r#"["example.com/c:v1"]"#),
    );
    cache.run(&["extract", archive.to_str().unwrap()]).success();
    cache.run(&["clean", "--all"]).success();
    for file in &files {
        assert!(file.exists(), "{} was deleted", file.display());
    }
    for link in ["tmp/evil", "blobs/sha256/evil"] {
        assert!(
            fs::symlink_metadata(cache.path().join(link)).is_err(),
            "{link} is still there"
        );
    }
}

#[test]
fn a_link_in_place_of_tmp_is_refused() {
    let dir = TempDir::new("tmp-link");
    let cache = two_images(&dir);
    let files = outside_files(&dir);
    let tmp = cache.path().join("tmp");
    fs::remove_dir_all(&tmp).unwrap();
    std::os::unix::fs::symlink(files[0].parent().unwrap(), &tmp).unwrap();
    let run = cache.run(&["clean", "--all"]).exits(3);
    assert!(run.stderr.contains("symbolic link"), "{}", run.stderr);
    for file in &files {
        assert!(file.exists(), "{} was deleted", file.display());
    }
    fs::remove_file(&tmp).unwrap();
}

#[test]
fn verify_removes_blobs_that_no_longer_match_and_the_next_extract_restores_them() {
    let dir = TempDir::new("verify");
    let cache = two_images(&dir);
    cache.run(&["clean", "--verify"]).success();
    // A disk error that keeps the size: the layer only a has, one byte changed.
    let damaged = cache.path().join("blobs/sha256").join(sha256(b"only in a"));
    let mut bytes = fs::read(&damaged).unwrap();
    bytes[0] ^= 1;
    fs::write(&damaged, &bytes).unwrap();

    let run = cache.run(&["clean", "--verify", "--dry-run"]).exits(3);
    assert!(damaged.exists(), "a dry run removes nothing");
    assert!(
        run.stderr.contains("does not match its digest"),
        "{}",
        run.stderr
    );
    let run = cache.run(&["clean", "--verify"]).exits(3);
    let name = damaged.file_name().unwrap().to_str().unwrap();
    assert!(run.stderr.contains(name), "{}", run.stderr);
    // Its bytes are counted in what was freed, so is the blob.
    assert!(run.stderr.contains(": 0 images, 1 blob,"), "{}", run.stderr);
    assert!(!damaged.exists());
    assert_eq!(cache.list().len(), 2, "the images stay listed");

    cache
        .run(&["extract", dir.join("a.tar").to_str().unwrap()])
        .success();
    assert!(damaged.exists(), "the next extract fetched the blob again");
    cache.run(&["clean", "--verify"]).success();
}

#[test]
fn clean_says_it_waits_for_a_command_writing_to_the_cache() {
    let registry = support::registry::TestRegistry::start(support::registry::Setup::Plain);
    let dir = TempDir::new("clean-waits");
    let archive = support::access::archive(&dir);
    let image = format!("{}/waits/app:v1", registry.host());
    TestCache::new()
        .run(&["push", archive.to_str().unwrap(), &image])
        .success();
    // Blobs at 300 B/s: the pull holds the cache for about three seconds.
    let slow = support::front::Front::start(registry.port(), |request, _| {
        match request.target.contains("/blobs/") {
            true => support::front::Action::Throttle(300),
            false => support::front::Action::Forward,
        }
    });
    let cache = TestCache::new();
    let cache_dir = cache.path();
    let pulled = format!("{}/waits/app:v1", slow.host());
    let mut pull = support::command(&["--cache-dir", cache_dir.to_str().unwrap(), "pull", &pulled])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Its staging folder shows it holds the cache.
    let started = std::time::Instant::now();
    while !fs::read_dir(cache_dir.join("tmp")).is_ok_and(|mut entries| {
        entries.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("run")))
    }) {
        assert!(started.elapsed().as_secs() < 20, "the pull never began");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let clean = cache.run(&["clean", "--all"]).success();
    assert!(pull.wait().unwrap().success());
    let waited = format!(
        "waiting for {}: clean waits for the commands writing to this cache to end",
        cache_dir.join("gc.lock").display()
    );
    assert!(clean.stderr.contains(&waited), "{}", clean.stderr);
}
