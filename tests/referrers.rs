//! Referrers (SBOMs, attestations, cosign signatures) carried by `copy` between registries:
//! to Distribution 2.8, which has no Referrers API (the fallback index at `sha256-<hex>`,
//! merged with what is there), and to a front that stands in for a registry WITH the API
//! (the manifests alone, no fallback tag). `--no-referrers` and `--referrers-type` choose;
//! a hostile source is refused or its lie left out. The referrers are made as oras and cosign
//! lay them out (see `support::referrers`); skopeo and sha256 check every byte at the target.

mod support;

use serde_json::{Value, json};
use support::front::{Action, Front};
use support::images::{self, images_with_a_shared_base, registry_manifest};
use support::referrers::{IN_TOTO, Manifest, Producer, SIMPLE_SIGNING, SPDX};
use support::referrers_api::ReferrersApi;
use support::registry::{Setup, TestRegistry};
use support::{TempDir, TestCache, sha256};

/// An image `app:v1` with an SBOM (listed in the fallback index) and a cosign signature.
struct Signed {
    image: Manifest,
    sbom: Manifest,
    signature: Manifest,
    fallback: Manifest,
}

/// Pushes a signed image to `registry` (directly) with its referrers through `host` (the
/// registry, or a front before it).
fn signed_image(dir: &TempDir, registry: &TestRegistry, host: &str) -> Signed {
    images_with_a_shared_base(dir.path(), registry, &[("app", "v1")]);
    let producer = Producer::new(host);
    let image = producer.fetch("app", "v1");
    let sbom = producer.sbom("app", &image, "app-v1");
    let signature = producer.cosign_signature("app", &image, "MEUCIQsigned");
    let fallback = producer.link_fallback("app", &image, &[&sbom]);
    Signed {
        image,
        sbom,
        signature,
        fallback,
    }
}

/// Runs `copy` of `from_host/image` to `to_host/to_image` with a fresh cache.
fn copy_image(from_host: &str, image: &str, to_host: &str, to_image: &str) -> support::Run {
    TestCache::new().run(&[
        "copy",
        &format!("{from_host}/{image}"),
        &format!("{to_host}/{to_image}"),
    ])
}

/// The fallback tag of a manifest.
fn fallback_tag(of: &Manifest) -> String {
    format!("sha256-{}", of.hex())
}

/// Checks that `reference` at the plain-HTTP `host` holds `expected`, byte for byte, as
/// skopeo reads it and by sha256.
fn holds(host: &str, reference: &str, expected: &Manifest) {
    let read = registry_manifest(&format!("{host}/{reference}"));
    assert_eq!(
        format!("sha256:{}", sha256(read.as_bytes())),
        expected.digest,
        "{host}/{reference}:\n{read}"
    );
    assert_eq!(read.as_bytes(), &expected.bytes[..], "{host}/{reference}");
}

