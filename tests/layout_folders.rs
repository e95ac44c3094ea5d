//! OCI image layout folders as a source: `extract DIR`, `push DIR TARGET` and a `sync` line
//! naming a folder read what skopeo writes with `oci:DIR:NAME` (one image, several by ref
//! name, an index copied with `--all`), giving the digests skopeo reads back; `--image` and
//! `DIR:NAME` pick by ref name. Hostile folders (a link out, a missing or longer blob, a
//! climbing ref name) are refused as bad input before anything is copied.

mod support;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use support::images::{self, Layer, two_layers};
use support::registry::{Setup, TestRegistry};
use support::{TempDir, TestCache, sha256, tool};

/// A layout folder `dir/layout` written by skopeo from a docker-archive of each image, under
/// its ref name.
fn skopeo_layout(dir: &Path, images: &[(&str, &[Layer<'_>])]) -> String {
    let layout = dir.join("layout");
    for (ref_name, layers) in images {
        let file = format!("{ref_name}.tar");
        let name = format!("example.com/{ref_name}:v1");
        let archive = images::skopeo_archive(dir, &file, "docker-archive", &name, layers);
        images::skopeo_copy(
            &format!("docker-archive:{}", archive.display()),
            &format!("oci:{}:{ref_name}", layout.display()),
        );
        fs::remove_file(archive).unwrap();
    }
    layout.to_str().unwrap().to_string()
}

/// The manifest skopeo reads at `reference` (`oci:DIR:NAME`, `docker://…`), with `flags`.
fn skopeo_raw(flags: &[&str], reference: &str) -> serde_json::Value {
    serde_json::from_slice(&raw_bytes(flags, reference)).unwrap()
}

/// The digest of the manifest skopeo reads at `reference`: the sha256 of its exact bytes.
fn skopeo_digest(flags: &[&str], reference: &str) -> String {
    format!("sha256:{}", sha256(&raw_bytes(flags, reference)))
}

fn raw_bytes(flags: &[&str], reference: &str) -> Vec<u8> {
    let output = Command::new("skopeo")
        .args(["inspect", "--raw"])
        .args(flags)
        .arg(reference)
        .output()
        .unwrap();
    assert!(output.status.success(), "skopeo inspect --raw {reference}");
    output.stdout
}

/// What the test registry holds at `reference`, read by skopeo.
fn registry_digest(reference: &str) -> String {
    skopeo_digest(&["--tls-verify=false"], &format!("docker://{reference}"))
}

/// Two images that differ by one small layer.
const ONE: [Layer<'static>; 1] = [&[("etc/which", b"one\n")]];
const TWO: [Layer<'static>; 1] = [&[("etc/which", b"two\n")]];

#[test]
fn a_skopeo_layout_is_extracted_and_pushed_with_its_digests() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("layout-one");
    let layout = skopeo_layout(dir.path(), &[("app", &two_layers())]);
    let oci = format!("oci:{layout}:app");
    let manifest = skopeo_digest(&[], &oci);
    let config = skopeo_raw(&[], &oci)["config"]["digest"].clone();
    let before = support::files_under(Path::new(&layout));

    let cache = TestCache::new();
    cache.run(&["extract", &layout]).success();
    let listed = cache.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["manifest_digest"], manifest.as_str());
    assert_eq!(listed[0]["config_digest"], config);

    let target = format!("{}/layout/app:v1", registry.host());
    let swapped = cache.run(&["push", &target, &layout]).exits(2);
    assert!(swapped.stderr.contains("comes first"), "{}", swapped.stderr);
    cache.run(&["push", &layout, &target]).success();
    assert_eq!(registry_digest(&target), manifest, "pushed byte for byte");
    // `DIR:NAME`, as skopeo's `oci:DIR:NAME`, from another cache: read from the folder.
    let named = format!("{}/layout/named:v1", registry.host());
    let fresh = TestCache::new();
    fresh
        .run(&["push", &format!("{layout}:app"), &named])
        .success();
    assert_eq!(registry_digest(&named), manifest);
    assert_eq!(
        support::files_under(Path::new(&layout)),
        before,
        "the folder is read in place, nothing added to it"
    );
}

#[test]
fn an_index_that_skopeo_copied_with_all_is_pushed_whole() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("layout-index");
    let (made, digests) = images::multi_platform_layout(dir.path(), &["amd64", "arm64"]);
    let source = format!("{}/src/multi:v1", registry.host());
    images::skopeo_push(&format!("oci:{}:multi", made.display()), &source, true);
    let layout = dir.join("copied");
    let layout = layout.to_str().unwrap();
    tool(
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            "--quiet",
            "--all",
            "--src-tls-verify=false",
            &format!("docker://{source}"),
            &format!("oci:{layout}:multi"),
        ],
    );
    let index = skopeo_digest(&[], &format!("oci:{layout}:multi"));
    assert_eq!(registry_digest(&source), index, "skopeo kept the index");

    let target = format!("{}/layout/multi:v1", registry.host());
    let cache = TestCache::new();
    cache.run(&["push", layout, &target]).success();
    assert_eq!(registry_digest(&target), index, "the index, whole");
    let arm = format!("{}/layout/arm:v1", registry.host());
    cache
        .run(&["push", layout, &arm, "--platform", "linux/arm64"])
        .success();
    assert_eq!(registry_digest(&arm), digests[1]);

    cache
        .run(&["extract", &format!("{layout}:multi"), "--all-platforms"])
        .success();
    let listed: Vec<String> = (cache.list().iter())
        .map(|image| image["manifest_digest"].as_str().unwrap().to_string())
        .collect();
    assert!(listed.contains(&index), "{listed:?}");
    assert!(digests.iter().all(|d| listed.contains(d)), "{listed:?}");
}

#[test]
fn of_two_ref_names_image_or_dir_name_picks_and_none_is_refused_naming_both() {
    let registry = TestRegistry::start(Setup::Plain);
    let host = registry.host();
    let dir = TempDir::new("layout-two");
    let layout = skopeo_layout(dir.path(), &[("one", &ONE), ("two", &TWO)]);
    let one = skopeo_digest(&[], &format!("oci:{layout}:one"));
    let two = skopeo_digest(&[], &format!("oci:{layout}:two"));
    assert_ne!(one, two);
    let cache = TestCache::new();

    let unpicked = cache
        .run(&["push", &layout, &format!("{host}/two/none:v1")])
        .exits(2);
    assert!(
        unpicked.stderr.contains("ref name \"one\"")
            && unpicked.stderr.contains("ref name \"two\"")
            && unpicked.stderr.contains("--image"),
        "{}",
        unpicked.stderr
    );
    let by_flag = format!("{host}/two/flag:v1");
    (cache.run(&["push", &layout, &by_flag, "--image", "two"])).success();
    assert_eq!(registry_digest(&by_flag), two);
    let by_name = format!("{host}/two/named:v1");
    (cache.run(&["push", &format!("{layout}:one"), &by_name])).success();
    assert_eq!(registry_digest(&by_name), one);

    let extracted = TestCache::new();
    (extracted.run(&["extract", &format!("{layout}:two")])).success();
    let listed = extracted.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["manifest_digest"], two.as_str());

    let missing = cache.run(&["extract", &format!("{layout}:three")]).exits(6);
    assert!(
        missing
            .stderr
            .contains("no image has the ref name \"three\""),
        "{}",
        missing.stderr
    );
    let both = (cache.run(&["extract", &format!("{layout}:one"), "--image", "one"])).exits(2);
    assert!(both.stderr.contains("drop --image"), "{}", both.stderr);

    // A sync list line naming the folder, next to the list, as an archive line does.
    let list = dir.join("list.txt");
    let synced = format!("{host}/two/synced:v1");
    fs::write(&list, format!("layout:two  {synced}\n")).unwrap();
    (cache.run(&["sync", "--file", list.to_str().unwrap()])).success();
    assert_eq!(registry_digest(&synced), two);
}

