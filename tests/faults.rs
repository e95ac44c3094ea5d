//! Pulls and pushes through a front that injects faults before the real registry: a download
//! cut midway (a layer's, a config's), an upload cut midway, 503s, 429 with `Retry-After`, a
//! stalled response. Each run succeeds with the same result as a clean one, and resumes
//! rather than starting over.

mod support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::front::{Action, Front, unavailable_then_busy};
use support::images::{listed_identity, registry_config_digest, registry_digest, skopeo_identity};
use support::registry::{Setup, TestRegistry};
use support::tarball::noisy_archive;
use support::{TempDir, TestCache};

const LAYER: usize = 400_000;

/// A registry holding the noisy image (pushed uncompressed, so the big blob is `LAYER` bytes).
fn registry_with_image(dir: &TempDir) -> (TestRegistry, PathBuf) {
    let registry = TestRegistry::start(Setup::Plain);
    let archive = noisy_archive(dir.path(), LAYER);
    let target = format!("{}/faults/app:v1", registry.host());
    support::push_uncompressed(&archive, &target);
    (registry, archive)
}

fn is_big_blob_get(request: &support::front::Request) -> bool {
    request.method == "GET" && request.target.contains("/blobs/sha256:")
}

#[test]
fn a_download_cut_midway_resumes_with_range() {
    let dir = TempDir::new("cut-download");
    let (registry, archive) = registry_with_image(&dir);
    let front = Front::start(registry.port(), |request, first| {
        match is_big_blob_get(request) && first {
            true => Action::CutResponse(150_000),
            false => Action::Forward,
        }
    });
    let cache = TestCache::new();
    cache
        .run(&["pull", &format!("{}/faults/app:v1", front.host())])
        .success();
    assert_eq!(
        listed_identity(&cache.list()[0]),
        skopeo_identity(&format!("docker-archive:{}", archive.display()))
    );
    let ranged: Vec<String> = front
        .seen()
        .into_iter()
        .filter_map(|(_, _, range)| range)
        .collect();
    assert_eq!(
        ranged.len(),
        1,
        "one Range request after the cut: {ranged:?}"
    );
    let offset: u64 = ranged[0]
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(offset > 0, "{ranged:?}");
    assert!(
        front.bytes_down() < LAYER as u64 * 3 / 2,
        "fetched {} bytes for a {LAYER}-byte layer",
        front.bytes_down()
    );
}

#[test]
fn a_config_cut_midway_is_asked_for_again() {
    let dir = TempDir::new("cut-config");
    let (registry, _) = registry_with_image(&dir);
    let config = registry_config_digest(&format!("{}/faults/app:v1", registry.host()));
    let wanted = config.clone();
    let front = Front::start(registry.port(), move |request, first| {
        match request.method == "GET" && request.target.ends_with(&wanted) && first {
            true => Action::CutResponse(20),
            false => Action::Forward,
        }
    });
    // A config read whole (inspect, or a pull's --platform check), not copied as a blob.
    let run = (TestCache::new())
        .run(&[
            "inspect",
            "--config",
            &format!("{}/faults/app:v1", front.host()),
        ])
        .success();
    assert!(run.stderr.contains("retrying in"), "{}", run.stderr);
    assert_eq!(
        format!("sha256:{}", support::sha256(run.stdout.as_bytes())),
        config
    );
    let asked = (front.seen().iter())
        .filter(|(method, target, _)| method == "GET" && target.ends_with(&config))
        .count();
    assert_eq!(asked, 2, "the cut answer, then the whole one");
}

/// Pushes the noisy image in 100K chunks through a front that cuts the third PATCH after
/// `cut` body bytes; returns the front and what the push said.
fn push_with_third_patch_cut(cut: u64) -> (Front, TestRegistry, PathBuf, String) {
    let dir = TempDir::new("cut-upload");
    let registry = TestRegistry::start(Setup::Plain);
    let archive = noisy_archive(dir.path(), LAYER);
    let patches = AtomicUsize::new(0);
    let front = Front::start(registry.port(), move |request, _| {
        if request.method == "PATCH" && patches.fetch_add(1, Ordering::Relaxed) == 2 {
            Action::CutRequest(cut)
        } else {
            Action::Forward
        }
    });
    let target = format!("{}/faults/chunked:v1", front.host());
    let args = [
        "push",
        archive.to_str().unwrap(),
        &target,
        "--compress",
        "none",
        "--large-layer-threshold",
        "64K",
        "--chunk-size",
        "100K",
        "-v",
    ];
    let run = TestCache::new().run(&args).success();
    let pushed = skopeo_identity(&format!("docker-archive:{}", archive.display()));
    let seen = support::images::skopeo_identity_with(
        &["--tls-verify=false"],
        &format!("docker://{}/faults/chunked:v1", registry.host()),
    );
    assert_eq!(seen, pushed, "the pushed image is whole");
    (front, registry, archive, run.stderr)
}

fn count(front: &Front, method: &str, part: &str) -> usize {
    front
        .seen()
        .into_iter()
        .filter(|(m, target, _)| m == method && target.contains(part))
        .count()
}

