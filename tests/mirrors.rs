//! Registry mirrors (`--registry-mirror REGISTRY=URL`, `DOCKER_PUSHER_REGISTRY_MIRRORS`):
//! images of REGISTRY are read from a pull-through cache first and keep their own names;
//! a mirror that is down or lacks the image gives way to the next and then to the registry;
//! pushes never go to a mirror. The mirror is Distribution itself with `proxy: remoteurl`, or
//! a plain registry holding images under a path, as a Harbor proxy project does.

mod support;

use support::images::{listed_identity, skopeo_identity, skopeo_identity_with, skopeo_push};
use support::registry::{DeadPort, Setup, TestRegistry};
use support::{Run, TempDir, TestCache, command};

/// Runs the binary with this cache and `DOCKER_PUSHER_REGISTRY_MIRRORS` set to `mirrors`.
fn run_with_mirrors_env(cache: &TestCache, args: &[&str], mirrors: &str) -> Run {
    let mut command = command(&["--cache-dir", cache.path().to_str().unwrap()]);
    command
        .args(args)
        .env("DOCKER_PUSHER_REGISTRY_MIRRORS", mirrors);
    Run::from(command.output().unwrap())
}

#[test]
fn a_pull_through_cache_serves_pulls_and_copies_under_the_registry_own_names() {
    let upstream = TestRegistry::start(Setup::Plain);
    let mirror = TestRegistry::start(Setup::PullThrough(upstream.port()));
    let dir = TempDir::new("mirror");
    let archive = support::access::archive(&dir);
    let original = skopeo_identity(&format!("docker-archive:{}", archive.display()));
    skopeo_push(
        &format!("docker-archive:{}", archive.display()),
        &format!("{}/team/app:v1", upstream.host()),
        false,
    );
    let flag = format!("{}=http://{}", upstream.host(), mirror.host());
    let image = format!("{}/team/app:v1", upstream.host());

    let cache = TestCache::new();
    let pulled = cache
        .run(&["pull", &image, "--registry-mirror", &flag, "--verbose"])
        .success();
    let served = format!("{image}: served by the mirror http://{}", mirror.host());
    assert!(pulled.stderr.contains(&served), "{}", pulled.stderr);
    assert!(
        mirror.requests("GET /v2/team/app/blobs/") > 0,
        "the blobs came from the mirror"
    );
    let listed = cache.list();
    assert_eq!(listed[0]["name"], image, "the registry's own name");
    assert_eq!(listed_identity(&listed[0]), original);

    // A push with the same mirror set goes to the registry; the mirror sees none of it.
    let pushed = format!("{}/team/app:v2", upstream.host());
    cache
        .run(&["push", &image, &pushed, "--registry-mirror", &flag])
        .success();
    assert_eq!(mirror.requests("POST /v2/"), 0);
    assert_eq!(mirror.requests("PUT /v2/"), 0);
    assert_eq!(
        skopeo_identity_with(&["--tls-verify=false"], &format!("docker://{pushed}")),
        original
    );

    // copy and sync read through the mirror too (from the environment here).
    let other = TestRegistry::start(Setup::Plain);
    let before = mirror.requests("GET /v2/team/app/manifests/");
    let copied = format!("{}/copied/app:v1", other.host());
    run_with_mirrors_env(&TestCache::new(), &["copy", &image, &copied], &flag).success();
    let list = dir.join("sync.list");
    let synced = format!("{}/synced/app:v1", other.host());
    std::fs::write(&list, format!("{image} {synced}\n")).unwrap();
    run_with_mirrors_env(
        &TestCache::new(),
        &["sync", "--file", list.to_str().unwrap()],
        &flag,
    )
    .success();
    assert!(mirror.requests("GET /v2/team/app/manifests/") >= before + 2);
    for target in [copied, synced] {
        assert_eq!(
            skopeo_identity_with(&["--tls-verify=false"], &format!("docker://{target}")),
            original
        );
    }
}

#[test]
fn mirrors_that_fail_or_lack_the_image_give_way_in_order() {
    let upstream = TestRegistry::start(Setup::Plain);
    let empty = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("mirror-fallback");
    let archive = support::access::archive(&dir);
    let image = format!("{}/team/app:v1", upstream.host());
    skopeo_push(
        &format!("docker-archive:{}", archive.display()),
        &image,
        false,
    );
    let dead = format!("127.0.0.1:{}", DeadPort::hold().port);

    let cache = TestCache::new();
    let pulled = cache
        .run(&[
            "pull",
            &image,
            "--registry-mirror",
            &format!("{}=http://{dead}", upstream.host()),
            "--registry-mirror",
            &format!("{}=http://{}", upstream.host(), empty.host()),
            "--retry-attempts",
            "0",
            "--verbose",
        ])
        .success();
    for said in [
        format!("mirror http://{dead} is not used in this run"),
        format!("{image}: not on the mirror http://{}", empty.host()),
        format!("{image}: served by {}", upstream.host()),
    ] {
        assert!(pulled.stderr.contains(&said), "{said}:\n{}", pulled.stderr);
    }
    assert_eq!(
        listed_identity(&cache.list()[0]),
        skopeo_identity(&format!("docker-archive:{}", archive.display()))
    );
}

#[test]
fn a_mirror_with_a_path_serves_docker_hub_names_with_no_way_out() {
    // A Harbor-style proxy project: the images under `dockerhub/`, and Docker Hub unreachable
    // (nothing here reaches the internet): busybox:1 can come only from the mirror.
    let mirror = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("mirror-hub");
    let archive = support::access::archive(&dir);
    skopeo_push(
        &format!("docker-archive:{}", archive.display()),
        &format!("{}/dockerhub/library/busybox:1", mirror.host()),
        false,
    );
    let cache = TestCache::new();
    cache
        .run(&[
            "pull",
            "busybox:1",
            "--registry-mirror",
            &format!("docker.io=http://{}/dockerhub", mirror.host()),
        ])
        .success();
    assert_eq!(cache.list()[0]["name"], "docker.io/library/busybox:1");

    let error = cache
        .run(&["pull", "busybox:1", "--registry-mirror", "docker.io"])
        .exits(2);
    assert!(
        error.stderr.contains("--registry-mirror docker.io: no '='"),
        "{}",
        error.stderr
    );
}

#[test]
fn a_mirror_never_gets_the_registry_credentials() {
    use support::front::{Action, Front};
    use support::registry::{ROBOT_PASSWORD, ROBOT_USER};
    let upstream = TestRegistry::start(Setup::PlainBasic);
    let holder = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("mirror-credentials");
    let archive = support::access::archive(&dir);
    let repository = "team/app:v1";
    skopeo_push(
        &format!("docker-archive:{}", archive.display()),
        &format!("{}/{repository}", holder.host()),
        false,
    );
    // The mirror is a front that records every Authorization it is sent.
    let mirror = Front::start(holder.port(), |_, _| Action::Forward);
    let image = format!("{}/{repository}", upstream.host());
    let flag = format!("{}=http://{}", upstream.host(), mirror.host());
    let cache = TestCache::new();
    cache
        .run(&[
            "pull",
            &image,
            "--registry-mirror",
            &flag,
            "-u",
            ROBOT_USER,
            "-p",
            ROBOT_PASSWORD,
        ])
        .success();
    assert_eq!(cache.list()[0]["name"], image);
    let sent = mirror.authorizations();
    assert!(!sent.is_empty(), "the mirror served the pull");
    assert!(sent.iter().all(Option::is_none), "{sent:?}");
}