#[test]
fn a_path_with_a_colon_that_exists_opens_as_given() {
    let dir = TempDir::new("layout-colon");
    let layout = skopeo_layout(dir.path(), &[("app", &ONE)]);
    let archive = images::docker_archive(dir.path(), "example.com/app:v1");
    let colon = format!("{layout}:app");
    fs::rename(&archive, &colon).unwrap();
    let cache = TestCache::new();
    cache.run(&["extract", &colon]).success();
    let listed = cache.list();
    assert_eq!(
        listed[0]["name"], "example.com/app:v1",
        "the docker-archive file, not the folder's image"
    );
}

/// A good layout of one image, with its manifest and one layer's path.
fn good_layout(dir: &TempDir) -> (String, serde_json::Value, String) {
    let layout = skopeo_layout(dir.path(), &[("app", &two_layers())]);
    let manifest = skopeo_raw(&[], &format!("oci:{layout}:app"));
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let layer = format!("{layout}/blobs/sha256/{}", &layer["sha256:".len()..]);
    (layout, manifest, layer)
}

/// Runs `extract` of `layout` into a new cache: refused as bad input, nothing cached; its
/// error.
fn refused(layout: &str) -> String {
    let cache = TestCache::new();
    let run = cache.run(&["extract", layout]).exits(3);
    assert!(cache.list().is_empty(), "nothing cached");
    run.stderr
}

