//! Images made by tools this project did not write: umoci builds OCI layouts, skopeo turns
//! them into `docker-archive` and `oci-archive` files and reports what they hold.

use std::fs;
use std::path::{Path, PathBuf};

use super::tool;

/// Files of one layer: (path inside the image, content).
pub type Layer<'a> = &'a [(&'a str, &'a [u8])];

/// Builds an OCI layout at `dir` holding `tag`, one umoci layer per element of `layers`.
pub fn umoci_layout(dir: &Path, tag: &str, layers: &[Layer<'_>]) -> PathBuf {
    let layout = dir.join(format!("layout-{tag}"));
    tool("umoci", &["init", "--layout", layout.to_str().unwrap()]);
    tool(
        "umoci",
        &["new", "--image", &format!("{}:{tag}", layout.display())],
    );
    for files in layers {
        umoci_add_layer(&layout, tag, tag, files);
    }
    layout
}

/// Adds a layer holding `files` on top of image `from` of `layout`, as image `to`. Images made
/// from one `from` share its layers byte for byte (umoci records file times in each layer).
pub fn umoci_add_layer(layout: &Path, from: &str, to: &str, files: Layer<'_>) {
    let bundle = layout.with_extension(format!("bundle-{to}"));
    let image = |tag: &str| format!("{}:{tag}", layout.display());
    tool(
        "umoci",
        &["unpack", "--image", &image(from), bundle.to_str().unwrap()],
    );
    for (path, content) in files {
        let target = bundle.join("rootfs").join(path);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::write(target, content).unwrap();
    }
    tool(
        "umoci",
        &["repack", "--image", &image(to), bundle.to_str().unwrap()],
    );
    fs::remove_dir_all(&bundle).unwrap();
}

/// `skopeo copy FROM TO` (local transports only).
pub fn skopeo_copy(from: &str, to: &str) {
    tool(
        "skopeo",
        &["--insecure-policy", "copy", "--quiet", from, to],
    );
}

/// `skopeo copy FROM docker://TARGET` into a plain-HTTP test registry; with `all`, every
/// image of an index.
pub fn skopeo_push(from: &str, target: &str, all: bool) {
    let to = format!("docker://{target}");
    let mut args = vec![
        "--insecure-policy",
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
    ];
    if all {
        args.push("--all");
    }
    tool("skopeo", &[&args[..], &[from, &to]].concat());
}

/// An archive written by skopeo through `transport` (`docker-archive`: what `docker save`
/// writes; `oci-archive`), naming the image `name` (`example.com/app:v1`).
pub fn skopeo_archive(
    dir: &Path,
    file: &str,
    transport: &str,
    name: &str,
    layers: &[Layer<'_>],
) -> PathBuf {
    let layout = umoci_layout(dir, "src", layers);
    let archive = dir.join(file);
    skopeo_copy(
        &format!("oci:{}:src", layout.display()),
        &format!("{transport}:{}:{name}", archive.display()),
    );
    fs::remove_dir_all(layout).unwrap();
    archive
}

/// A small two-layer image (see [`two_layers`]) in `dir/app.tar`, a docker-archive written
/// by skopeo, naming it `name`.
pub fn docker_archive(dir: &Path, name: &str) -> PathBuf {
    skopeo_archive(dir, "app.tar", "docker-archive", name, &two_layers())
}

/// What skopeo says an image is: its config digest and the config's diff_ids.
pub fn skopeo_identity(transport_reference: &str) -> (String, Vec<String>) {
    skopeo_identity_with(&[], transport_reference)
}

/// The same, with extra `skopeo inspect` flags (TLS, credentials).
pub fn skopeo_identity_with(flags: &[&str], transport_reference: &str) -> (String, Vec<String>) {
    let inspect = |what: &str| {
        let mut args = vec!["inspect", what];
        args.extend_from_slice(flags);
        args.push(transport_reference);
        serde_json::from_str::<serde_json::Value>(&tool("skopeo", &args)).unwrap()
    };
    let (raw, config) = (inspect("--raw"), inspect("--config"));
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    (
        raw["config"]["digest"].as_str().unwrap().to_string(),
        diff_ids,
    )
}

/// The config digest and diff_ids that `list --json` reports for one image.
pub fn listed_identity(image: &serde_json::Value) -> (String, Vec<String>) {
    let diff_ids = image["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["diff_id"].as_str().unwrap().to_string())
        .collect();
    (
        image["config_digest"].as_str().unwrap().to_string(),
        diff_ids,
    )
}

/// An OCI layout whose tag `multi` is an index of one image per architecture (linux), each
/// with its own layer. Returns the layout and the manifest digests, in `architectures` order.
pub fn multi_platform_layout(dir: &Path, architectures: &[&str]) -> (PathBuf, Vec<String>) {
    let layout = umoci_layout(dir, "base", &[&[("etc/base", b"base\n")]]);
    let mut entries = Vec::new();
    for architecture in architectures {
        umoci_add_layer(
            &layout,
            "base",
            architecture,
            &[("etc/arch", architecture.as_bytes())],
        );
        let image = format!("{}:{architecture}", layout.display());
        tool(
            "umoci",
            &[
                "config",
                "--image",
                &image,
                &format!("--architecture={architecture}"),
            ],
        );
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
        let entry = (index["manifests"].as_array().unwrap().iter())
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == *architecture)
            .unwrap()
            .clone();
        entries.push(serde_json::json!({
            "mediaType": entry["mediaType"], "digest": entry["digest"], "size": entry["size"],
            "platform": { "architecture": architecture, "os": "linux" },
        }));
    }
    let platform_index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    }))
    .unwrap();
    let digest = super::sha256(&platform_index);
    fs::write(layout.join("blobs/sha256").join(&digest), &platform_index).unwrap();
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&fs::read(&index_path).unwrap()).unwrap();
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": format!("sha256:{digest}"),
            "size": platform_index.len(),
            "annotations": { "org.opencontainers.image.ref.name": "multi" },
        }));
    fs::write(index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let digests = entries
        .iter()
        .map(|e| e["digest"].as_str().unwrap().to_string())
        .collect();
    (layout, digests)
}

