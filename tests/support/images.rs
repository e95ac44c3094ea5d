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

/// What skopeo says an image is: its config digest and the config's diff_ids.
pub fn skopeo_identity(transport_reference: &str) -> (String, Vec<String>) {
    let raw: serde_json::Value =
        serde_json::from_str(&tool("skopeo", &["inspect", "--raw", transport_reference])).unwrap();
    let config: serde_json::Value = serde_json::from_str(&tool(
        "skopeo",
        &["inspect", "--config", transport_reference],
    ))
    .unwrap();
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
