//! Small bodies from a hostile registry and token server: token lifetimes out of any range,
//! manifests, tag pages and token answers cut short or trickled a byte at a time, and a token
//! server that asks to be given time. Each run ends, by itself, with the exit code the
//! failure calls for: retried and successful when the failure passes, exit 5 when it does not.

mod support;

use std::time::{Duration, Instant};

use support::front::{Action, Front, Request};
use support::images;
use support::registry::{Setup, TestRegistry};
use support::{TempDir, TestCache};

/// A plain registry holding a small image as `deadlines/app:v1`.
fn registry_with_image(dir: &TempDir) -> TestRegistry {
    let registry = TestRegistry::start(Setup::Plain);
    let archive = images::docker_archive(dir.path(), "example.com/app:v1");
    let target = format!("{}/deadlines/app:v1", registry.host());
    TestCache::new()
        .run(&["push", archive.to_str().unwrap(), &target])
        .success();
    registry
}

/// A front that asks for a Bearer token from `issuer` on every request without one, and
/// forwards the rest to `registry` (which takes any token: it asks for none).
fn bearer_front(registry: &TestRegistry, issuer: &Front) -> Front {
    let realm = format!("http://{}/token", issuer.host());
    Front::start(registry.port(), move |request, _| {
        match request.authorization {
            Some(_) => Action::Forward,
            None => Action::Respond(
                401,
                vec![(
                    "WWW-Authenticate".into(),
                    format!("Bearer realm=\"{realm}\",service=\"deadlines\""),
                )],
            ),
        }
    })
}

/// A token answer with this `expires_in` (as JSON text).
fn token_answer(expires_in: &str) -> Action {
    let body = format!(r#"{{"token":"t0k3n","expires_in":{expires_in}}}"#);
    let json = vec![("Content-Type".into(), "application/json".into())];
    Action::Reply(200, json, body)
}

fn is_manifest_get(request: &Request) -> bool {
    // Not a referrer's tag (`sha256-<hex>`), which a pull looks for after the image.
    request.method == "GET"
        && request.target.contains("/manifests/")
        && !request.target.contains("/manifests/sha256-")
}

/// Pulls `deadlines/app:v1` through `front` with these extra flags.
fn pull(front: &Front, flags: &[&str]) -> support::Run {
    let image = format!("{}/deadlines/app:v1", front.host());
    let mut args = vec!["pull", image.as_str()];
    args.extend_from_slice(flags);
    TestCache::new().run(&args)
}

#[test]
fn a_manifest_cut_halfway_is_a_network_failure_and_retried() {
    let dir = TempDir::new("cut-manifest");
    let registry = registry_with_image(&dir);
    let once = Front::start(registry.port(), |request, first| {
        match is_manifest_get(request) && first {
            true => Action::CutResponse(100),
            false => Action::Forward,
        }
    });
    let run = pull(&once, &[]).success();
    assert!(run.stderr.contains("retrying"), "{}", run.stderr);
    let always = Front::start(registry.port(), |request, _| {
        match is_manifest_get(request) {
            true => Action::CutResponse(100),
            false => Action::Forward,
        }
    });
    let run = pull(&always, &["--retry-attempts", "1"]).exits(5);
    assert!(run.stderr.contains("stopped short"), "{}", run.stderr);
    let tries = (always.seen().iter())
        .filter(|(method, target, _)| method == "GET" && target.contains("/manifests/"))
        .count();
    assert_eq!(tries, 2, "tried once more: {:?}", always.seen());
}

#[test]
fn a_tag_page_cut_halfway_is_retried() {
    let dir = TempDir::new("cut-tags");
    let registry = registry_with_image(&dir);
    let front = Front::start(registry.port(), |request, first| {
        match request.target.contains("/tags/list") && first {
            true => Action::CutResponse(10),
            false => Action::Forward,
        }
    });
    let repository = format!("{}/deadlines/app", front.host());
    let run = TestCache::new().run(&["tags", &repository]).success();
    assert!(run.stdout.contains("v1"), "{}", run.stdout);
    assert!(run.stderr.contains("retrying in"), "{}", run.stderr);

    // Cut every time, it is a network failure (exit 5, not bad input's 3), tried once more.
    let always = Front::start(registry.port(), |request, _| {
        match request.target.contains("/tags/list") {
            true => Action::ReplyHalf(
                200,
                vec![("Content-Type".into(), "application/json".into())],
                r#"{"name":"deadlines/app","tags":["v1"]}"#.into(),
            ),
            false => Action::Forward,
        }
    });
    let repository = format!("{}/deadlines/app", always.host());
    let run = TestCache::new()
        .run(&["tags", &repository, "--retry-attempts", "1"])
        .exits(5);
    assert!(run.stderr.contains("stopped short"), "{}", run.stderr);
    let tries = (always.seen().iter())
        .filter(|(_, target, _)| target.contains("/tags/list"))
        .count();
    assert_eq!(tries, 2, "tried once more: {:?}", always.seen());
}

#[test]
fn a_token_answer_cut_halfway_is_retried() {
    let dir = TempDir::new("cut-token");
    let registry = registry_with_image(&dir);
    let issuer = Front::start(registry.port(), |_, first| match first {
        true => Action::ReplyHalf(
            200,
            vec![("Content-Type".into(), "application/json".into())],
            r#"{"token":"t0k3n","expires_in":300}"#.into(),
        ),
        false => token_answer("300"),
    });
    let front = bearer_front(&registry, &issuer);
    let run = pull(&front, &[]).success();
    assert!(run.stderr.contains("retrying"), "{}", run.stderr);
    assert_eq!(issuer.seen().len(), 2, "{:?}", issuer.seen());
}

#[test]
fn a_trickled_manifest_meets_a_total_deadline_and_is_retried() {
    let dir = TempDir::new("trickle");
    let registry = registry_with_image(&dir);
    // A byte every 0.3 s never stalls for --timeout 1, and a manifest of a few hundred
    // bytes would take minutes: 10 × --timeout ends it after 10 s.
    let once = Front::start(registry.port(), |request, first| {
        match is_manifest_get(request) && first {
            true => Action::Trickle(Duration::from_millis(300)),
            false => Action::Forward,
        }
    });
    let started = Instant::now();
    let run = pull(&once, &["--timeout", "1", "--retry-attempts", "1"]).success();
    assert!(run.stderr.contains("within 10 s"), "{}", run.stderr);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(18), "took {took:?}");
}