#[test]
fn a_chunked_upload_cut_between_chunks_resumes_from_the_registrys_range() {
    let (front, _registry, _archive, said) = push_with_third_patch_cut(0);
    assert!(said.contains("retrying in"), "{said}");
    assert_eq!(
        count(&front, "GET", "/blobs/uploads/"),
        1,
        "the upload asked the registry how much it held"
    );
    assert_eq!(
        count(&front, "POST", "/blobs/uploads/"),
        3,
        "one session per blob, none started over\n{said}"
    );
    assert!(
        front.bytes_up() < LAYER as u64 * 11 / 10,
        "sent {} bytes for a {LAYER}-byte layer",
        front.bytes_up()
    );
}

#[test]
fn a_chunked_upload_cut_inside_a_chunk_starts_over_as_the_registry_says() {
    // Distribution cancels an upload whose last PATCH left part of its body behind: its status
    // answers 404, and the upload starts again in a new session. (When the status is asked
    // while the registry is still writing that part, it answers 204, the next PATCH is refused
    // as out of step, and the session is checked again: two checks, the same end.) Either way
    // the image arrives whole, which push_with_third_patch_cut checks with skopeo.
    let (front, _registry, _archive, said) = push_with_third_patch_cut(50_000);
    assert!(said.contains("retrying in"), "{said}");
    assert!(
        count(&front, "GET", "/blobs/uploads/") >= 1,
        "the session was checked before starting over"
    );
}

#[test]
fn server_errors_are_retried() {
    let dir = TempDir::new("503");
    let (registry, archive) = registry_with_image(&dir);
    let failing = |request: &support::front::Request, first: bool| match first
        && ["GET", "HEAD", "POST"].contains(&request.method.as_str())
    {
        true => Action::Respond(503, Vec::new()),
        false => Action::Forward,
    };
    let pull_front = Front::start(registry.port(), failing);
    let cache = TestCache::new();
    let run = cache
        .run(&["pull", &format!("{}/faults/app:v1", pull_front.host())])
        .success();
    assert!(
        run.stderr.contains("503"),
        "the retries are reported: {}",
        run.stderr
    );
    let expected = skopeo_identity(&format!("docker-archive:{}", archive.display()));
    assert_eq!(listed_identity(&cache.list()[0]), expected);

    let push_front = Front::start(registry.port(), failing);
    TestCache::new()
        .run(&[
            "push",
            archive.to_str().unwrap(),
            &format!("{}/faults/again:v1", push_front.host()),
        ])
        .success();
    let seen = support::images::skopeo_identity_with(
        &["--tls-verify=false"],
        &format!("docker://{}/faults/again:v1", registry.host()),
    );
    assert_eq!(seen, expected);
}

#[test]
fn too_many_requests_waits_as_told() {
    let dir = TempDir::new("429");
    let (registry, archive) = registry_with_image(&dir);
    let front = Front::start(registry.port(), |request, first| {
        match first && request.method == "HEAD" {
            true => Action::Respond(429, vec![("Retry-After".into(), "1".into())]),
            false => Action::Forward,
        }
    });
    let run = TestCache::new()
        .run(&[
            "push",
            archive.to_str().unwrap(),
            &format!("{}/faults/later:v1", front.host()),
        ])
        .success();
    assert!(
        run.stderr
            .contains("retrying in 1.0s (the registry asked to wait"),
        "Retry-After is honoured and said so: {}",
        run.stderr
    );
}

#[test]
fn a_stalled_response_times_out_and_is_retried() {
    let dir = TempDir::new("stall");
    let (registry, archive) = registry_with_image(&dir);
    // The stall is four times --timeout, and --timeout twice what a loaded 2-core machine
    // may take to answer an ordinary request on loopback.
    let front = Front::start(registry.port(), |request, first| {
        match is_big_blob_get(request) && first {
            true => Action::Stall(Duration::from_secs(8)),
            false => Action::Forward,
        }
    });
    let cache = TestCache::new();
    let run = cache
        .run(&[
            "pull",
            &format!("{}/faults/app:v1", front.host()),
            "--timeout",
            "2",
        ])
        .success();
    assert!(
        run.stderr.contains("timed out") || run.stderr.contains("imeout"),
        "{}",
        run.stderr
    );
    assert_eq!(
        listed_identity(&cache.list()[0]),
        skopeo_identity(&format!("docker-archive:{}", archive.display()))
    );
}

