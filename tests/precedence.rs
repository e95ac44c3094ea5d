//! Which of two claims decides: a manifest's own `mediaType` over the `Content-Type` it was
//! served with (the other kind refused).

mod support;

use support::front::{Action, Front};
use support::registry::{Setup, TestRegistry};
use support::{TempDir, TestCache, images};

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
