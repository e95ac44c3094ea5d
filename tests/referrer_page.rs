//! A registry without the Referrers API is asked which referrer tags of an image it has
//! (the fallback tag `sha256-<hex>`, cosign's `.sig`, `.att`, `.sbom`) with one page of its
//! tag list instead of a request per tag, and every referrer still comes across: from
//! Distribution 2.8 (which answers every tag, unsorted, ignoring `n` and `last`), from a front
//! that pages its tags lexically as Distribution 3 does, and, tag by tag as before, from one
//! that refuses the page. Each source sits behind a front that counts its requests.

mod support;

use support::TempDir;
use support::TestCache;
use support::front::{Action, Front, Request};
use support::images::images_with_a_shared_base;
use support::referrers::{Manifest, Producer};
use support::registry::{Setup, TestRegistry};

/// `app:v1` in `registry` with an SBOM (in its fallback index) and a cosign signature.
fn signed(dir: &TempDir, registry: &TestRegistry) -> (Manifest, Manifest) {
    images_with_a_shared_base(dir.path(), registry, &[("app", "v1")]);
    let producer = Producer::new(&registry.host());
    let image = producer.fetch("app", "v1");
    let sbom = producer.sbom("app", &image, "app-v1");
    let signature = producer.cosign_signature("app", &image, "MEUCIQsigned");
    producer.link_fallback("app", &image, &[&sbom]);
    (image, signature)
}

/// Copies `app:v1` from behind a front with `rule` to `target`; returns what the front saw.
fn copied_through(
    source: &TestRegistry,
    target: &TestRegistry,
    rule: impl Fn(&Request, bool) -> Action + Send + Sync + 'static,
) -> Vec<(String, String)> {
    let front = Front::start(source.port(), rule);
    let copied = TestCache::new()
        .run(&[
            "copy",
            &format!("{}/app:v1", front.host()),
            &format!("{}/app:v1", target.host()),
        ])
        .success();
    assert!(copied.stderr.contains("2 referrers"), "{}", copied.stderr);
    (front.seen().into_iter())
        .map(|(method, target, _)| (method, target))
        .collect()
}

/// The requests of `seen` for the referrer tags of `image` (`sha256-<hex>` and its suffixes).
fn referrer_tag_requests<'a>(
    seen: &'a [(String, String)],
    image: &Manifest,
) -> Vec<&'a (String, String)> {
    let tag = format!("/manifests/sha256-{}", image.hex());
    seen.iter()
        .filter(|(_, target)| target.contains(&tag))
        .collect()
}

/// Whether `target` asks for a page of tags.
fn tag_page(target: &str) -> bool {
    target.contains("/tags/list")
}

/// Checks that the copy read the fallback index and the signature, with a `GET` each and not
/// one request for a tag that is not there, and that the target holds the signature.
fn only_what_is_there(seen: &[(String, String)], image: &Manifest, target: &TestRegistry) {
    let asked = referrer_tag_requests(seen, image);
    let fallback = format!("/manifests/sha256-{}", image.hex());
    let signature = format!("{fallback}.sig");
    assert!(
        asked.iter().all(|(method, target)| method == "GET"
            && (target.ends_with(&fallback) || target.ends_with(&signature))),
        "{asked:#?}"
    );
    assert!(
        asked.iter().any(|(_, target)| target.ends_with(&signature)),
        "{asked:#?}"
    );
    let at = Producer::new(&target.host());
    assert!(
        at.try_fetch("app", &format!("sha256-{}.sig", image.hex()))
            .is_some()
    );
}

#[test]
fn one_page_of_tags_tells_which_referrer_tags_distribution_has() {
    let (source, target) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let dir = TempDir::new("referrer-page");
    let (image, _) = signed(&dir, &source);
    let seen = copied_through(&source, &target, |_, _| Action::Forward);
    only_what_is_there(&seen, &image, &target);
    assert!(seen.iter().any(|(_, target)| tag_page(target)), "{seen:#?}");
}

#[test]
fn a_registry_paging_its_tags_lexically_tells_the_same() {
    let (source, target) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let dir = TempDir::new("referrer-page-lexical");
    let (image, _) = signed(&dir, &source);
    // Tags that sort before and after the image's referrer tags, so that `last` matters.
    let producer = Producer::new(&source.host());
    for tag in ["latest", "sha256-0", "zeta"] {
        producer.put("app", Some(tag), &image);
    }
    let seen = copied_through(&source, &target, |request, _| {
        match tag_page(&request.target) {
            true => Action::Paginate,
            false => Action::Forward,
        }
    });
    only_what_is_there(&seen, &image, &target);
}

