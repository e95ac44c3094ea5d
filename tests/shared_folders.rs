//! Another local user in the folders a run writes to: links planted where the cache's
//! temporary files, locks and `--digestfile`'s temporary file go, a cache folder others can
//! write, a memo someone else could have written. The same user plants here: a link shows the
//! same defect whoever made it.

mod support;

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::images;
use support::registry::{Setup, TestRegistry};
use support::{TempDir, TestCache};

/// A file outside the cache that no run may touch.
fn precious(dir: &TempDir) -> PathBuf {
    let outside = dir.join("outside");
    fs::create_dir_all(&outside).unwrap();
    let path = outside.join("precious");
    fs::write(&path, b"keep me").unwrap();
    path
}

/// Runs the binary with `args`, calling `plant` with its process id before it starts: the
/// names a run derives from its pid are known to whoever plants links ahead of it.
fn run_planted(args: &[&str], plant: impl FnOnce(u32)) -> Output {
    let mut child = Command::new("sh")
        .args(["-c", "read _ && exec \"$0\" \"$@\"", support::bin()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    plant(child.id());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn links_planted_for_the_memo_index_and_locks_are_never_followed() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("planted");
    let archive = images::docker_archive(dir.path(), "example.com/team/app:v1");
    let precious = precious(&dir);
    let cache = TestCache::new();
    cache.run(&["extract", archive.to_str().unwrap()]).success();
    let root = cache.path();

    // A link named gc.lock, dangling: the run must not create the file it points at.
    let made_there = dir.join("outside/made-by-the-run");
    fs::remove_file(root.join("gc.lock")).unwrap();
    symlink(&made_there, root.join("gc.lock")).unwrap();
    let refused = cache.run(&["extract", archive.to_str().unwrap()]).exits(3);
    assert!(
        refused.stderr.contains("symbolic link"),
        "{}",
        refused.stderr
    );
    assert!(!made_there.exists(), "a file was created through gc.lock");
    fs::remove_file(root.join("gc.lock")).unwrap();

    // Held shared, as a planted gc.lock would be, so no sweep of tmp/ removes the links below.
    let gc_lock = File::create(root.join("gc.lock")).unwrap();
    fs::create_dir_all(root.join("tmp")).unwrap();
    gc_lock.lock_shared().unwrap();
    let target = format!("{}/team/app:v1", registry.host());
    let args = [
        "--cache-dir",
        root.to_str().unwrap(),
        "push",
        archive.to_str().unwrap(),
        &target,
    ];
    let pushed = run_planted(&args, |pid| {
        for name in [".memo.json", ".index.json"] {
            symlink(&precious, root.join(format!("tmp/{name}.{pid}"))).unwrap();
        }
    });
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    assert_eq!(fs::read_to_string(&precious).unwrap(), "keep me");
    assert!(
        root.join("memo.json").exists(),
        "the push remembered its forms"
    );
    drop(gc_lock);

    // A link named index.lock: refused, and the file it names is left as it was.
    fs::remove_file(root.join("index.lock")).unwrap();
    symlink(&precious, root.join("index.lock")).unwrap();
    let refused = cache.run(&["clean", "example.com/team/app:v1"]).exits(3);
    assert!(
        refused.stderr.contains("symbolic link"),
        "{}",
        refused.stderr
    );
    assert_eq!(fs::read_to_string(&precious).unwrap(), "keep me");
}

#[test]
fn a_cache_folder_others_can_write_is_refused_before_anything_is_written() {
    let dir = TempDir::new("shared-cache");
    let archive = images::docker_archive(dir.path(), "example.com/team/app:v1");
    for mode in [0o777, 0o1777] {
        let shared = dir.join(&format!("shared-{mode:o}"));
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(mode)).unwrap();
        let cache_dir = shared.to_str().unwrap();
        for args in [
            &["extract", archive.to_str().unwrap()][..],
            &["push", archive.to_str().unwrap(), "127.0.0.1:9/team/app:v1"],
            &["list"],
            &["clean"],
        ] {
            let run = support::run(&[&["--cache-dir", cache_dir][..], args].concat()).exits(3);
            assert!(
                run.stderr.contains("writable by every user") && run.stderr.contains("chmod 700"),
                "{args:?}: {}",
                run.stderr
            );
        }
        assert_eq!(fs::read_dir(&shared).unwrap().count(), 0, "nothing written");
    }
}

#[test]
fn a_new_cache_is_private() {
    let dir = TempDir::new("private-cache");
    let archive = images::docker_archive(dir.path(), "example.com/team/app:v1");
    let cache = TestCache::new();
    cache.run(&["extract", archive.to_str().unwrap()]).success();
    let mode = |path: &Path| fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&cache.path()), 0o700);
    let mut seen = 0;
    let mut pending = vec![cache.path()];
    while let Some(next) = pending.pop() {
        for entry in fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(
                mode(&path) & 0o007,
                0,
                "{} is open to others",
                path.display()
            );
            seen += 1;
            if path.is_dir() {
                pending.push(path);
            }
        }
    }
    assert!(seen > 5, "the cache holds blobs, manifests, an index");
}