/// The digests an index lists.
fn listed(index: &Manifest) -> Vec<String> {
    let index: Value = serde_json::from_slice(&index.bytes).unwrap();
    (index["manifests"].as_array().unwrap().iter())
        .map(|entry| entry["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_copy_to_a_registry_without_the_api_carries_every_referrer_byte_for_byte() {
    let (source, target) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let dir = TempDir::new("referrers-fallback");
    let signed = signed_image(&dir, &source, &source.host());
    let copied = copy_image(&source.host(), "app:v1", &target.host(), "app:v1").success();
    assert!(copied.stderr.contains("2 referrers"), "{}", copied.stderr);
    let at = target.host();
    holds(&at, "app:v1", &signed.image);
    holds(&at, &format!("app@{}", signed.sbom.digest), &signed.sbom);
    holds(
        &at,
        &format!("app:{}.sig", fallback_tag(&signed.image)),
        &signed.signature,
    );
    // Nothing was left out, so the source's own index is stored: the same digest.
    holds(
        &at,
        &format!("app:{}", fallback_tag(&signed.image)),
        &signed.fallback,
    );

    let json = TestCache::new()
        .run(&[
            "copy",
            "--json",
            &format!("{}/app:v1", source.host()),
            &format!("{}/again:v1", target.host()),
        ])
        .success();
    let result: Value = serde_json::from_str(json.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(result["referrers_copied"], 2, "{result}");
}

#[test]
fn a_copy_to_a_registry_with_the_api_pushes_the_referrers_and_no_fallback_tag() {
    let (source, registry) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    // Stands in for a registry WITH the Referrers API (Distribution 2.8 has none).
    let target = Front::with_referrers_api(registry.port(), ReferrersApi::new(10));
    let dir = TempDir::new("referrers-api");
    let signed = signed_image(&dir, &source, &source.host());
    copy_image(&source.host(), "app:v1", &target.host(), "app:v1").success();
    let at = registry.host();
    holds(&at, "app:v1", &signed.image);
    holds(&at, &format!("app@{}", signed.sbom.digest), &signed.sbom);
    holds(
        &at,
        &format!("app:{}.sig", fallback_tag(&signed.image)),
        &signed.signature,
    );
    assert_eq!(target.api().recorded(), 1, "the SBOM names its subject");
    let fallback = Producer::new(&at).try_fetch("app", &fallback_tag(&signed.image));
    assert!(fallback.is_none(), "no fallback tag: {fallback:?}");
    let writes: Vec<_> = (target.seen().into_iter())
        .filter(|(method, path, _)| method == "PUT" && path.contains("/manifests/sha256-"))
        .map(|(_, path, _)| path)
        .collect();
    assert_eq!(
        writes,
        [format!(
            "/v2/app/manifests/{}.sig",
            fallback_tag(&signed.image)
        )],
        "the cosign tag only"
    );
}

#[test]
fn a_fallback_index_at_the_target_is_merged_keeping_what_others_put_there() {
    let (source, target) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let dir = TempDir::new("referrers-merge");
    let signed = signed_image(&dir, &source, &source.host());
    let (from, to) = (
        format!("{}/app:v1", source.host()),
        format!("{}/app:v1", target.host()),
    );
    let cache = TestCache::new();
    cache.run(&["copy", "--no-referrers", &from, &to]).success();
    let theirs = Producer::new(&target.host());
    let their_sbom = theirs.sbom("app", &signed.image, "someone-else");
    theirs.link_fallback("app", &signed.image, &[&their_sbom]);

    cache.run(&["copy", &from, &to]).success();
    let merged = theirs.fetch("app", &fallback_tag(&signed.image));
    assert_eq!(
        listed(&merged),
        [their_sbom.digest.clone(), signed.sbom.digest.clone()],
        "theirs kept, ours added"
    );
    let index: Value = serde_json::from_slice(&merged.bytes).unwrap();
    assert_eq!(index["manifests"][1]["artifactType"], SPDX);
    holds(
        &target.host(),
        &format!("app@{}", signed.sbom.digest),
        &signed.sbom,
    );
    holds(
        &target.host(),
        &format!("app@{}", their_sbom.digest),
        &their_sbom,
    );
}

#[test]
fn no_referrers_carries_none_and_referrers_type_only_that_type() {
    let (source, target) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let dir = TempDir::new("referrers-choose");
    let signed = signed_image(&dir, &source, &source.host());
    let from = format!("{}/app:v1", source.host());
    let at = Producer::new(&target.host());
    let sig = format!("{}.sig", fallback_tag(&signed.image));

    let none = TestCache::new()
        .run(&[
            "copy",
            "--no-referrers",
            &from,
            &format!("{}/none:v1", target.host()),
        ])
        .success();
    assert!(!none.stderr.contains("referrer"), "{}", none.stderr);
    assert_eq!(at.fetch("none", "v1").digest, signed.image.digest);
    assert!(at.try_fetch("none", &signed.sbom.digest).is_none());
    assert!(at.try_fetch("none", &fallback_tag(&signed.image)).is_none());
    assert!(at.try_fetch("none", &sig).is_none());

    let sboms = format!("{}/sboms:v1", target.host());
    let only = TestCache::new()
        .run(&["copy", "--referrers-type", SPDX, &from, &sboms])
        .success();
    assert!(only.stderr.contains("1 referrer"), "{}", only.stderr);
    holds(
        &target.host(),
        &format!("sboms@{}", signed.sbom.digest),
        &signed.sbom,
    );
    assert!(at.try_fetch("sboms", &sig).is_none(), "the signature stays");
    holds(
        &target.host(),
        &format!("sboms:{}", fallback_tag(&signed.image)),
        &signed.fallback,
    );

    // cosign's signatures are chosen by their layer's type.
    let sigs = format!("{}/sigs:v1", target.host());
    TestCache::new()
        .run(&["copy", "--referrers-type", SIMPLE_SIGNING, &from, &sigs])
        .success();
    holds(&target.host(), &format!("sigs:{sig}"), &signed.signature);
    assert!(at.try_fetch("sigs", &signed.sbom.digest).is_none());
    assert!(at.try_fetch("sigs", &fallback_tag(&signed.image)).is_none());
}

/// An index `multi:v1` of amd64 and arm64 images, the arm64 one attested: (index, arm64
/// child, attestation).
fn attested_index(dir: &TempDir, registry: &TestRegistry) -> (Manifest, Manifest, Manifest) {
    attested_index_of(dir, registry, &["amd64", "arm64"])
}

/// An index `multi:v1` of images for `architectures`, the second one attested: (index, that
/// child, attestation).
fn attested_index_of(
    dir: &TempDir,
    registry: &TestRegistry,
    architectures: &[&str],
) -> (Manifest, Manifest, Manifest) {
    let (layout, children) = images::multi_platform_layout(dir.path(), architectures);
    images::skopeo_push(
        &format!("oci:{}:multi", layout.display()),
        &format!("{}/multi:v1", registry.host()),
        true,
    );
    let producer = Producer::new(&registry.host());
    let (index, arm64) = (
        producer.fetch("multi", "v1"),
        producer.fetch("multi", &children[1]),
    );
    let attestation = producer.attestation("multi", &arm64);
    producer.link_fallback("multi", &arm64, &[&attestation]);
    (index, arm64, attestation)
}

#[test]
fn an_attestation_of_one_child_travels_with_the_index_and_with_that_child_alone() {
    let (source, target) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let dir = TempDir::new("referrers-index");
    let (index, arm64, attestation) = attested_index(&dir, &source);
    let from = format!("{}/multi:v1", source.host());
    let at = target.host();

    TestCache::new()
        .run(&["copy", "--all-platforms", &from, &format!("{at}/whole:v1")])
        .success();
    holds(&at, "whole:v1", &index);
    holds(&at, &format!("whole@{}", attestation.digest), &attestation);
    let fallback = Producer::new(&at).fetch("whole", &fallback_tag(&arm64));
    assert_eq!(listed(&fallback), std::slice::from_ref(&attestation.digest));
    let entry: Value = serde_json::from_slice(&fallback.bytes).unwrap();
    assert_eq!(entry["manifests"][0]["artifactType"], IN_TOTO);

    TestCache::new()
        .run(&[
            "copy",
            "--platform",
            "linux/arm64",
            &from,
            &format!("{at}/one:v1"),
        ])
        .success();
    holds(&at, "one:v1", &arm64);
    holds(&at, &format!("one@{}", attestation.digest), &attestation);
    let fallback = Producer::new(&at).fetch("one", &fallback_tag(&arm64));
    assert_eq!(listed(&fallback), std::slice::from_ref(&attestation.digest));

    // Several platforms: a rewritten index, whose children keep their digests and so their
    // referrers.
    let (source, dir) = (
        TestRegistry::start(Setup::Plain),
        TempDir::new("referrers-three"),
    );
    let (index, arm64, attestation) =
        attested_index_of(&dir, &source, &["amd64", "arm64", "s390x"]);
    let from = format!("{}/multi:v1", source.host());
    let several = TestCache::new()
        .run(&[
            "copy",
            "--platform",
            "linux/arm64,linux/amd64",
            &from,
            &format!("{at}/several:v1"),
        ])
        .success();
    assert!(several.stderr.contains("1 referrer"), "{}", several.stderr);
    let rewritten = Producer::new(&at).fetch("several", "v1");
    assert_ne!(rewritten.digest, index.digest);
    assert_eq!(
        listed(&rewritten),
        listed(&index)[..2],
        "the two children, in the source's order"
    );
    holds(
        &at,
        &format!("several@{}", attestation.digest),
        &attestation,
    );
    let fallback = Producer::new(&at).fetch("several", &fallback_tag(&arm64));
    assert_eq!(listed(&fallback), std::slice::from_ref(&attestation.digest));
}

/// A source with the Referrers API whose answers `hook` turns hostile, before `registry`,
/// holding `app:v1` with an SBOM pushed through it; returns the front and the image.
fn hostile_source(
    dir: &TempDir,
    registry: &TestRegistry,
    hook: impl Fn(&str, &mut support::referrers_api::Page) + Send + Sync + 'static,
) -> (Front, Manifest) {
    let front = Front::with_referrers_api(registry.port(), ReferrersApi::with_hook(50, hook));
    images_with_a_shared_base(dir.path(), registry, &[("app", "v1"), ("app", "v2")]);
    let producer = Producer::new(&front.host());
    let image = producer.fetch("app", "v1");
    producer.sbom("app", &image, "app-v1");
    (front, image)
}

#[test]
fn a_source_listing_over_a_thousand_referrers_is_refused() {
    let (registry, target) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let dir = TempDir::new("referrers-many");
    let (front, _) = hostile_source(&dir, &registry, |_, page| {
        page.entries = (0..1001u32)
            .map(|i| {
                let digest = format!("sha256:{}", sha256(&i.to_le_bytes()));
                json!({"mediaType": support::referrers::OCI_MANIFEST, "digest": digest,
                    "size": 100, "artifactType": SPDX})
            })
            .collect();
    });
    let refused = copy_image(&front.host(), "app:v1", &target.host(), "app:v1").exits(3);
    assert!(
        refused.stderr.contains("--no-referrers"),
        "{}",
        refused.stderr
    );
}

#[test]
fn a_link_to_another_host_is_refused_and_never_followed() {
    let (registry, target) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let other = Front::start(registry.port(), |_, _| Action::Forward);
    let elsewhere = format!("http://{}", other.host());
    let dir = TempDir::new("referrers-link");
    let (front, _) = hostile_source(&dir, &registry, move |subject, page| {
        page.next = Some(format!("{elsewhere}/v2/app/referrers/{subject}?last=x"));
    });
    let refused = copy_image(&front.host(), "app:v1", &target.host(), "app:v1").exits(5);
    assert!(
        refused.stderr.contains("another host"),
        "{}",
        refused.stderr
    );
    assert!(other.seen().is_empty(), "{:?}", other.seen());
}

#[test]
fn a_referrer_naming_another_subject_is_left_out_with_a_warning() {
    let (registry, target) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let dir = TempDir::new("referrers-liar");
    let other_sbom: std::sync::Arc<std::sync::Mutex<Option<Value>>> = Default::default();
    let lie = other_sbom.clone();
    let (front, image) = hostile_source(&dir, &registry, move |_, page| {
        page.entries.extend(lie.lock().unwrap().clone());
    });
    let producer = Producer::new(&front.host());
    let v2 = producer.fetch("app", "v2");
    let foreign = producer.sbom("app", &v2, "app-v2");
    *other_sbom.lock().unwrap() = Some(foreign.entry());
    let copied = copy_image(&front.host(), "app:v1", &target.host(), "app:v1").success();
    let warned = format!("referrer {} is listed for {}", foreign.digest, image.digest);
    assert!(copied.stderr.contains(&warned), "{}", copied.stderr);
    assert!(copied.stderr.contains("1 referrer"), "{}", copied.stderr);
    let at = Producer::new(&target.host());
    assert!(at.try_fetch("app", &foreign.digest).is_none());
}

#[test]
fn looking_for_referrers_of_an_image_without_them_costs_at_most_five_requests() {
    let (source, target) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let dir = TempDir::new("referrers-cost");
    images_with_a_shared_base(dir.path(), &source, &[("app", "v1")]);
    let requests = |flags: &[&str], repository: &str| {
        let from = Front::start(source.port(), |_, _| Action::Forward);
        let to = Front::start(target.port(), |_, _| Action::Forward);
        let (image, copy) = (
            format!("{}/app:v1", from.host()),
            format!("{}/{repository}:v1", to.host()),
        );
        let args = [&["copy"][..], flags, &[&image, &copy]].concat();
        TestCache::new().run(&args).success();
        (from.seen().len() + to.seen().len(), from.seen())
    };
    let (without, _) = requests(&["--no-referrers"], "off");
    let (with, asked) = requests(&[], "on");
    assert!(
        with <= without + 5,
        "{with} requests with referrers, {without} without: {asked:#?}"
    );
}

#[test]
fn a_source_with_the_api_is_read_page_by_page() {
    let (registry, target) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    // Stands in for a registry WITH the Referrers API, one referrer a page.
    let front = Front::with_referrers_api(registry.port(), ReferrersApi::new(1));
    let dir = TempDir::new("referrers-pages");
    images_with_a_shared_base(dir.path(), &registry, &[("app", "v1")]);
    let producer = Producer::new(&front.host());
    let image = producer.fetch("app", "v1");
    let made = [
        producer.sbom("app", &image, "first"),
        producer.attestation("app", &image),
        producer.sbom("app", &image, "second"),
    ];
    // The stand-in filters as the API says.
    let listing = support::tool(
        "curl",
        &[
            "-sSf",
            "-D",
            "-",
            &format!(
                "http://{}/v2/app/referrers/{}?artifactType=application/spdx%2Bjson",
                front.host(),
                image.digest
            ),
        ],
    );
    assert!(
        listing.contains("OCI-Filters-Applied: artifactType"),
        "{listing}"
    );
    assert!(
        listing.contains("rel=\"next\"") && !listing.contains(IN_TOTO),
        "{listing}"
    );

    let copied = copy_image(&front.host(), "app:v1", &target.host(), "app:v1").success();
    assert!(copied.stderr.contains("3 referrers"), "{}", copied.stderr);
    let fallback = Producer::new(&target.host()).fetch("app", &fallback_tag(&image));
    let digests: Vec<String> = made.iter().map(|m| m.digest.clone()).collect();
    assert_eq!(listed(&fallback), digests);
    for referrer in &made {
        holds(
            &target.host(),
            &format!("app@{}", referrer.digest),
            referrer,
        );
    }
    let pages = (front.seen().iter())
        .filter(|(method, path, _)| method == "GET" && path.contains("/referrers/"))
        .filter(|(_, path, _)| path.contains("last="))
        .count();
    assert_eq!(pages, 2, "pages after the first: {:#?}", front.seen());
}

#[test]
fn inspect_lists_the_referrers_of_an_image_and_of_each_child_of_an_index() {
    let registry = TestRegistry::start(Setup::Plain);
    let (dir, other) = (
        TempDir::new("referrers-inspect"),
        TempDir::new("inspect-index"),
    );
    let signed = signed_image(&dir, &registry, &registry.host());
    let (_, arm64, attestation) = attested_index(&other, &registry);
    let cache = TestCache::new();

    let image = format!("{}/app:v1", registry.host());
    let json = cache
        .run(&["inspect", "--referrers", "--json", &image])
        .success();
    let said: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(said["digest"], signed.image.digest.as_str());
    let rows = said["referrers"].as_array().unwrap();
    let row = |digest: &str| {
        (rows.iter())
            .find(|row| row["digest"] == digest)
            .unwrap_or_else(|| panic!("{digest} in {said}"))
    };
    let sbom = row(&signed.sbom.digest);
    assert_eq!(sbom["artifact_type"], SPDX);
    assert_eq!(sbom["size"], signed.sbom.bytes.len());
    assert_eq!(sbom["created"], "2026-01-02T03:04:05Z");
    assert_eq!(sbom["subject"]["of"], "image");
    let signature = row(&signed.signature.digest);
    assert_eq!(
        signature["tag"],
        format!("{}.sig", fallback_tag(&signed.image))
    );
    assert_eq!(
        signature["artifact_type"],
        support::referrers::SIMPLE_SIGNING
    );
    assert_eq!(rows.len(), 2, "{said}");

    let table = cache
        .run(&[
            "inspect",
            "--referrers",
            &format!("{}/multi:v1", registry.host()),
        ])
        .success();
    let line = (table.stdout.lines())
        .find(|line| line.starts_with(&attestation.digest[..19]))
        .unwrap_or_else(|| panic!("{}", table.stdout));
    assert!(
        line.contains("linux/arm64") && line.ends_with(IN_TOTO),
        "{line}"
    );
    assert_eq!(
        table.stdout.lines().count(),
        2,
        "one referrer: {}",
        table.stdout
    );
    let child = format!("{}/multi@{}", registry.host(), arm64.digest);
    let alone = cache.run(&["inspect", "--referrers", &child]).success();
    assert!(
        alone.stdout.contains(&attestation.digest[..19]),
        "{}",
        alone.stdout
    );
    let none = cache
        .run(&["inspect", "--referrers", "--raw", &image])
        .exits(2);
    assert!(none.stderr.contains("one or the other"), "{}", none.stderr);
}

#[test]
fn a_signature_of_an_sbom_travels_with_it_at_its_own_tag() {
    let (source, target) = (
        TestRegistry::start(Setup::Plain),
        TestRegistry::start(Setup::Plain),
    );
    let dir = TempDir::new("referrers-deep");
    let signed = signed_image(&dir, &source, &source.host());
    let sbom_signature =
        Producer::new(&source.host()).cosign_signature("app", &signed.sbom, "MEUCIQsbom");
    let copied = copy_image(&source.host(), "app:v1", &target.host(), "app:v1").success();
    assert!(copied.stderr.contains("3 referrers"), "{}", copied.stderr);
    let tag = format!("app:{}.sig", fallback_tag(&signed.sbom));
    holds(&target.host(), &tag, &sbom_signature);
}