#[test]
fn a_blob_that_links_out_of_the_folder_is_refused_even_with_the_right_content() {
    let dir = TempDir::new("layout-link");
    let (layout, _, layer) = good_layout(&dir);
    let outside = dir.join("outside.blob");
    fs::rename(&layer, &outside).unwrap();
    symlink(&outside, &layer).unwrap();
    let said = refused(&layout);
    let hex = Path::new(&layer).file_name().unwrap().to_str().unwrap();
    assert!(
        said.contains("is a symbolic link") && said.contains(hex),
        "{said}"
    );

    // A folder on the way that is a link is refused the same.
    let other = TempDir::new("layout-link-dir");
    let (layout, _, _) = good_layout(&other);
    let blobs = Path::new(&layout).join("blobs");
    let moved = dir.join("blobs-elsewhere");
    fs::rename(&blobs, &moved).unwrap();
    symlink(&moved, &blobs).unwrap();
    let said = refused(&layout);
    assert!(said.contains("goes through a symbolic link"), "{said}");
}

#[test]
fn an_index_naming_a_blob_that_is_not_there_is_bad_input_naming_it() {
    let dir = TempDir::new("layout-missing");
    let (layout, _, layer) = good_layout(&dir);
    fs::remove_file(&layer).unwrap();
    let said = refused(&layout);
    let hex = Path::new(&layer).file_name().unwrap().to_str().unwrap();
    assert!(
        said.contains(hex) && said.contains("not in the folder") && said.contains(&layout),
        "{said}"
    );
}

#[test]
fn a_blob_longer_than_its_descriptor_is_bad_input_for_extract_and_push() {
    let dir = TempDir::new("layout-long");
    let (layout, manifest, layer) = good_layout(&dir);
    let mut bytes = fs::read(&layer).unwrap();
    bytes.extend_from_slice(b"trailing");
    fs::write(&layer, &bytes).unwrap();
    let size = manifest["layers"][0]["size"].as_u64().unwrap();
    let said = refused(&layout);
    let hex = Path::new(&layer).file_name().unwrap().to_str().unwrap();
    assert!(
        said.contains(hex) && said.contains(&format!("the manifest says {size}")),
        "{said}"
    );
    let pushed = (TestCache::new().run(&["push", &layout, "127.0.0.1:9/never/app:v1"])).exits(3);
    assert!(pushed.stderr.contains(hex), "{}", pushed.stderr);
}

#[test]
fn a_ref_name_that_climbs_is_refused_and_nothing_is_written_outside() {
    let dir = TempDir::new("layout-climb");
    let (layout, _, _) = good_layout(&dir);
    let index_path = Path::new(&layout).join("index.json");
    let index = fs::read_to_string(&index_path).unwrap();
    let climbing = index.replace("\"app\"", "\"../../escape\\u001b[31m\"");
    assert_ne!(index, climbing);
    fs::write(&index_path, climbing).unwrap();
    let before = support::files_under(dir.path());
    let said = refused(&layout);
    assert!(said.contains("../../escape"), "{said}");
    assert!(
        !said.contains('\u{1b}'),
        "the name is shown inert: {said:?}"
    );
    assert_eq!(support::files_under(dir.path()), before);
    assert!(!dir.path().parent().unwrap().join("escape").exists());
}

/// Makes the index of `layout` list `count` images, each its own copy of `manifest` (told
/// apart by an annotation), with the ref names `{prefix}0`, `{prefix}1`...; returns the entries.
fn many_images(
    layout: &str,
    manifest: &serde_json::Value,
    count: usize,
    prefix: &str,
) -> Vec<serde_json::Value> {
    let blobs = Path::new(layout).join("blobs/sha256");
    let entries: Vec<serde_json::Value> = (0..count)
        .map(|n| {
            let mut image = manifest.clone();
            image["annotations"] = serde_json::json!({ "n": n.to_string() });
            let bytes = serde_json::to_vec(&image).unwrap();
            let hex = sha256(&bytes);
            fs::write(blobs.join(&hex), &bytes).unwrap();
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": format!("sha256:{hex}"),
                "size": bytes.len(),
                "annotations": { "org.opencontainers.image.ref.name": format!("{prefix}{n}") },
            })
        })
        .collect();
    let index = serde_json::json!({ "schemaVersion": 2, "manifests": entries });
    fs::write(Path::new(layout).join("index.json"), index.to_string()).unwrap();
    entries
}

