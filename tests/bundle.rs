//! `bundle`: the folder carried across an air gap (a registry image not cached yet fetched
//! first, whole), and its push.sh run on the other side against a real registry; GNU
//! sha256sum checks the sums and skopeo what was pushed.

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
    let registry = TestRegistry::start(Setup::Plain);
    let missing = format!("{}/nothing:here", registry.host());
    for image in [missing.as_str(), "sha256:0123456789abcdef"] {
        let refused = (cache.run(&["bundle", image, "-o", target.to_str().unwrap()])).exits(6);
        assert!(refused.stderr.contains("nothing:here") || refused.stderr.contains("no image"));
        assert!(!target.exists() && !dir.join("new.partial").exists());
    }
    cache
        .run(&["bundle", "-o", target.to_str().unwrap()])
        .exits(2);
}

#[test]
fn a_registry_image_not_cached_is_fetched_whole_and_push_sh_keeps_it_whole() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("bundle-fetch");
    let (layout, digests) = images::multi_platform_layout(dir.path(), &["amd64", "arm64"]);
    let source = format!("{}/bundled/multi:v1", registry.host());
    images::skopeo_push(&format!("oci:{}:multi", layout.display()), &source, true);
    let raw = images::registry_manifest(&source);
    let cache = TestCache::new();
    let bundle = dir.join("carried");
    let made = (cache.run(&["bundle", &source, "-o", bundle.to_str().unwrap()])).success();
    assert!(
        made.stderr.contains(&format!("fetched {source} whole")),
        "{}",
        made.stderr
    );
    let index = (cache.list().into_iter())
        .find(|image| image["name"] == source.as_str())
        .unwrap();
    assert_eq!(
        index["children"],
        serde_json::json!(digests),
        "every platform cached"
    );
    let archive = format!("oci-archive:{}", bundle.join("images.tar").display());
    assert_eq!(
        support::tool("skopeo", &["inspect", "--raw", &archive]),
        raw,
        "the archive holds the index, byte for byte"
    );

    let edge = format!("{}/edge", registry.host());
    let pushed = Command::new(bundle.join("push.sh"))
        .arg(&edge)
        .output()
        .unwrap();
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let there = images::registry_manifest(&format!("{edge}/bundled/multi:v1"));
    assert_eq!(
        support::sha256(there.as_bytes()),
        support::sha256(raw.as_bytes()),
        "push.sh keeps the index whole: the same digest at the target"
    );
}

/// The names a bundle's folder holds, each planted as a link by the racing thread below.
const BUNDLE_FILES: [&str; 7] = [
    "README.txt",
    "SHA256SUMS",
    "bundle.json",
    "docker-image-pusher",
    "images.list",
    "images.tar",
    "push.sh",
];

#[test]
fn a_partial_folder_re_made_with_links_is_never_written_through() {
    let dir = TempDir::new("bundle-race");
    let archive = images::docker_archive(dir.path(), "example.com/team/app:v1");
    let cache = TestCache::new();
    cache.run(&["extract", archive.to_str().unwrap()]).success();
    let precious = dir.join("precious");
    fs::write(&precious, b"keep me").unwrap();
    let output = dir.join("out");
    let partial = dir.join("out.partial");
    let stop = Arc::new(AtomicBool::new(false));
    let racer = {
        let (stop, partial, precious) = (stop.clone(), partial.clone(), precious.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = fs::create_dir(&partial);
                for name in BUNDLE_FILES {
                    let _ = symlink(&precious, partial.join(name));
                }
                std::thread::yield_now();
            }
        })
    };
    let made = cache.run(&[
        "bundle",
        "example.com/team/app:v1",
        "-o",
        output.to_str().unwrap(),
    ]);
    stop.store(true, Ordering::Relaxed);
    racer.join().unwrap();
    assert_eq!(
        fs::read_to_string(&precious).unwrap(),
        "keep me",
        "{}",
        made.stderr
    );
    if output.exists() {
        for name in BUNDLE_FILES {
            let meta = fs::symlink_metadata(output.join(name)).unwrap();
            assert!(meta.is_file(), "{name} is not a file of the bundle's own");
        }
    }
    assert!(!made.stderr.contains("panicked"), "{}", made.stderr);
}