#[test]
fn a_registry_refusing_the_page_is_asked_tag_by_tag_and_asked_no_second_page() {
    let (source, target) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let dir = TempDir::new("referrer-page-refused");
    let (image, _) = signed(&dir, &source);
    let seen = copied_through(&source, &target, |request, _| {
        match tag_page(&request.target) {
            true => Action::Respond(400, Vec::new()),
            false => Action::Forward,
        }
    });
    let pages = seen.iter().filter(|(_, target)| tag_page(target)).count();
    assert_eq!(pages, 1, "{seen:#?}");
    let heads = (referrer_tag_requests(&seen, &image).into_iter())
        .filter(|(method, _)| method == "HEAD")
        .count();
    assert_eq!(heads, 3, "one HEAD per cosign tag: {seen:#?}");
}

#[test]
fn a_pull_of_an_image_without_referrers_asks_twice_after_its_blobs() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("referrer-page-pull");
    images_with_a_shared_base(dir.path(), &registry, &[("app", "v1")]);
    let pulled = |flags: &[&str]| {
        let front = Front::start(registry.port(), |_, _| Action::Forward);
        let image = format!("{}/app:v1", front.host());
        let args = [&["pull"][..], flags, &[&image]].concat();
        TestCache::new().run(&args).success();
        front.seen()
    };
    let without = pulled(&["--no-referrers"]);
    let with = pulled(&[]);
    let after: Vec<_> = with[without.len()..].iter().map(|seen| &seen.1).collect();
    assert_eq!(after.len(), 2, "{with:#?}");
    assert!(
        after[0].contains("/referrers/") && tag_page(after[1]),
        "{after:#?}"
    );
}

#[test]
fn with_several_workers_referrers_are_listed_while_the_blobs_move() {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
    let (source, target) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let dir = TempDir::new("referrer-page-ahead");
    let (image, _) = signed(&dir, &source);
    let copied = |flags: &[&str], repository: &str| {
        let times: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let seen = times.clone();
        // The blobs come at 2 MB/s: the base layer alone takes 0.4 s.
        let front = Front::start(source.port(), move |request, _| {
            let at = (request.target.clone(), Instant::now());
            seen.lock().unwrap().push(at);
            match request.target.contains("/blobs/") {
                true => Action::Throttle(2_000_000),
                false => Action::Forward,
            }
        });
        let (from, to) = (
            format!("{}/app:v1", front.host()),
            format!("{}/{repository}:v1", target.host()),
        );
        let args = [&["copy"][..], flags, &[&from, &to]].concat();
        let run = TestCache::new().run(&args).success();
        assert!(run.stderr.contains("2 referrers"), "{}", run.stderr);
        let times = times.lock().unwrap().clone();
        let when = |part: &str| {
            (times.iter())
                .find(|(target, _)| target.contains(part))
                .map(|(_, at)| *at)
                .unwrap_or_else(|| panic!("no {part}: {times:#?}"))
        };
        let first_blob = when("/blobs/");
        let listed = when(&format!("/referrers/sha256:{}", image.hex()));
        // The image's own blobs (its referrers' come after their listing).
        let manifest: serde_json::Value = serde_json::from_slice(&image.bytes).unwrap();
        let own: Vec<String> = (std::iter::once(&manifest["config"]))
            .chain(manifest["layers"].as_array().unwrap())
            .map(|blob| blob["digest"].as_str().unwrap().to_string())
            .collect();
        let last_blob = (times.iter())
            .filter(|(target, _)| own.iter().any(|digest| target.ends_with(digest.as_str())))
            .map(|(_, at)| *at)
            .max()
            .unwrap();
        (first_blob, listed, last_blob)
    };
    let (first_blob, listed, _) = copied(&["--max-concurrent", "4"], "ahead");
    assert!(
        listed.duration_since(first_blob).as_millis() < 300,
        "listed {:?} after the first blob was asked for",
        listed.duration_since(first_blob)
    );
    let (_, listed, last_blob) = copied(&[], "after");
    assert!(listed > last_blob, "one worker: listed after the blobs");
    let at = Producer::new(&target.host());
    assert!(
        at.try_fetch("ahead", &format!("sha256-{}.sig", image.hex()))
            .is_some()
    );
}