#[test]
fn a_name_not_in_a_folder_of_many_long_names_is_refused_in_a_short_message() {
    let dir = TempDir::new("layout-many-names");
    let (layout, manifest, _) = good_layout(&dir);
    many_images(&layout, &manifest, 300, &"long".repeat(500));
    for asked in [
        vec!["extract", &layout, "--image", "nope"],
        vec!["extract", &format!("{layout}:nope")],
    ] {
        let refused = TestCache::new().run(&asked).exits(6);
        assert!(
            refused.stderr.len() < 4000,
            "{} bytes",
            refused.stderr.len()
        );
        assert!(
            refused.stderr.contains("(300 images in all)"),
            "{}",
            refused.stderr
        );
    }
}

#[test]
fn an_index_of_as_many_images_as_its_bound_holds_is_read_in_linear_time() {
    let dir = TempDir::new("layout-many");
    let (layout, manifest, _) = good_layout(&dir);
    // 19 000 images, each its own manifest: about all that a 4 MiB index.json lists. Finding
    // each among those read before, one by one, took 22 s here; a map of them 11 s.
    let entries = many_images(&layout, &manifest, 19_000, "t");
    let cache = TestCache::new();
    let started = std::time::Instant::now();
    cache
        .run(&["extract", &format!("{layout}:t18999")])
        .success();
    let listed = cache.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["manifest_digest"], entries[18_999]["digest"]);
    assert!(started.elapsed().as_secs() < 120, "{:?}", started.elapsed());
}

#[test]
fn a_layout_without_index_json_is_bad_input_that_says_so() {
    let dir = TempDir::new("layout-no-index");
    let (layout, _, _) = good_layout(&dir);
    fs::remove_file(Path::new(&layout).join("index.json")).unwrap();
    let said = refused(&layout);
    assert!(
        said.contains(&format!("{layout}: an OCI layout without index.json")),
        "{said}"
    );
}

#[test]
fn a_folder_swapped_for_a_link_while_the_layout_is_read_is_caught_on_the_file_opened() {
    let dir = TempDir::new("layout-swap");
    let (layout, _, _) = good_layout(&dir);
    let blobs = Path::new(&layout).join("blobs");
    let (kept, link) = (dir.join("blobs-kept"), dir.join("blobs-link"));
    // Outside the folder, a FIFO in the place of each blob: opening one is reading outside.
    let outside = dir.join("outside/sha256");
    fs::create_dir_all(&outside).unwrap();
    for blob in fs::read_dir(blobs.join("sha256")).unwrap() {
        let fifo = outside.join(blob.unwrap().file_name());
        tool("mkfifo", &[fifo.to_str().unwrap()]);
    }
    symlink(outside.parent().unwrap(), &link).unwrap();
    fs::rename(&blobs, &kept).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, blobs) = (stop.clone(), blobs.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // blobs/ is the real folder, then the link out, by turns.
                fs::rename(&kept, &blobs).unwrap();
                fs::rename(&blobs, &kept).unwrap();
                fs::rename(&link, &blobs).unwrap();
                fs::rename(&blobs, &link).unwrap();
            }
        })
    };
    for _ in 0..40 {
        let run = TestCache::new().run(&["extract", &layout]);
        assert!(
            !run.stderr.contains("not a regular file"),
            "a file outside the folder was opened: {}",
            run.stderr
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
}

#[test]
fn an_image_name_with_control_characters_is_refused_shown_inert() {
    // A list line or a script may carry --image text with control characters in it: no name
    // holds them, and the refusal shows them as escapes.
    let dir = TempDir::new("layout-inert-image");
    let (layout, _, _) = good_layout(&dir);
    let cache = TestCache::new();
    let run = cache
        .run(&["extract", &layout, "--image", "app\u{1b}]0;owned\u{7}"])
        .exits(2);
    assert!(
        run.stderr.contains(r"app\x1b]0;owned\x07") && !run.stderr.contains('\u{1b}'),
        "{}",
        run.stderr
    );
}
