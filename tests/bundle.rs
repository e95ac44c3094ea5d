//! `bundle`: the folder carried across an air gap, and its push.sh run on the other side
//! against a real registry; GNU sha256sum checks the sums and skopeo what was pushed.

mod support;

use std::fs;
use std::process::Command;

use support::images::{self, skopeo_identity, skopeo_identity_with};
use support::registry::{Setup, TestRegistry};
use support::{TempDir, TestCache};

#[test]
fn a_bundle_carries_what_push_sh_pushes_elsewhere() {
    let dir = TempDir::new("bundle");
    let archive = images::docker_archive(dir.path(), "example.com/team/app:v1");
    let original = skopeo_identity(&format!("docker-archive:{}", archive.display()));
    let connected = TestCache::new();
    connected
        .run(&["extract", archive.to_str().unwrap()])
        .success();
    let bundle = dir.join("carried");
    let made = connected
        .run(&[
            "bundle",
            "example.com/team/app:v1",
            "-o",
            bundle.to_str().unwrap(),
        ])
        .success();
    assert!(
        made.stderr.contains("dynamically linked"),
        "{}",
        made.stderr
    );
    let mut names: Vec<String> = (fs::read_dir(&bundle).unwrap())
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let expected = [
        "README.txt",
        "SHA256SUMS",
        "bundle.json",
        "docker-image-pusher",
        "images.list",
        "images.tar",
        "push.sh",
    ];
    assert_eq!(names, expected);
    let checked = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(&bundle)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );
    let saved = format!(
        "docker-archive:{}:example.com/team/app:v1",
        bundle.join("images.tar").display()
    );
    assert_eq!(skopeo_identity(&saved), original);

    let registry = TestRegistry::start(Setup::Plain);
    let edge = format!("{}/edge", registry.host());
    let elsewhere = TempDir::new("elsewhere");
    let pushed = Command::new(bundle.join("push.sh"))
        .arg(&edge)
        .env("DOCKER_PUSHER_CACHE_DIR", elsewhere.join("cache"))
        .output()
        .unwrap();
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let image = format!("docker://{edge}/team/app:v1");
    assert_eq!(
        skopeo_identity_with(&["--tls-verify=false"], &image),
        original
    );

    fs::write(bundle.join("docker-image-pusher"), b"tampered").unwrap();
    let refused = Command::new(bundle.join("push.sh"))
        .arg(&edge)
        .output()
        .unwrap();
    assert!(!refused.status.success(), "a changed program is not run");
    let said = String::from_utf8_lossy(&refused.stdout);
    assert!(said.contains("docker-image-pusher: FAILED"), "{said}");
}

#[test]
fn bundle_makes_a_new_folder_or_nothing() {
    let cache = TestCache::new();
    let dir = TempDir::new("bundle-usage");
    fs::create_dir(dir.join("exists")).unwrap();
    let exists = cache
        .run(&[
            "bundle",
            "app:v1",
            "-o",
            dir.join("exists").to_str().unwrap(),
        ])
        .exits(2);
    assert!(exists.stderr.contains("exists"), "{}", exists.stderr);
    let target = dir.join("new");
    cache
        .run(&["bundle", "nothing:here", "-o", target.to_str().unwrap()])
        .exits(6);
    assert!(!target.exists() && !dir.join("new.partial").exists());
    cache
        .run(&["bundle", "-o", target.to_str().unwrap()])
        .exits(2);
}