#[test]
fn a_manifest_trickled_every_time_ends_the_run_as_a_network_failure() {
    let dir = TempDir::new("trickle-always");
    let registry = registry_with_image(&dir);
    let always = Front::start(registry.port(), |request, _| {
        match is_manifest_get(request) {
            true => Action::Trickle(Duration::from_millis(300)),
            false => Action::Forward,
        }
    });
    let started = Instant::now();
    let run = pull(&always, &["--timeout", "1", "--retry-attempts", "0"]).exits(5);
    assert!(run.stderr.contains("within 10 s"), "{}", run.stderr);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(18), "took {took:?}");
}

#[test]
fn a_token_lifetime_out_of_any_range_is_clamped() {
    let dir = TempDir::new("expires-in");
    let registry = registry_with_image(&dir);
    for expires_in in [
        "18446744073709551615",
        "9223372036854775807",
        "-5",
        "1.5",
        "1e300",
        "\"soon\"",
        "null",
    ] {
        let issuer = Front::start(registry.port(), move |_, _| token_answer(expires_in));
        let front = bearer_front(&registry, &issuer);
        let run = TestCache::new().run(&["pull", &format!("{}/deadlines/app:v1", front.host())]);
        assert_eq!(
            run.code, 0,
            "expires_in {expires_in}:\n{}{}",
            run.stdout, run.stderr
        );
        assert!(!issuer.seen().is_empty(), "no token was asked for");
    }
}

#[test]
fn a_token_server_asking_to_wait_is_waited_for() {
    let dir = TempDir::new("token-429");
    let registry = registry_with_image(&dir);
    let issuer = Front::start(registry.port(), |_, first| match first {
        true => Action::Respond(429, vec![("Retry-After".into(), "1".into())]),
        false => token_answer("300"),
    });
    let front = bearer_front(&registry, &issuer);
    let started = Instant::now();
    let run = pull(&front, &[]).success();
    assert!(
        run.stderr.contains("retrying in 1.0s") && run.stderr.contains("Retry-After"),
        "{}",
        run.stderr
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(issuer.seen().len(), 2, "{:?}", issuer.seen());
}
