//! A hostile registry: a front before the real one that sends upload sessions, tag pages,
//! redirects and token realms to a second listener, which records every header it receives,
//! and answers with bodies longer than declared, tag lists that loop and indexes that repeat
//! a child. Credentials must never reach the second listener, and every read stays bounded.

mod support;

use std::path::PathBuf;

use support::front::{Action, Front, Request};
use support::images;
use support::registry::{ROBOT_PASSWORD, ROBOT_USER, Setup, TestRegistry};
use support::{TempDir, TestCache};

/// The robot's Basic `Authorization` value, as a storage host's own credentials would be.
fn robot_basic() -> String {
    let pair = format!("{ROBOT_USER}:{ROBOT_PASSWORD}");
    format!("Basic {}", support::base64(pair.as_bytes()))
}

/// Runs the binary with the robot's credentials (given on standard input) and checks that
/// the password was printed nowhere.
fn run_as_robot(cache: &TestCache, args: &[&str]) -> support::Run {
    let dir = TempDir::new("password");
    let password = dir.join("password");
    std::fs::write(&password, ROBOT_PASSWORD).unwrap();
    let mut all = args.to_vec();
    all.extend(["-u", ROBOT_USER, "--password-stdin"]);
    let run = cache.run_with_stdin(&all, &password);
    assert!(
        !run.stdout.contains(ROBOT_PASSWORD) && !run.stderr.contains(ROBOT_PASSWORD),
        "the password leaked:\n{}{}",
        run.stdout,
        run.stderr
    );
    run
}

/// A small image pushed to `registry` as `hostile/app:v1`; returns the archive it came from.
fn pushed_image(registry: &TestRegistry, dir: &TempDir) -> PathBuf {
    let archive = images::docker_archive(dir.path(), "example.com/app:v1");
    let target = format!("{}/hostile/app:v1", registry.host());
    let cache = TestCache::new();
    match registry.needs_credentials() {
        true => run_as_robot(&cache, &["push", archive.to_str().unwrap(), &target]),
        false => cache.run(&["push", archive.to_str().unwrap(), &target]),
    }
    .success();
    archive
}

/// Asserts that no request `elsewhere` saw carried an `Authorization` header.
fn assert_no_credentials(elsewhere: &Front) {
    let saw = elsewhere.authorizations();
    assert!(
        saw.iter().all(Option::is_none),
        "credentials reached another host: {saw:?}"
    );
}

fn is_tag_list(request: &Request) -> bool {
    request.method == "GET" && request.target.contains("/tags/list")
}

#[test]
fn an_upload_session_on_another_host_gets_no_credentials() {
    let registry = TestRegistry::start(Setup::PlainBasic);
    // A storage host that takes uploads with its own credentials, as a signed URL would.
    let basic = robot_basic();
    let storage = Front::start(registry.port(), move |_, _| {
        Action::ForwardAs(basic.clone())
    });
    let storage_origin = format!("http://{}", storage.host());
    let front = Front::start(registry.port(), move |request, _| {
        match request.method == "POST" && request.target.contains("/blobs/uploads/") {
            true => Action::ForwardRelocated(storage_origin.clone()),
            false => Action::Forward,
        }
    });
    let dir = TempDir::new("upload-elsewhere");
    let archive = images::docker_archive(dir.path(), "example.com/app:v1");
    let target = format!("{}/hostile/app:v1", front.host());
    run_as_robot(
        &TestCache::new(),
        &["push", archive.to_str().unwrap(), &target],
    )
    .success();

    let uploads = storage.seen();
    assert!(
        uploads.iter().any(|(method, ..)| method == "PUT"),
        "the uploads went to the storage host: {uploads:?}"
    );
    assert_no_credentials(&storage);
    assert!(
        front.authorizations().iter().any(Option::is_some),
        "the registry itself was sent credentials"
    );
    let pulled = TestCache::new();
    run_as_robot(
        &pulled,
        &["pull", &format!("{}/hostile/app:v1", registry.host())],
    )
    .success();
    assert_eq!(
        images::listed_identity(&pulled.list()[0]),
        images::skopeo_identity(&format!("docker-archive:{}", archive.display()))
    );
}

#[test]
fn a_tag_page_on_another_host_is_not_followed() {
    let registry = TestRegistry::start(Setup::PlainBasic);
    let elsewhere = Front::start(registry.port(), |_, _| Action::Forward);
    let next = format!(
        "http://{}/v2/hostile/app/tags/list?last=a",
        elsewhere.host()
    );
    let front = Front::start(registry.port(), move |request, _| {
        match is_tag_list(request) {
            true => Action::Reply(
                200,
                vec![
                    ("Content-Type".into(), "application/json".into()),
                    ("Link".into(), format!("<{next}>; rel=\"next\"")),
                ],
                r#"{"name":"hostile/app","tags":["a"]}"#.into(),
            ),
            false => Action::Forward,
        }
    });
    let run = run_as_robot(
        &TestCache::new(),
        &["tags", &format!("{}/hostile/app", front.host())],
    )
    .exits(5);
    assert!(run.stderr.contains("another host"), "{}", run.stderr);
    assert!(
        elsewhere.seen().is_empty(),
        "the other host was asked: {:?}",
        elsewhere.seen()
    );
}

