//! `extract` on archives written by skopeo (docker-archive, oci-archive), gzip-compressed,
//! from standard input, several images in one archive (`--image` by full or short name),
//! untagged images, and a containerd-style
//! archive that lists platforms it does not hold (extracted, and pushed: what it holds). skopeo
//! is the oracle for what each holds.

mod support;

use std::collections::BTreeMap;
use std::fs;

use support::images::{self, listed_identity, skopeo_archive, skopeo_identity, two_layers};
use support::registry::{Setup, TestRegistry};
use support::tarball::{Item, legacy_items, write_tar};
use support::{TempDir, TestCache, gzip_file, sha256, tool};

#[test]
fn a_skopeo_docker_archive_extracts_as_skopeo_sees_it() {
    let dir = TempDir::new("docker-archive");
    let archive = images::docker_archive(dir.path(), "example.com/team/app:v1");
    let cache = TestCache::new();
    let run = cache.run(&["extract", archive.to_str().unwrap()]).success();
    assert!(
        run.stderr.contains("cached example.com/team/app:v1"),
        "{}",
        run.stderr
    );

    let listed = cache.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], "example.com/team/app:v1");
    assert_eq!(
        listed[0]["media_type"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        listed[0]["layers"][0]["media_type"],
        "application/vnd.docker.image.rootfs.diff.tar"
    );
    let expected = skopeo_identity(&format!("docker-archive:{}", archive.display()));
    assert_eq!(listed_identity(&listed[0]), expected);
}

