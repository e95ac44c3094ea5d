//! Referrers carried by `sync` of whole repositories between Distribution registries (no
//! Referrers API: fallback indexes and cosign tags): the referrer tags travel with their
//! images, never as images of their own; a nightly re-run after a new cosign signature
//! brings it, and one after no change sends no manifest. The requests a second run of many
//! unchanged signed images costs are counted.

mod support;

use std::fs;

use serde_json::Value;
use support::referrers::{Manifest, Producer};
use support::registry::{Setup, TestRegistry};
use support::{TempDir, TestCache};

/// Runs `sync --json --file LIST` (and `flags`); returns each job's target and outcome.
fn sync(cache: &TestCache, list: &std::path::Path, flags: &[&str]) -> Vec<(String, String)> {
    let args = [
        &["sync", "--json", "--file", list.to_str().unwrap()][..],
        flags,
    ]
    .concat();
    let run = cache.run(&args).success();
    let last = run.stdout.lines().last().unwrap_or_default();
    let result: Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    let mut jobs: Vec<(String, String)> = (result["jobs"].as_array().unwrap().iter())
        .map(|job| {
            let target = job["target"].as_str().unwrap().to_string();
            (target, job["outcome"].as_str().unwrap().to_string())
        })
        .collect();
    jobs.sort();
    jobs
}

/// The access-log request lines of `registry` (`"METHOD /v2/..."`) after the first `from`.
fn requests_since(registry: &TestRegistry, from: usize) -> Vec<String> {
    (registry.log().lines())
        .filter_map(|line| {
            let quoted = line.split('"').nth(1)?;
            quoted.contains(" /v2/").then(|| quoted.to_string())
        })
        .skip(from)
        .collect()
}

/// `app:<tag>` with an SBOM in its fallback index and a cosign signature, made at `source`.
fn signed(producer: &Producer, tag: &str) -> (Manifest, Manifest) {
    let image = producer.image("app", tag, tag);
    let sbom = producer.sbom("app", &image, tag);
    producer.link_fallback("app", &image, &[&sbom]);
    let signature = producer.cosign_signature("app", &image, &format!("first-{tag}"));
    (image, signature)
}

#[test]
fn a_nightly_sync_brings_a_new_signature_and_an_unchanged_one_sends_no_manifest() {
    let (source, mirror) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let dir = TempDir::new("referrers-sync");
    let producer = Producer::new(&source.host());
    let (v1, _) = signed(&producer, "v1");
    producer.image("app", "v2", "v2");
    let list = dir.join("list");
    fs::write(
        &list,
        format!("{}/app {}/app\n", source.host(), mirror.host()),
    )
    .unwrap();
    let at = Producer::new(&mirror.host());
    let cache = TestCache::new();
    let target = |tag: &str| format!("{}/app:{tag}", mirror.host());
    let outcome = |tag: &str, what: &str| (target(tag), what.to_string());

    let first = sync(&cache, &list, &[]);
    assert_eq!(
        first,
        [outcome("v1", "copied"), outcome("v2", "copied")],
        "no sha256-* job"
    );
    let sig = format!("sha256-{}.sig", v1.hex());
    for tag in [format!("sha256-{}", v1.hex()), sig.clone()] {
        assert_eq!(
            at.fetch("app", &tag).bytes,
            producer.fetch("app", &tag).bytes,
            "{tag}"
        );
    }

    let before = requests_since(&mirror, 0).len();
    let unchanged = sync(&cache, &list, &[]);
    assert_eq!(
        unchanged,
        [outcome("v1", "present"), outcome("v2", "present")]
    );
    let sent = requests_since(&mirror, before);
    assert!(sent.iter().all(|r| !r.starts_with("PUT ")), "{sent:#?}");

    let resigned = producer.cosign_signature("app", &v1, "second-v1");
    let nightly = sync(&cache, &list, &[]);
    assert_eq!(nightly, [outcome("v1", "copied"), outcome("v2", "present")]);
    assert_eq!(
        at.fetch("app", &sig).bytes,
        resigned.bytes,
        "the new signature"
    );

    let before = requests_since(&mirror, 0).len();
    let again = sync(&cache, &list, &[]);
    assert_eq!(again, [outcome("v1", "present"), outcome("v2", "present")]);
    let sent = requests_since(&mirror, before);
    assert!(sent.iter().all(|r| !r.starts_with("PUT ")), "{sent:#?}");

    // Signatures left behind by --referrers-type are no news night after night.
    let sboms = dir.join("sboms");
    fs::write(
        &sboms,
        format!("{}/app {}/sboms\n", source.host(), mirror.host()),
    )
    .unwrap();
    let only = ["--referrers-type", support::referrers::SPDX];
    sync(&cache, &sboms, &only);
    assert!(
        at.try_fetch("sboms", &sig).is_none(),
        "the signature stays behind"
    );
    let before = requests_since(&mirror, 0).len();
    let jobs = sync(&cache, &sboms, &only);
    assert!(
        jobs.iter().all(|(_, outcome)| outcome == "present"),
        "{jobs:?}"
    );
    let sent = requests_since(&mirror, before);
    assert!(sent.iter().all(|r| !r.starts_with("PUT ")), "{sent:#?}");
}