#[test]
fn a_storage_host_that_asks_for_credentials_gets_none() {
    let registry = TestRegistry::start(Setup::PlainBasic);
    let dir = TempDir::new("storage-401");
    pushed_image(&registry, &dir);
    // The storage host a blob download is redirected to answers 401 and names a token
    // realm on a third host.
    let realm_host = Front::start(registry.port(), |_, _| Action::Forward);
    let realm = format!("http://{}/token", realm_host.host());
    let storage = Front::start(registry.port(), move |_, _| {
        Action::Respond(
            401,
            vec![(
                "WWW-Authenticate".into(),
                format!("Bearer realm=\"{realm}\",service=\"storage\""),
            )],
        )
    });
    let storage_host = storage.host();
    let front = Front::start(registry.port(), move |request, _| {
        match request.method == "GET" && request.target.contains("/blobs/sha256:") {
            true => Action::Redirect(format!("http://{storage_host}{}", request.target)),
            false => Action::Forward,
        }
    });
    let run = run_as_robot(
        &TestCache::new(),
        &["pull", &format!("{}/hostile/app:v1", front.host())],
    )
    .exits(4);
    assert!(run.stderr.contains("answered HTTP 401"), "{}", run.stderr);
    assert_no_credentials(&storage);
    assert!(
        realm_host.seen().is_empty(),
        "the storage host's realm was asked for a token: {:?}",
        realm_host.seen()
    );
}

#[test]
fn a_blob_longer_than_declared_is_refused_and_not_kept() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("endless");
    pushed_image(&registry, &dir);
    let front = Front::start(registry.port(), |request, _| {
        match request.method == "GET" && request.target.contains("/blobs/sha256:") {
            true => Action::Endless,
            false => Action::Forward,
        }
    });
    let image = format!("{}/hostile/app:v1", front.host());
    let cache = TestCache::new();
    let run = cache.run(&["pull", &image]).exits(3);
    assert!(run.stderr.contains("more than"), "{}", run.stderr);
    assert!(
        !cache.path().exists(),
        "a cache made by a run that stored nothing is left behind"
    );
    // Into a cache that exists: nothing of the lying blob is kept to resume from.
    std::fs::create_dir_all(cache.path()).unwrap();
    cache.run(&["pull", &image]).exits(3);
    let kept = support::files_under(&cache.path())
        .iter()
        .map(|path| std::fs::metadata(path).unwrap().len())
        .sum::<u64>();
    assert_eq!(kept, 0, "bytes of the lying blob were kept");
}

#[test]
fn a_config_longer_than_declared_is_refused_without_asking_again() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("endless-config");
    pushed_image(&registry, &dir);
    let config = images::registry_config_digest(&format!("{}/hostile/app:v1", registry.host()));
    let wanted = config.clone();
    let front = Front::start(registry.port(), move |request, _| {
        match request.method == "GET" && request.target.ends_with(&wanted) {
            true => Action::Endless,
            false => Action::Forward,
        }
    });
    // Read whole (inspect, or a pull's --platform check), not copied as a blob.
    let run = (TestCache::new())
        .run(&[
            "inspect",
            "--config",
            &format!("{}/hostile/app:v1", front.host()),
        ])
        .exits(3);
    assert!(run.stderr.contains("is larger than"), "{}", run.stderr);
    let asked = (front.seen().iter())
        .filter(|(method, target, _)| method == "GET" && target.ends_with(&config))
        .count();
    assert_eq!(
        asked, 1,
        "a config that lies is bad input, not worth asking again"
    );
}

#[test]
fn a_tag_list_that_links_back_ends_with_each_tag_once() {
    let registry = TestRegistry::start(Setup::Plain);
    let front = Front::start(registry.port(), |request, _| {
        if !is_tag_list(request) {
            return Action::Forward;
        }
        let (tag, next) = match request.target.contains("last=") {
            false => ("a", "/v2/hostile/app/tags/list?last=a"),
            true => ("b", "/v2/hostile/app/tags/list"),
        };
        Action::Reply(
            200,
            vec![
                ("Content-Type".into(), "application/json".into()),
                ("Link".into(), format!("<{next}>; rel=\"next\"")),
            ],
            format!(r#"{{"name":"hostile/app","tags":["{tag}"]}}"#),
        )
    });
    let run = TestCache::new()
        .run(&["tags", &format!("{}/hostile/app", front.host())])
        .success();
    assert_eq!(run.stdout, "a\nb\n");
    assert!(run.stderr.contains("already read"), "{}", run.stderr);
    assert_eq!(
        front
            .seen()
            .iter()
            .filter(|(_, t, _)| t.contains("tags"))
            .count(),
        2
    );
}

#[test]
fn an_index_that_repeats_a_child_fetches_it_once() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("repeated-child");
    pushed_image(&registry, &dir);
    let raw = images::registry_manifest(&format!("{}/hostile/app:v1", registry.host()));
    let child: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let entry = serde_json::json!({
        "mediaType": child["mediaType"],
        "digest": format!("sha256:{}", support::sha256(raw.as_bytes())),
        "size": raw.len(),
        "platform": {"os": "linux", "architecture": "amd64"},
    });
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": vec![entry; 50],
    })
    .to_string();
    let front = Front::start(registry.port(), move |request, _| {
        match request.target.ends_with("/manifests/repeated") {
            true => Action::Reply(
                200,
                vec![(
                    "Content-Type".into(),
                    "application/vnd.oci.image.index.v1+json".into(),
                )],
                index.clone(),
            ),
            false => Action::Forward,
        }
    });
    let cache = TestCache::new();
    cache
        .run(&[
            "pull",
            "--all-platforms",
            &format!("{}/hostile/app:repeated", front.host()),
        ])
        .success();
    let child_gets = front
        .seen()
        .iter()
        .filter(|(method, target, _)| method == "GET" && target.contains("/manifests/sha256:"))
        .count();
    assert_eq!(child_gets, 1, "{:?}", front.seen());
}
