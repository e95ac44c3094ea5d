//! Which of two claims decides: a manifest's own `mediaType` over the `Content-Type` it was
//! served with (the other kind refused), and neither a file nor a cached image of the same
//! name over the other (`push` asks which).

mod support;

use support::front::{Action, Front};
use support::registry::{Setup, TestRegistry};
use support::{Run, TempDir, TestCache, command, images};

/// A front that serves `body` as `content_type` for every manifest `GET`; the rest goes to
/// `registry`.
fn manifest_served_as(registry: &TestRegistry, body: String, content_type: &str) -> Front {
    let content_type = content_type.to_string();
    Front::start(registry.port(), move |request, _| {
        match request.method == "GET" && request.target.contains("/manifests/") {
            true => Action::Reply(
                200,
                vec![("Content-Type".into(), content_type.clone())],
                body.clone(),
            ),
            false => Action::Forward,
        }
    })
}

#[test]
fn a_manifest_s_own_media_type_decides_and_the_other_kind_is_refused() {
    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("media-types");
    let archive = images::docker_archive(dir.path(), "example.com/app:v1");
    let image = format!("{}/types/app:v1", registry.host());
    let cache = TestCache::new();
    cache
        .run(&[
            "push",
            archive.to_str().unwrap(),
            &image,
            "--compress",
            "none",
        ])
        .success();
    let stored = images::registry_manifest(&image);
    assert!(stored.contains(OCI_MANIFEST), "{stored}");

    // The same kind under the Docker spelling: the body says what it is.
    let docker = "application/vnd.docker.distribution.manifest.v2+json";
    let front = manifest_served_as(&registry, stored.clone(), docker);
    let pulled = TestCache::new();
    pulled
        .run(&["pull", &format!("{}/types/app:v1", front.host())])
        .success();
    let inspected = pulled
        .run(&["inspect", &format!("{}/types/app:v1", front.host())])
        .success();
    assert!(
        inspected
            .stdout
            .contains(&format!("Media type:  {OCI_MANIFEST}")),
        "{}",
        inspected.stdout
    );

    // An image manifest that does not say, served as an index: refused, not kept as one.
    let mut unsaid: serde_json::Value = serde_json::from_str(&stored).unwrap();
    unsaid.as_object_mut().unwrap().remove("mediaType");
    let index = "application/vnd.oci.image.index.v1+json";
    let front = manifest_served_as(&registry, unsaid.to_string(), index);
    let refused = TestCache::new()
        .run(&["pull", &format!("{}/types/app:v1", front.host())])
        .exits(3);
    assert!(
        refused.stderr.contains("served as an index"),
        "{}",
        refused.stderr
    );
    // And one that says it is an image, served as an index, the same.
    let front = manifest_served_as(&registry, stored, index);
    TestCache::new()
        .run(&["pull", &format!("{}/types/app:v1", front.host())])
        .exits(3);
}

#[test]
fn a_file_named_like_a_cached_image_is_not_pushed_in_its_place() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("file-or-image");
    let cached = images::docker_archive(dir.path(), "demo/app:v1");
    let cache = TestCache::new();
    cache.run(&["extract", cached.to_str().unwrap()]).success();
    // Someone else's file, planted in the shared folder under the image's name.
    let shared = dir.join("shared");
    std::fs::create_dir_all(shared.join("demo")).unwrap();
    let other = TempDir::new("planted");
    let evil: images::Layer<'_> = &[("etc/evil", b"planted\n")];
    let planted = images::skopeo_archive(
        other.path(),
        "app.tar",
        "docker-archive",
        "evil/app:v1",
        &[evil],
    );
    std::fs::copy(&planted, shared.join("demo/app:v1")).unwrap();
    let push = |source: &str, target: &str| {
        let cache_dir = cache.path();
        let target = format!("{}/{target}", registry.host());
        let args = [
            "--cache-dir",
            cache_dir.to_str().unwrap(),
            "push",
            source,
            &target,
        ];
        Run::from(command(&args).current_dir(&shared).output().unwrap())
    };

    let refused = push("demo/app:v1", "pushed/app:v1").exits(2);
    for hint in ["./demo/app:v1", "docker.io/demo/app:v1", "sha256:"] {
        assert!(refused.stderr.contains(hint), "{hint}: {}", refused.stderr);
    }
    // One sentence, not the source's line indentation inside it.
    assert!(!refused.stderr.contains("  "), "{}", refused.stderr);
    push("./demo/app:v1", "pushed/file:v1").success();
    push("docker.io/demo/app:v1", "pushed/image:v1").success();
    let seen = |repository: &str| {
        let reference = format!("docker://{}/{repository}:v1", registry.host());
        images::skopeo_identity_with(&["--tls-verify=false"], &reference)
    };
    assert_eq!(
        seen("pushed/file"),
        images::skopeo_identity(&format!("docker-archive:{}", planted.display()))
    );
    assert_eq!(
        seen("pushed/image"),
        images::skopeo_identity(&format!("docker-archive:{}", cached.display()))
    );
}