#[test]
fn a_memo_this_user_did_not_write_alone_mounts_nothing() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("planted-memo");
    let host = registry.host();
    // The attacker's own image, pushed where the victim pushes: its gzip forms are known.
    let theirs_dir = TempDir::new("theirs");
    let theirs = images::skopeo_archive(
        theirs_dir.path(),
        "theirs.tar",
        "docker-archive",
        "example.com/evil/img:v1",
        &[&[("etc/greeting", b"pwned\n")]],
    );
    let attacker = TestCache::new();
    let attacker_target = format!("{host}/evil/img:v1");
    attacker
        .run(&["push", theirs.to_str().unwrap(), &attacker_target])
        .success();
    let read_memo = |path: &Path| -> serde_json::Value {
        serde_json::from_slice(&fs::read(path.join("memo.json")).unwrap()).unwrap()
    };
    let evil_form = read_memo(&attacker.path())["compressed"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone();
    let evil = evil_form["digest"].as_str().unwrap().to_string();

    // The victim's layers, as a memo names them (their uncompressed digests).
    let archive = images::docker_archive(dir.path(), "example.com/team/app:v1");
    let scratch = TestCache::new();
    scratch
        .run(&[
            "push",
            archive.to_str().unwrap(),
            &format!("{host}/scratch/app:v1"),
        ])
        .success();
    let layers: Vec<String> = read_memo(&scratch.path())["compressed"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();

    // A group-shared cache where another member left a memo (group-writable) mapping every
    // victim layer to the attacker's blob, held by the attacker's repository.
    let cache = TestCache::new();
    fs::create_dir(cache.path()).unwrap();
    fs::set_permissions(cache.path(), fs::Permissions::from_mode(0o2770)).unwrap();
    let compressed: serde_json::Map<_, _> = (layers.iter())
        .map(|layer| (layer.clone(), evil_form.clone()))
        .collect();
    let planted = serde_json::json!({
        "compressed": compressed,
        "holders": { &evil: [format!("{host}/evil/img")] },
    });
    let memo = cache.path().join("memo.json");
    fs::write(&memo, planted.to_string()).unwrap();
    fs::set_permissions(&memo, fs::Permissions::from_mode(0o664)).unwrap();

    let target = format!("{host}/team/app:v1");
    cache
        .run(&["push", archive.to_str().unwrap(), &target])
        .success();
    let manifest: serde_json::Value =
        serde_json::from_str(&images::registry_manifest(&target)).unwrap();
    let pushed: Vec<&str> = (manifest["layers"].as_array().unwrap().iter())
        .map(|layer| layer["digest"].as_str().unwrap())
        .collect();
    assert!(
        !pushed.contains(&evil.as_str()),
        "the attacker's layer was mounted: {pushed:?}"
    );
    // umoci checks every layer against the config's diff IDs.
    let layout = dir.join("pulled");
    support::tool(
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &format!("docker://{target}"),
            &format!("oci:{}:v1", layout.display()),
        ],
    );
    let unpacked = dir.join("unpacked");
    support::tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:v1", layout.display()),
            unpacked.to_str().unwrap(),
        ],
    );
    assert_eq!(
        fs::read(unpacked.join("rootfs/etc/greeting")).unwrap(),
        b"hello\n"
    );
}

#[test]
fn the_digestfile_is_never_written_through_a_planted_link() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("planted-digestfile");
    let archive = images::docker_archive(dir.path(), "example.com/team/app:v1");
    let precious = precious(&dir);
    let cache = TestCache::new();
    let digests = dir.join("digests");
    let target = format!("{}/team/app:v1", registry.host());
    let cache_dir = cache.path();
    let args = [
        "--cache-dir",
        cache_dir.to_str().unwrap(),
        "push",
        archive.to_str().unwrap(),
        &target,
        "--digestfile",
        digests.to_str().unwrap(),
    ];
    let pushed = run_planted(&args, |pid| {
        symlink(&precious, dir.join(&format!(".digests.{pid}"))).unwrap();
    });
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    assert_eq!(fs::read_to_string(&precious).unwrap(), "keep me");
    let written = fs::read_to_string(&digests).unwrap();
    assert!(written.starts_with("sha256:"), "{written}");
}