#[test]
fn push_sh_leaves_no_cache_behind() {
    let dir = TempDir::new("bundle-tmp");
    let archive = images::docker_archive(dir.path(), "example.com/team/app:v1");
    let cache = TestCache::new();
    cache.run(&["extract", archive.to_str().unwrap()]).success();
    let bundle = dir.join("carried");
    cache
        .run(&[
            "bundle",
            "example.com/team/app:v1",
            "-o",
            bundle.to_str().unwrap(),
        ])
        .success();
    let mode = fs::metadata(&bundle).unwrap().mode() & 0o777;
    assert_eq!(mode & 0o022, 0, "the bundle's folder is {mode:o}");
    let registry = TestRegistry::start(Setup::Plain);
    for (to, succeeds) in [
        (format!("{}/edge", registry.host()), true),
        ("127.0.0.1:9/edge".into(), false),
    ] {
        let tmp = TempDir::new("push-sh-tmp");
        let pushed = Command::new(bundle.join("push.sh"))
            .args([&to, "--retry-attempts", "0"])
            .env("TMPDIR", tmp.path())
            .env_remove("DOCKER_PUSHER_CACHE_DIR")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&pushed.stderr);
        assert_eq!(pushed.status.success(), succeeds, "{said}");
        let left: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "push.sh left {left:?}");
    }
}

/// A 64-bit little-endian ELF header of a statically linked executable for `machine`.
fn elf_header(machine: u16) -> Vec<u8> {
    let mut header = vec![0u8; 64];
    header[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
    header[0x10..0x12].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    header[0x12..0x14].copy_from_slice(&machine.to_le_bytes());
    header[0x20..0x28].copy_from_slice(&64u64.to_le_bytes()); // no program headers follow
    header[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
    header
}

#[test]
fn the_binary_is_checked_before_anything_is_written() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("bundle-binary");
    let archive = images::docker_archive(dir.path(), "example.com/team/app:v1");
    let source = format!("{}/team/app:v1", registry.host());
    support::push_uncompressed(&archive, &source);
    let script = dir.join("script.sh");
    fs::write(&script, "#!/bin/sh\necho not a program\n").unwrap();
    let text = dir.join("notes.txt");
    fs::write(&text, "docker-image-pusher\n").unwrap();

    let cache = TestCache::new();
    let bundle = dir.join("carried");
    for (binary, said) in [
        (dir.join("missing"), "no such file"),
        (dir.path().to_path_buf(), "not a regular file"),
        (archive.clone(), "a tar archive, not a program"),
        (script, "a script, not a program"),
        (text, "a text file, not a program"),
    ] {
        let given = ["--binary", binary.to_str().unwrap()];
        let refused = cache
            .run(
                &[
                    &["bundle", &source, "-o", bundle.to_str().unwrap()][..],
                    &given,
                ]
                .concat(),
            )
            .exits(2);
        assert!(
            refused
                .stderr
                .contains(&format!("--binary {}", binary.display()))
                && refused.stderr.contains(said),
            "{}",
            refused.stderr
        );
        assert!(!bundle.exists() && !dir.join("carried.partial").exists());
        assert!(!cache.path().exists(), "nothing fetched before the refusal");
    }

    // An executable for another machine is carried, and said to be.
    let (other, name) = match std::env::consts::ARCH {
        "aarch64" => (62, "x86_64"),
        _ => (183, "aarch64"),
    };
    let foreign = dir.join("foreign");
    fs::write(&foreign, elf_header(other)).unwrap();
    let given = ["--binary", foreign.to_str().unwrap()];
    let made = cache
        .run(
            &[
                &["bundle", &source, "-o", bundle.to_str().unwrap()][..],
                &given,
            ]
            .concat(),
        )
        .success();
    assert!(
        made.stderr
            .contains(&format!("is a program for {name}, not for this machine")),
        "{}",
        made.stderr
    );
    assert!(
        !made.stderr.contains("dynamically linked"),
        "{}",
        made.stderr
    );
    assert_eq!(
        fs::read(bundle.join("docker-image-pusher")).unwrap(),
        elf_header(other)
    );
}

#[test]
fn save_and_bundle_refuse_a_missing_parent_folder_alike() {
    let dir = TempDir::new("bundle-parent");
    let archive = images::docker_archive(dir.path(), "example.com/team/app:v1");
    let cache = TestCache::new();
    cache.run(&["extract", archive.to_str().unwrap()]).success();
    let missing = dir.join("no/such");
    for (command, output) in [
        ("bundle", missing.join("b")),
        ("save", missing.join("x.tar")),
    ] {
        let output = output.to_str().unwrap();
        let refused = cache
            .run(&[command, "example.com/team/app:v1", "-o", output])
            .exits(2);
        assert!(
            refused
                .stderr
                .contains(&format!("the folder {} does not exist", missing.display())),
            "{command}: {}",
            refused.stderr
        );
        assert!(
            !dir.join("no").exists(),
            "{command} made {}",
            missing.display()
        );
    }
    let file = cache
        .run(&[
            "save",
            "app:v1",
            "-o",
            &format!("{}/x.tar", archive.display()),
        ])
        .exits(2);
    assert!(file.stderr.contains("is not a folder"), "{}", file.stderr);
}