#[test]
fn a_registry_that_refuses_each_new_request_twice_takes_the_push_whole() {
    // Every new method and path answers 503, then 429 (Retry-After: 1), then works: more
    // failures per blob than --retry-attempts allows, but fewer in a row between the steps
    // that move it on. The session's status, after a PATCH refused, says `Range: 0-0`: it
    // holds nothing, and the upload goes on in that session from its first byte.
    let dir = TempDir::new("503-429");
    let registry = TestRegistry::start(Setup::Plain);
    let archive = noisy_archive(dir.path(), LAYER);
    let front = Front::start(registry.port(), unavailable_then_busy);
    let chunked = [
        "--compress",
        "none",
        "--large-layer-threshold",
        "64K",
        "--chunk-size",
        "100K",
    ];
    for (repository, flags) in [("streamed", &[][..]), ("chunked", &chunked[..])] {
        let push = |host: String, tag: &str| {
            let target = format!("{host}/faults/{repository}:{tag}");
            let args = [&["push", archive.to_str().unwrap(), &target][..], flags].concat();
            TestCache::new().run(&args).success();
        };
        push(registry.host(), "clean");
        push(front.host(), "refused");
        let digest = |tag: &str| {
            let reference = format!("{}/faults/{repository}:{tag}", registry.host());
            registry_digest(&["--tls-verify=false"], &reference)
        };
        assert_eq!(
            digest("refused"),
            digest("clean"),
            "{repository}: byte-exact"
        );
    }
}

/// How many requests the front saw with this method whose target contains `part`.
fn seen(front: &Front, method: &str, part: &str) -> usize {
    count(front, method, part)
}

#[test]
fn a_registry_that_always_answers_503_is_asked_within_the_budget() {
    // A request, or a blob that makes no headway, is tried --retry-attempts + 1 times; a blob
    // whose upload keeps answering its status but never takes a byte, four times as many.
    let dir = TempDir::new("503-budget");
    let (registry, archive) = registry_with_image(&dir);
    let always_503 = |matches: fn(&support::front::Request) -> bool| {
        move |request: &support::front::Request, _: bool| match matches(request) {
            true => Action::Respond(503, Vec::new()),
            false => Action::Forward,
        }
    };
    let budget = ["--retry-attempts", "2"];

    // The first call of a run.
    let front = Front::start(
        registry.port(),
        always_503(|r| r.method == "GET" && r.target == "/v2/"),
    );
    let image = format!("{}/faults/app:v1", front.host());
    TestCache::new()
        .run(&[&["pull", image.as_str()][..], &budget].concat())
        .exits(5);
    assert_eq!(seen(&front, "GET", "/v2/"), 3, "{:?}", front.seen());

    // A blob download.
    let front = Front::start(registry.port(), always_503(is_big_blob_get));
    let image = format!("{}/faults/app:v1", front.host());
    TestCache::new()
        .run(&[&["pull", image.as_str()][..], &budget].concat())
        .exits(5);
    let blob_gets = front
        .seen()
        .iter()
        .filter(|(m, t, _)| m == "GET" && t.contains("/blobs/sha256:"))
        .count();
    assert_eq!(
        blob_gets,
        3,
        "the first blob (the largest) 3 times: {:?}",
        front.seen()
    );

    // An upload that cannot even open a session: three POSTs, the failures in a row.
    let push = |front: &Front, repository: &str| {
        let target = format!("{}/faults/{repository}:v1", front.host());
        let args = ["push", archive.to_str().unwrap(), target.as_str()];
        TestCache::new()
            .run(&[&args[..], &budget].concat())
            .exits(5)
    };
    let front = Front::start(
        registry.port(),
        always_503(|r| r.target.contains("/blobs/uploads/")),
    );
    let said = push(&front, "sessionless").stderr;
    assert_eq!(seen(&front, "POST", "/blobs/uploads/"), 3, "{said}");
    assert!(
        said.contains("given up after 3 failures in a row"),
        "{said}"
    );

    // An upload whose session answers but never takes a byte: one session, asked for its
    // status before each new try, ended by the cap of 4 x 3 failures in all.
    let front = Front::start(registry.port(), always_503(|r| r.method == "PATCH"));
    let said = push(&front, "budget").stderr;
    assert_eq!(seen(&front, "PATCH", "/blobs/uploads/"), 12, "{said}");
    assert_eq!(seen(&front, "POST", "/blobs/uploads/"), 1, "{said}");
    assert_eq!(seen(&front, "GET", "/blobs/uploads/"), 11, "{said}");
    assert!(said.contains("given up after 12 failures in all"), "{said}");
}

#[test]
fn a_rate_limit_is_said_plainly_and_not_waited_for_for_hours() {
    let dir = TempDir::new("rate-limit");
    let (registry, _archive) = registry_with_image(&dir);
    let front = Front::start(registry.port(), |request, _| {
        match request.target.contains("/manifests/") {
            true => Action::Respond(
                429,
                vec![
                    ("RateLimit-Limit".into(), "100;w=21600".into()),
                    ("RateLimit-Remaining".into(), "0;w=21600".into()),
                    ("Retry-After".into(), "21600".into()),
                ],
            ),
            false => Action::Forward,
        }
    });
    let started = std::time::Instant::now();
    let run = TestCache::new()
        .run(&["pull", &format!("{}/faults/app:v1", front.host())])
        .exits(5);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a six-hour wait is not retried"
    );
    for words in [
        "HTTP 429",
        "rate limit: 100 requests per 6 h, 0 left",
        "the registry asks to wait 6 h (Retry-After)",
        &format!("docker-image-pusher login {}", front.host()),
    ] {
        assert!(run.stderr.contains(words), "{words}: {}", run.stderr);
    }
    assert!(!run.stderr.contains("retrying"), "{}", run.stderr);
}