#[test]
fn a_second_sync_of_unchanged_signed_images_costs_few_requests_more_per_image() {
    const IMAGES: usize = 20;
    let (source, mirror) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let dir = TempDir::new("referrers-sync-cost");
    let producer = Producer::new(&source.host());
    for n in 0..IMAGES {
        signed(&producer, &format!("v{n}"));
    }
    let list = dir.join("list");
    fs::write(
        &list,
        format!("{}/app {}/app\n", source.host(), mirror.host()),
    )
    .unwrap();
    let cache = TestCache::new();
    sync(&cache, &list, &[]);
    let second = |flags: &[&str]| {
        let (from, to) = (
            requests_since(&source, 0).len(),
            requests_since(&mirror, 0).len(),
        );
        let jobs = sync(&cache, &list, flags);
        assert!(
            jobs.iter().all(|(_, outcome)| outcome == "present"),
            "{jobs:?}"
        );
        requests_since(&source, from).len() + requests_since(&mirror, to).len()
    };
    let (today, with) = (second(&["--no-referrers"]), second(&[]));
    let extra = (with - today) as f64 / IMAGES as f64;
    eprintln!(
        "second sync of {IMAGES} signed images: {with} requests, {today} with \
         --no-referrers: {extra} more per image"
    );
    // Two referrer tags per image (the fallback index, the .sig), a HEAD of each at each end,
    // and the Referrers API asked once for the run (404: the source has none).
    assert!(
        with - today <= 4 * IMAGES + 1,
        "{extra} more requests per image"
    );
}

#[test]
fn a_sync_to_a_registry_with_the_api_sends_nothing_the_second_time() {
    let (source, registry) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    // Stands in for a registry WITH the Referrers API: it keeps no fallback index.
    let mirror = support::front::Front::with_referrers_api(
        registry.port(),
        support::referrers_api::ReferrersApi::new(10),
    );
    let dir = TempDir::new("referrers-sync-api");
    let producer = Producer::new(&source.host());
    let (v1, signature) = signed(&producer, "v1");
    let list = dir.join("list");
    fs::write(
        &list,
        format!("{}/app {}/app\n", source.host(), mirror.host()),
    )
    .unwrap();
    let cache = TestCache::new();
    sync(&cache, &list, &[]);
    assert_eq!(mirror.api().recorded(), 1, "the SBOM");
    let at = Producer::new(&registry.host());
    assert!(
        at.try_fetch("app", &format!("sha256-{}", v1.hex()))
            .is_none()
    );
    let sig = format!("sha256-{}.sig", v1.hex());
    assert_eq!(at.fetch("app", &sig).bytes, signature.bytes);

    let before = mirror.seen().len();
    let jobs = sync(&cache, &list, &[]);
    assert_eq!(
        jobs,
        [(format!("{}/app:v1", mirror.host()), "present".into())]
    );
    let sent = &mirror.seen()[before..];
    assert!(
        sent.iter().all(|(method, _, _)| method != "PUT"),
        "{sent:#?}"
    );
}

#[test]
fn a_line_naming_one_image_also_brings_its_new_sbom_and_signature() {
    let (source, mirror) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let dir = TempDir::new("referrers-sync-one");
    let producer = Producer::new(&source.host());
    let image = producer.image("app", "v1", "v1");
    let list = dir.join("list");
    fs::write(
        &list,
        format!("{0}/app:v1 {1}/app:v1\n", source.host(), mirror.host()),
    )
    .unwrap();
    let cache = TestCache::new();
    let target = format!("{}/app:v1", mirror.host());
    assert_eq!(
        sync(&cache, &list, &[]),
        [(target.clone(), "copied".into())]
    );
    assert_eq!(
        sync(&cache, &list, &[]),
        [(target.clone(), "present".into())]
    );

    // Signed and given an SBOM after it was mirrored.
    let sbom = producer.sbom("app", &image, "late");
    producer.link_fallback("app", &image, &[&sbom]);
    let signature = producer.cosign_signature("app", &image, "late-signature");
    assert_eq!(
        sync(&cache, &list, &[]),
        [(target.clone(), "copied".into())]
    );
    let at = Producer::new(&mirror.host());
    assert_eq!(at.fetch("app", &sbom.digest).bytes, sbom.bytes);
    let sig = format!("sha256-{}.sig", image.hex());
    assert_eq!(at.fetch("app", &sig).bytes, signature.bytes);
    assert_eq!(sync(&cache, &list, &[]), [(target, "present".into())]);
}