/// Two small distinct layers, for tests that need an image but not its content.
pub fn two_layers() -> [Layer<'static>; 2] {
    [
        &[("etc/greeting", b"hello\n")],
        &[
            ("usr/share/data.txt", b"some data\n"),
            ("bin/tool", b"#!/bin/sh\n"),
        ],
    ]
}

/// The manifest digest skopeo reads for `reference` (`host:port/repository:tag`) on a test
/// registry, with `flags` (`--tls-verify=false`, `--creds=…`).
pub fn registry_digest(flags: &[&str], reference: &str) -> String {
    let image = format!("docker://{reference}");
    let args = [
        &["inspect", "--format", "{{.Digest}}"][..],
        flags,
        &[&image],
    ]
    .concat();
    tool("skopeo", &args).trim().to_string()
}

/// The digest of the config the manifest `reference` (`host:port/repository:tag`) names on a
/// plain-HTTP test registry, as skopeo reads the manifest.
pub fn registry_config_digest(reference: &str) -> String {
    let manifest: serde_json::Value =
        serde_json::from_str(&registry_manifest(reference)).expect("a manifest is JSON");
    manifest["config"]["digest"]
        .as_str()
        .expect("an image manifest")
        .to_string()
}

/// The manifest `reference` (`host:port/repository:tag`) names on a test registry, as skopeo
/// reads it: the exact bytes, as text.
pub fn registry_manifest(reference: &str) -> String {
    tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ],
    )
}

/// Pushes `images` (repository, tag) to the plain-HTTP `registry`, made with umoci on one
/// shared base layer, each with a small layer of its own. Returns the base layer's digest.
pub fn images_with_a_shared_base(
    dir: &Path,
    registry: &super::registry::TestRegistry,
    images: &[(&str, &str)],
) -> String {
    let base: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let layout = umoci_layout(dir, "base", &[&[("usr/lib/base.bin", &base)]]);
    for (repository, tag) in images {
        let name = format!("{}-{tag}", repository.replace('/', "-"));
        let own = format!("{repository}:{tag}\n");
        umoci_add_layer(&layout, "base", &name, &[("etc/image", own.as_bytes())]);
        skopeo_push(
            &format!("oci:{}:{name}", layout.display()),
            &format!("{}/{repository}:{tag}", registry.host()),
            false,
        );
    }
    let inspected = tool(
        "skopeo",
        &["inspect", &format!("oci:{}:base", layout.display())],
    );
    let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    inspected["Layers"][0].as_str().unwrap().to_string()
}