#[test]
fn a_skopeo_oci_archive_extracts_with_its_compressed_layers() {
    let dir = TempDir::new("oci-archive");
    let archive = skopeo_archive(
        dir.path(),
        "app.tar",
        "oci-archive",
        "example.com/team/app:v2",
        &two_layers(),
    );
    let cache = TestCache::new();
    cache
        .run(&["extract", "--file", archive.to_str().unwrap()])
        .success();

    let listed = cache.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], "example.com/team/app:v2");
    assert_eq!(
        listed[0]["media_type"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        listed[0]["layers"][0]["media_type"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let expected = skopeo_identity(&format!("oci-archive:{}", archive.display()));
    assert_eq!(listed_identity(&listed[0]), expected);
}

#[test]
fn gzip_and_standard_input_give_the_same_cache_as_a_plain_file() {
    let dir = TempDir::new("gzip");
    let plain = images::docker_archive(dir.path(), "example.com/app:v1");
    let gzipped = dir.join("app.tar.bin"); // detected by its bytes, not its name
    gzip_file(&plain, &gzipped);
    let expected = skopeo_identity(&format!("docker-archive:{}", plain.display()));

    let from_file = TestCache::new();
    from_file
        .run(&["extract", plain.to_str().unwrap()])
        .success();
    let reference = from_file.content_snapshot();
    for (how, input) in [
        ("gzip file", &gzipped),
        ("plain stdin", &plain),
        ("gzip stdin", &gzipped),
    ] {
        let cache = TestCache::new();
        let run = if how.ends_with("stdin") {
            cache.run_with_stdin(&["extract", "-"], input).success()
        } else {
            cache.run(&["extract", input.to_str().unwrap()]).success()
        };
        let summary = "3 blobs copied (";
        assert!(
            run.stderr.contains(summary) && run.stderr.contains(", 0 already in the cache"),
            "{how}: {}",
            run.stderr
        );
        assert_eq!(listed_identity(&cache.list()[0]), expected, "{how}");
        assert_eq!(cache.content_snapshot(), reference, "{how}");
    }
}

#[test]
fn extracting_a_cached_image_again_writes_nothing() {
    let dir = TempDir::new("again");
    let archive = images::docker_archive(dir.path(), "example.com/app:v1");
    let cache = TestCache::new();
    cache.run(&["extract", archive.to_str().unwrap()]).success();
    let before = cache.snapshot();
    let run = cache.run(&["extract", archive.to_str().unwrap()]).success();
    assert!(run.stderr.contains("already cached"), "{}", run.stderr);
    assert!(run.stderr.contains("0 blobs copied"), "{}", run.stderr);
    assert_eq!(cache.snapshot(), before);
}

#[test]
fn every_image_of_a_multi_image_archive_is_cached_and_image_picks_one() {
    let dir = TempDir::new("bundle");
    let layout = images::umoci_layout(dir.path(), "base", &[&[("etc/shared", b"shared\n")]]);
    let mut parts = Vec::new();
    for name in ["a", "b"] {
        images::umoci_add_layer(&layout, "base", name, &[(name, b"own\n")]);
        let part = dir.join(&format!("{name}.tar"));
        images::skopeo_copy(
            &format!("oci:{}:{name}", layout.display()),
            &format!("docker-archive:{}:example.com/{name}:v1", part.display()),
        );
        parts.push(part);
    }
    let bundle = dir.join("bundle.tar");
    merge_docker_archives(&[&parts[0], &parts[1]], &bundle);

    let cache = TestCache::new();
    cache
        .run(&["extract", bundle.to_str().unwrap(), "--max-concurrent", "2"])
        .success();
    let listed = cache.list();
    let names: Vec<&str> = listed
        .iter()
        .map(|image| image["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["example.com/a:v1", "example.com/b:v1"]);
    for (image, name) in listed.iter().zip(["example.com/a:v1", "example.com/b:v1"]) {
        let expected = skopeo_identity(&format!("docker-archive:{}:{name}", bundle.display()));
        assert_eq!(listed_identity(image), expected, "{name}");
    }
    let blobs = fs::read_dir(cache.path().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(
        blobs, 5,
        "two configs, the shared layer once, two own layers"
    );

    let one = TestCache::new();
    one.run(&[
        "extract",
        bundle.to_str().unwrap(),
        "--image",
        "example.com/b:v1",
    ])
    .success();
    assert_eq!(one.list().len(), 1);
    assert_eq!(one.list()[0]["name"], "example.com/b:v1");
    let missing = one
        .run(&[
            "extract",
            bundle.to_str().unwrap(),
            "--image",
            "example.com/c:v1",
        ])
        .exits(6);
    assert!(
        missing.stderr.contains("example.com/a:v1 (ID sha256:")
            && missing.stderr.contains("example.com/b:v1 (ID sha256:"),
        "the error lists every image by name and ID: {}",
        missing.stderr
    );
}

#[test]
fn image_takes_short_names_as_cached_images_do() {
    let dir = TempDir::new("short-names");
    let layout = images::umoci_layout(dir.path(), "base", &[&[("etc/shared", b"shared\n")]]);
    let mut parts = Vec::new();
    for name in [
        "example.com/team/app:v1",
        "example.com/team/db:v1",
        "mirror.example/app:v1",
    ] {
        let tag = name.replace(['.', '/', ':'], "-");
        images::umoci_add_layer(&layout, "base", &tag, &[(&tag, b"own\n")]);
        let part = dir.join(&format!("{tag}.tar"));
        images::skopeo_copy(
            &format!("oci:{}:{tag}", layout.display()),
            &format!("docker-archive:{}:{name}", part.display()),
        );
        parts.push(part);
    }
    let two = dir.join("two.tar");
    merge_docker_archives(&[&parts[0], &parts[1]], &two);
    for short in ["app:v1", "team/app:v1"] {
        let cache = TestCache::new();
        cache
            .run(&["extract", two.to_str().unwrap(), "--image", short])
            .success();
        let names: Vec<String> = (cache.list().iter())
            .map(|image| image["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["example.com/team/app:v1"], "--image {short}");
    }
    let registry = TestRegistry::start(Setup::Plain);
    let target = format!("{}/picked/db:v1", registry.host());
    TestCache::new()
        .run(&["push", two.to_str().unwrap(), "--image", "db:v1", &target])
        .success();
    let expected = skopeo_identity(&format!(
        "docker-archive:{}:example.com/team/db:v1",
        two.display()
    ));
    let pushed =
        images::skopeo_identity_with(&["--tls-verify=false"], &format!("docker://{target}"));
    assert_eq!(pushed, expected, "push --image db:v1 sent the db image");

    let three = dir.join("three.tar");
    merge_docker_archives(&[&parts[0], &parts[1], &parts[2]], &three);
    let cache = TestCache::new();
    let ambiguous = cache
        .run(&["extract", three.to_str().unwrap(), "--image", "app:v1"])
        .exits(2);
    assert!(
        ambiguous.stderr.contains("\"app:v1\" is ambiguous")
            && ambiguous.stderr.contains("example.com/team/app:v1")
            && ambiguous.stderr.contains("mirror.example/app:v1"),
        "refused, naming both: {}",
        ambiguous.stderr
    );
    assert!(cache.list().is_empty(), "nothing cached");
    cache
        .run(&["extract", three.to_str().unwrap(), "--image", "team/app:v1"])
        .success();
    assert_eq!(cache.list()[0]["name"], "example.com/team/app:v1");
}

#[test]
fn an_untagged_image_is_cached_by_id_or_by_the_name_given() {
    let dir = TempDir::new("untagged");
    let archive = dir.join("by-id.tar");
    write_tar(
        &archive,
        &legacy_items(&[b"layer one", b"layer two"], "null"),
    );

    let cache = TestCache::new();
    let run = cache.run(&["extract", archive.to_str().unwrap()]).success();
    assert!(run.stderr.contains("has no name"), "{}", run.stderr);
    let listed = cache.list();
    let id = listed[0]["config_digest"].as_str().unwrap().to_string();
    assert_eq!(listed[0]["name"], id);
    assert!(listed[0]["repository"].is_null());
    let table = cache.run(&["list"]).success();
    assert!(
        table
            .stdout
            .contains(&format!("<none> (ID {})", &id[7..19])),
        "{}",
        table.stdout
    );

    cache
        .run(&[
            "extract",
            archive.to_str().unwrap(),
            "--tag",
            "registry.example.com/app:v1",
        ])
        .success();
    let names: Vec<String> = cache
        .list()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["registry.example.com/app:v1"],
        "the name replaces the row by ID"
    );
    let table = cache.run(&["list"]).success();
    assert!(!table.stdout.contains("<none>"), "{}", table.stdout);

    // The ID still names the image: save by ID writes it, under the name it now has.
    let saved = dir.join("saved.tar");
    cache
        .run(&["save", &id[..19], "-o", saved.to_str().unwrap()])
        .success();
    let manifest = tool("tar", &["-xOf", saved.to_str().unwrap(), "manifest.json"]);
    assert!(
        manifest.contains("registry.example.com/app:v1"),
        "{manifest}"
    );
}

#[test]
fn a_containerd_archive_keeps_what_it_has_and_names_missing_platforms() {
    let dir = TempDir::new("containerd");
    let layout = images::umoci_layout(dir.path(), "amd64", &two_layers());
    let archive = dir.join("multi.tar");
    let present = containerd_style_archive(&layout, &archive);

    let cache = TestCache::new();
    let run = cache.run(&["extract", archive.to_str().unwrap()]).success();
    assert!(
        run.stderr.contains("linux/arm64"),
        "missing platform not named: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("unknown/unknown"),
        "attestations are not platforms: {}",
        run.stderr
    );
    let listed = cache.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], "docker.io/library/multi:latest");
    assert_eq!(listed[0]["manifest_digest"], present);
}

#[test]
fn a_containerd_archive_pushes_what_it_holds_and_says_so() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("containerd-push");
    let layout = images::umoci_layout(dir.path(), "amd64", &two_layers());
    let archive = dir.join("multi.tar");
    let present = containerd_style_archive(&layout, &archive);
    let target = format!("{}/partial/multi:v1", registry.host());
    let run = TestCache::new()
        .run(&["push", archive.to_str().unwrap(), &target])
        .success();
    let said = (run.stderr.lines())
        .find(|line| line.contains("only part of its index"))
        .unwrap_or_else(|| panic!("not said: {}", run.stderr));
    assert!(
        !said.starts_with("warning")
            && said.contains("not the blobs of linux/arm64): linux/amd64 taken"),
        "an information line, naming what is missing: {said}"
    );
    let pushed = images::registry_manifest(&target);
    assert_eq!(
        format!("sha256:{}", sha256(pushed.as_bytes())),
        present,
        "the image it holds, as it is"
    );
}

#[test]
fn two_processes_can_extract_into_one_cache_at_once() {
    let dir = TempDir::new("shared");
    let cache = TestCache::new();
    let archives: Vec<_> = ["a", "b", "a"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let path = dir.join(&format!("{i}.tar"));
            let tag = format!(r#"["example.com/{name}:v1"]"#);
            write_tar(
                &path,
                &legacy_items(&[&vec![i as u8; 3_000_000], name.as_bytes()], &tag),
            );
            path
        })
        .collect();
    let children: Vec<_> = (archives.iter())
        .map(|archive| {
            let cache_dir = cache.path();
            support::command(&["--cache-dir", cache_dir.to_str().unwrap(), "extract"])
                .arg(archive)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
    }
    let names: Vec<String> = (cache.list().iter())
        .map(|image| image["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["example.com/a:v1", "example.com/b:v1"]);
}

/// Joins skopeo docker-archives into one, as `docker save a b` would write it.
fn merge_docker_archives(parts: &[&std::path::Path], into: &std::path::Path) {
    let mut files = BTreeMap::new();
    let mut links = BTreeMap::new();
    let mut manifest = Vec::new();
    for part in parts {
        let mut archive = tar::Archive::new(fs::File::open(part).unwrap());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            if entry.header().entry_type() == tar::EntryType::Symlink {
                let target = entry
                    .link_name()
                    .unwrap()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                links.insert(path, target);
                continue;
            }
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            match path.as_str() {
                "manifest.json" => {
                    let images: Vec<serde_json::Value> = serde_json::from_slice(&data).unwrap();
                    manifest.extend(images);
                }
                "repositories" => {}
                _ => {
                    files.insert(path, data);
                }
            }
        }
    }
    let mut items: Vec<Item> = files
        .into_iter()
        .map(|(path, data)| Item::File(path, data))
        .collect();
    items.extend(
        links
            .into_iter()
            .map(|(path, target)| Item::Symlink(path, target)),
    );
    items.push(Item::File(
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    ));
    write_tar(into, &items);
}

/// Writes what Docker's containerd image store saves for a multi-platform image pulled for one
/// platform: an index listing linux/amd64 (present), linux/arm64 (absent) and an attestation
/// (absent). Returns the digest of the amd64 manifest.
fn containerd_style_archive(layout: &std::path::Path, archive: &std::path::Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let amd64 = index["manifests"][0].clone();
    let absent = |c: char| format!("sha256:{}", c.to_string().repeat(64));
    let platform_index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            { "mediaType": amd64["mediaType"], "digest": amd64["digest"], "size": amd64["size"],
              "platform": { "architecture": "amd64", "os": "linux" } },
            { "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": absent('a'), "size": 500,
              "platform": { "architecture": "arm64", "os": "linux" } },
            { "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": absent('b'), "size": 500,
              "platform": { "architecture": "unknown", "os": "unknown" },
              "annotations": { "vnd.docker.reference.type": "attestation-manifest" } },
        ],
    });
    let index_bytes = serde_json::to_vec(&platform_index).unwrap();
    let index_digest = sha256(&index_bytes);
    let top = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": format!("sha256:{index_digest}"),
            "size": index_bytes.len(),
            "annotations": {
                "io.containerd.image.name": "docker.io/library/multi:latest",
                "org.opencontainers.image.ref.name": "latest",
            },
        }],
    });
    let mut items = vec![
        Item::File(
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        Item::File("index.json".into(), serde_json::to_vec(&top).unwrap()),
        Item::File(format!("blobs/sha256/{index_digest}"), index_bytes),
    ];
    for entry in fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        items.push(Item::File(
            format!("blobs/sha256/{name}"),
            fs::read(&path).unwrap(),
        ));
    }
    write_tar(archive, &items);
    amd64["digest"].as_str().unwrap().to_string()
}
