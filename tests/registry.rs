//! `push` and `pull` against the real registry on loopback: plain HTTP, HTTPS with a test CA,
//! and HTTPS with htpasswd Basic authentication. skopeo, which this project did not write,
//! pushes the images we pull and reads back the images we push.

mod support;

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;

use support::front::{Action, Front};
use support::images::{self, listed_identity, two_layers};
use support::registry::{ROBOT_PASSWORD, ROBOT_USER, Setup, TestRegistry};
use support::tarball::{legacy_items, write_tar};
use support::{TempDir, TestCache, command, tool};

/// skopeo's flags for talking to a test registry: no TLS check (skopeo is the oracle here,
/// not the subject) and the robot's credentials where the registry needs them.
fn skopeo_flags(registry: &TestRegistry, direction: &str) -> Vec<String> {
    let mut flags = vec![format!("--{direction}tls-verify=false")];
    if registry.needs_credentials() {
        flags.push(format!("--{direction}creds={ROBOT_USER}:{ROBOT_PASSWORD}"));
    }
    flags
}

/// What skopeo sees in the registry: config digest and diff_ids.
fn skopeo_sees(registry: &TestRegistry, reference: &str) -> (String, Vec<String>) {
    let flags = skopeo_flags(registry, "");
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    images::skopeo_identity_with(&flags, &format!("docker://{}/{reference}", registry.host()))
}

/// The binary's arguments for this registry: its CA, and credentials when it needs them.
fn access(registry: &TestRegistry) -> Vec<String> {
    let mut args = registry.ca_args();
    if registry.needs_credentials() {
        args.extend([
            "-u".into(),
            ROBOT_USER.into(),
            "-p".into(),
            ROBOT_PASSWORD.into(),
        ]);
    }
    args
}

fn run_with(cache: &TestCache, args: &[&str], registry: &TestRegistry) -> support::Run {
    let access = access(registry);
    let mut all: Vec<&str> = args.to_vec();
    all.extend(access.iter().map(String::as_str));
    let run = cache.run(&all);
    assert!(
        !run.stdout.contains(ROBOT_PASSWORD) && !run.stderr.contains(ROBOT_PASSWORD),
        "the password leaked"
    );
    // Every JWT starts with the base64 of `{"`: none may be printed.
    assert!(
        !run.stdout.contains("eyJ") && !run.stderr.contains("eyJ"),
        "a token leaked"
    );
    run
}

/// A small image as a docker save archive.
fn archive(dir: &TempDir) -> PathBuf {
    images::docker_archive(dir.path(), "example.com/app:v1")
}

/// Push an archive, read it back with skopeo, pull it back with the tool, push it again (no
/// upload at all), and force an upload.
fn round_trip(setup: Setup) {
    let registry = TestRegistry::start(setup);
    let dir = TempDir::new("round-trip");
    let archive = archive(&dir);
    let source = images::skopeo_identity(&format!("docker-archive:{}", archive.display()));
    let target = format!("{}/team/app:v1", registry.host());
    let cache = TestCache::new();

    let pushed = run_with(
        &cache,
        &["push", archive.to_str().unwrap(), &target, "-v"],
        &registry,
    )
    .success();
    let head = format!("://{}/v2/team/app/blobs/sha256:", registry.host());
    assert!(
        pushed.stderr.contains("HEAD http") && pushed.stderr.contains(&head),
        "-v shows each request: {}",
        pushed.stderr
    );
    assert_eq!(
        skopeo_sees(&registry, "team/app:v1"),
        source,
        "skopeo reads back what was pushed"
    );
    let back = dir.join("back.tar");
    let flags = skopeo_flags(&registry, "src-");
    let mut copy: Vec<&str> = vec!["--insecure-policy", "copy", "--quiet"];
    copy.extend(flags.iter().map(String::as_str));
    let from = format!("docker://{target}");
    let to = format!("docker-archive:{}:example.com/app:v1", back.display());
    copy.extend([from.as_str(), to.as_str()]);
    tool("skopeo", &copy);
    assert_eq!(
        images::skopeo_identity(&format!("docker-archive:{}", back.display())),
        source
    );

    let pulled = TestCache::new();
    run_with(&pulled, &["pull", &target], &registry).success();
    assert_eq!(
        listed_identity(&pulled.list()[0]),
        source,
        "pulled back with the same config and diff_ids"
    );

    let uploads = registry.requests("POST /v2/team/app/blobs/uploads/");
    assert_eq!(uploads, 3, "config and two layers");
    let again = run_with(
        &cache,
        &["push", archive.to_str().unwrap(), &target],
        &registry,
    )
    .success();
    assert!(
        again.stderr.contains("0 blobs uploaded"),
        "{}",
        again.stderr
    );
    assert_eq!(
        registry.requests("POST /v2/team/app/blobs/uploads/"),
        uploads,
        "a second push uploads nothing"
    );
    assert_eq!(
        registry.requests("PATCH /v2/"),
        2,
        "only the first push streamed its two layers"
    );
    run_with(
        &cache,
        &["push", archive.to_str().unwrap(), &target, "--force-upload"],
        &registry,
    )
    .success();
    assert_eq!(
        registry.requests("POST /v2/team/app/blobs/uploads/"),
        uploads + 3,
        "--force-upload uploads again"
    );

    let extracted = TestCache::new();
    extracted
        .run(&["extract", archive.to_str().unwrap()])
        .success();
    let from_cache = format!("{}/team/from-cache:v1", registry.host());
    run_with(
        &extracted,
        &["push", "example.com/app:v1", &from_cache],
        &registry,
    )
    .success();
    assert_eq!(
        skopeo_sees(&registry, "team/from-cache:v1"),
        source,
        "pushed from the cache"
    );
    let scheme = if registry.ca_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let one_shot = format!("{scheme}://{}/team/one-shot:v1", registry.host());
    run_with(
        &extracted,
        &["-r", &one_shot, "-f", archive.to_str().unwrap()],
        &registry,
    )
    .success();
    assert_eq!(
        skopeo_sees(&registry, "team/one-shot:v1"),
        source,
        "pushed with the one-shot form"
    );

    pull_what_skopeo_pushed(&registry);
}

#[test]
fn round_trip_over_plain_http() {
    round_trip(Setup::Plain);
}

#[test]
fn round_trip_over_https_with_a_private_ca() {
    round_trip(Setup::Tls);
}

#[test]
fn round_trip_with_basic_authentication() {
    round_trip(Setup::Basic {
        username: ROBOT_USER,
        password: ROBOT_PASSWORD,
    });
}

#[test]
fn round_trip_with_bearer_tokens() {
    round_trip(Setup::Token);
}

#[test]
fn bearer_tokens_give_anonymous_users_pull_only_and_never_show() {
    let registry = TestRegistry::start(Setup::Token);
    let dir = TempDir::new("token");
    let archive = archive(&dir);
    let public = format!("{}/public/app:v1", registry.host());
    let writer = TestCache::new();
    run_with(
        &writer,
        &["push", archive.to_str().unwrap(), &public, "-v"],
        &registry,
    )
    .success();

    let ca = registry.ca_args();
    let ca: Vec<&str> = ca.iter().map(String::as_str).collect();
    let anonymous = TestCache::new();
    let pulled = anonymous
        .run(&[&["pull", public.as_str(), "-v"][..], &ca].concat())
        .success();
    assert!(
        !pulled.stderr.contains("eyJ"),
        "a token was printed: {}",
        pulled.stderr
    );
    let mine = format!("{}/public/mine:v1", registry.host());
    let denied = anonymous
        .run(&[&["push", archive.to_str().unwrap(), &mine][..], &ca].concat())
        .exits(4);
    assert!(
        denied.stderr.contains("UNAUTHORIZED"),
        "the registry's own code is shown: {}",
        denied.stderr
    );
    let private = anonymous.run(
        &[
            &["pull", &format!("{}/private/app:v1", registry.host())][..],
            &ca,
        ]
        .concat(),
    );
    assert_eq!(
        private.code, 4,
        "anonymous users may not pull outside public/: {}",
        private.stderr
    );
}

/// Pulls images skopeo pushed to `registry` in both manifest formats, and checks them.
fn pull_what_skopeo_pushed(registry: &TestRegistry) {
    let dir = TempDir::new("skopeo-pushed");
    let layout = images::umoci_layout(dir.path(), "src", &two_layers());
    for format in ["oci", "v2s2"] {
        let target = format!("{}/pushed/{format}:v1", registry.host());
        let mut copy = vec![
            "--insecure-policy".to_string(),
            "copy".into(),
            "--quiet".into(),
            "--format".into(),
            format.into(),
        ];
        copy.extend(skopeo_flags(registry, "dest-"));
        copy.extend([
            format!("oci:{}:src", layout.display()),
            format!("docker://{target}"),
        ]);
        tool(
            "skopeo",
            &copy.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let cache = TestCache::new();
        run_with(&cache, &["pull", &target], registry).success();
        let listed = cache.list();
        let expected_type = if format == "oci" {
            "application/vnd.oci.image.manifest.v1+json"
        } else {
            "application/vnd.docker.distribution.manifest.v2+json"
        };
        assert_eq!(listed[0]["media_type"], expected_type);
        assert_eq!(
            listed_identity(&listed[0]),
            skopeo_sees(registry, &format!("pushed/{format}:v1")),
            "{format}"
        );
        let again = run_with(&cache, &["pull", &target], registry).success();
        assert!(
            again.stderr.contains("0 blobs downloaded"),
            "cached blobs are not fetched again: {}",
            again.stderr
        );
    }
}

#[test]
fn a_multi_platform_index_resolves_to_the_platform_asked_for() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("multi");
    let (layout, digests) = images::multi_platform_layout(dir.path(), &["amd64", "arm64"]);
    let target = format!("{}/multi/app:v1", registry.host());
    images::skopeo_push(&format!("oci:{}:multi", layout.display()), &target, true);
    for (platform, expected) in [
        (None, &digests[0]),
        (Some("linux/arm64"), &digests[1]),
        (Some("linux/aarch64"), &digests[1]),
    ] {
        let cache = TestCache::new();
        let mut args = vec!["pull", target.as_str()];
        args.extend(platform.map(|p| ["--platform", p]).into_iter().flatten());
        cache.run(&args).success();
        assert_eq!(
            cache.list()[0]["manifest_digest"],
            expected.as_str(),
            "{platform:?}"
        );
    }
    let missing = TestCache::new()
        .run(&["pull", &target, "--platform", "linux/s390x"])
        .exits(6);
    assert!(
        missing.stderr.contains("linux/amd64, linux/arm64"),
        "{}",
        missing.stderr
    );

    let all = TestCache::new();
    all.run(&["pull", &target, "--all-platforms"]).success();
    let listed = all.list();
    assert_eq!(listed.len(), 3, "the index and both images");
    let index = listed
        .iter()
        .find(|image| image["name"] == target.as_str())
        .unwrap();
    let children: Vec<&str> = index["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(children, [digests[0].as_str(), digests[1].as_str()]);

    let copy = format!("{}/multi/copy:v1", registry.host());
    all.run(&["push", &target, &copy]).success();
    let raw: serde_json::Value = serde_json::from_str(&tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{copy}"),
        ],
    ))
    .unwrap();
    let pushed: Vec<&str> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        pushed, children,
        "the index went up after its children, unchanged"
    );
}

#[test]
fn compress_none_pushes_the_layers_as_they_are_under_an_oci_manifest() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("none");
    let archive = archive(&dir);
    let target = format!("{}/plain/app:v1", registry.host());
    support::push_uncompressed(&archive, &target);
    let raw: serde_json::Value = serde_json::from_str(&tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{target}"),
        ],
    ))
    .unwrap();
    assert_eq!(
        raw["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let source = images::skopeo_identity(&format!("docker-archive:{}", archive.display()));
    for (layer, diff_id) in raw["layers"].as_array().unwrap().iter().zip(&source.1) {
        assert_eq!(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar");
        assert_eq!(
            &layer["digest"], diff_id,
            "uncompressed: the digest is the diff_id"
        );
    }
    assert_eq!(skopeo_sees(&registry, "plain/app:v1"), source);
}

#[test]
fn the_seed_form_names_registry_repository_and_reference() {
    let registry = TestRegistry::start(Setup::Basic {
        username: ROBOT_USER,
        password: ROBOT_PASSWORD,
    });
    let dir = TempDir::new("seed");
    let archive = archive(&dir);
    let source = images::skopeo_identity(&format!("docker-archive:{}", archive.display()));
    let cache = TestCache::new();
    let registry_url = format!("https://{}", registry.host());
    let push = [
        "push",
        "--source",
        archive.to_str().unwrap(),
        "--registry",
        &registry_url,
        "--repository",
        "seed/form",
        "--reference",
        "v3",
    ];
    run_with(&cache, &push, &registry).success();
    assert_eq!(skopeo_sees(&registry, "seed/form:v3"), source);
    let pull = [
        "pull",
        "--registry",
        &registry_url,
        "--repository",
        "seed/form",
        "--reference",
        "v3",
    ];
    run_with(&cache, &pull, &registry).success();
    assert!(
        cache
            .list()
            .iter()
            .any(|image| image["name"] == format!("{}/seed/form:v3", registry.host()))
    );
}

#[test]
fn credentials_come_from_flags_the_environment_or_stdin_and_never_show() {
    let registry = TestRegistry::start(Setup::Basic {
        username: ROBOT_USER,
        password: ROBOT_PASSWORD,
    });
    let dir = TempDir::new("credentials");
    let archive = archive(&dir);
    let cache = TestCache::new();
    let target = |n: u32| format!("{}/creds/app:v{n}", registry.host());
    let ca = registry.ca_cert.clone().unwrap();
    let base = |target: &str| {
        let mut c = command(&[
            "--cache-dir",
            cache.path().to_str().unwrap(),
            "push",
            "-v",
            archive.to_str().unwrap(),
            target,
            "--ca-cert",
            ca.to_str().unwrap(),
        ]);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    };
    let check = |output: std::process::Output, expect: i32| {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(output.status.code(), Some(expect), "{all}");
        assert!(!all.contains(ROBOT_PASSWORD), "the password leaked: {all}");
        all
    };

    let mut from_env = base(&target(1));
    from_env
        .env("DOCKER_PUSHER_USERNAME", ROBOT_USER)
        .env("DOCKER_PUSHER_PASSWORD", ROBOT_PASSWORD);
    check(from_env.output().unwrap(), 0);

    let mut from_stdin = base(&target(2));
    from_stdin
        .args(["-u", ROBOT_USER, "--password-stdin"])
        .stdin(Stdio::piped());
    let mut child = from_stdin.spawn().unwrap();
    writeln!(child.stdin.take().unwrap(), "{ROBOT_PASSWORD}").unwrap();
    check(child.wait_with_output().unwrap(), 0);

    let mut wrong = base(&target(3));
    wrong.args(["-u", ROBOT_USER, "-p", "not-the-password"]);
    let said = check(wrong.output().unwrap(), 4);
    assert!(
        said.contains("UNAUTHORIZED"),
        "the registry's own code is shown: {said}"
    );

    let anonymous = check(base(&target(4)).output().unwrap(), 4);
    assert!(anonymous.contains("401"), "{anonymous}");
}

#[test]
fn tls_needs_the_ca_or_an_explicit_skip() {
    let registry = TestRegistry::start(Setup::Tls);
    let dir = TempDir::new("tls");
    let archive = archive(&dir);
    let target = format!("{}/tls/app:v1", registry.host());
    let cache = TestCache::new();
    let refused = cache
        .run(&["push", archive.to_str().unwrap(), &target])
        .exits(5);
    assert!(
        refused.stderr.contains("--ca-cert"),
        "the error says what to do: {}",
        refused.stderr
    );
    let skipped = cache
        .run(&["push", archive.to_str().unwrap(), &target, "--skip-tls"])
        .success();
    assert!(
        skipped.stderr.contains("warning: --skip-tls"),
        "{}",
        skipped.stderr
    );
}

#[test]
fn a_dry_run_sends_no_upload_and_no_manifest() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("dry");
    let archive = archive(&dir);
    let target = format!("{}/dry/app:v1", registry.host());
    let run = TestCache::new()
        .run(&["push", archive.to_str().unwrap(), &target, "--dry-run"])
        .success();
    assert!(run.stderr.contains("would push"), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("would copy sha256:").count(),
        3,
        "each blob is reported: {}",
        run.stderr
    );
    assert_eq!(registry.requests("POST /v2/"), 0);
    assert_eq!(registry.requests("PUT /v2/"), 0);
    let pulled = TestCache::new();
    pulled.run(&["pull", &target]).exits(6);
    let dry_pull = pulled
        .run(&["pull", &format!("{}/dry/app:v1", registry.host()), "-n"])
        .exits(6);
    assert!(
        dry_pull.stderr.contains("MANIFEST_UNKNOWN"),
        "{}",
        dry_pull.stderr
    );
    assert!(!fs::exists(pulled.path().join("index.json")).unwrap());

    // Pushed for real, then a dry run: what is there is reported as skipped. (A fresh cache
    // does not know the layers' compressed digests, so only the config can be seen.)
    TestCache::new()
        .run(&[
            "push",
            archive.to_str().unwrap(),
            &format!("{}/dry/other:v1", registry.host()),
        ])
        .success();
    let again = TestCache::new()
        .run(&[
            "push",
            archive.to_str().unwrap(),
            &format!("{}/dry/other:v1", registry.host()),
            "-n",
        ])
        .success();
    assert_eq!(
        again.stderr.matches("would skip sha256:").count(),
        1,
        "the config is there: {}",
        again.stderr
    );
}

#[test]
fn credentials_from_docker_config_login_logout_and_helpers() {
    let registry = TestRegistry::start(Setup::Basic {
        username: ROBOT_USER,
        password: ROBOT_PASSWORD,
    });
    let dir = TempDir::new("docker-config");
    let archive = archive(&dir);
    let docker_config = dir.join("docker");
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-dip-test");
    let answer =
        serde_json::json!({ "Username": ROBOT_USER, "Secret": ROBOT_PASSWORD }).to_string();
    fs::write(
        &helper,
        format!("#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\ncat <<'EOF'\n{answer}\nEOF\n"),
    )
    .unwrap();
    fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cache = TestCache::new();
    let cache_dir = cache.path();
    let ca = registry.ca_cert.clone().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--cache-dir", cache_dir.to_str().unwrap()];
        all.extend_from_slice(args);
        if args[0] != "logout" {
            all.extend(["--ca-cert", ca.to_str().unwrap()]);
        }
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let output = command(&all)
            .env("DOCKER_CONFIG", &docker_config)
            .env("PATH", path)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !said.contains(ROBOT_PASSWORD),
            "the password leaked: {said}"
        );
        (output.status.code().unwrap_or(-1), said)
    };
    let host = registry.host();
    let push = |n: u32| {
        run(&[
            "push",
            archive.to_str().unwrap(),
            &format!("{host}/config/app:v{n}"),
        ])
    };

    assert_eq!(push(1).0, 4, "no credentials anywhere yet");
    let (code, said) = run(&["login", &host, "-u", ROBOT_USER, "-p", ROBOT_PASSWORD]);
    assert_eq!(code, 0, "{said}");
    assert!(!said.contains("asked for no authentication"), "{said}");
    let config = fs::read_to_string(docker_config.join("config.json")).unwrap();
    assert!(
        config.contains(&host) && !config.contains(ROBOT_PASSWORD),
        "stored base64-encoded: {config}"
    );
    assert_eq!(push(2).0, 0, "credentials found in config.json");
    let mut login = command(&[
        "login",
        &host,
        "-u",
        ROBOT_USER,
        "--password-stdin",
        "--ca-cert",
        ca.to_str().unwrap(),
    ]);
    login
        .env("DOCKER_CONFIG", &docker_config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = login.spawn().unwrap();
    writeln!(child.stdin.take().unwrap(), "{ROBOT_PASSWORD}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "login --password-stdin: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (code, said) = run(&["login", &host, "-u", ROBOT_USER, "-p", "wrong"]);
    assert_eq!(code, 4, "login checks the credentials first: {said}");

    assert_eq!(run(&["logout", &host]).0, 0);
    assert_eq!(push(3).0, 4, "logged out");

    fs::write(
        docker_config.join("config.json"),
        format!(r#"{{"credHelpers": {{"{host}": "dip-test"}}}}"#),
    )
    .unwrap();
    let (code, said) = push(4);
    assert_eq!(code, 0, "credentials from the helper: {said}");
}

#[test]
fn a_platform_asked_for_is_not_replaced_by_another() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("platform-asked");
    let archive = archive(&dir);
    let target = format!("{}/single/app:v1", registry.host());
    TestCache::new()
        .run(&["push", archive.to_str().unwrap(), &target])
        .success();
    let refused = TestCache::new()
        .run(&["pull", &target, "--platform", "linux/s390x"])
        .exits(6);
    assert!(
        refused.stderr.contains("only, not linux/s390x"),
        "{}",
        refused.stderr
    );
    TestCache::new().run(&["pull", &target]).success();
}

#[test]
fn login_to_a_registry_that_asks_for_nothing_says_so() {
    let registry = TestRegistry::start(Setup::Plain);
    let docker_config = TempDir::new("login-open");
    let output = command(&["login", &registry.host(), "-u", "someone", "-p", "anything"])
        .env("DOCKER_CONFIG", docker_config.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("asked for no authentication"), "{said}");
}

#[test]
fn large_layers_go_in_chunks() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("chunks");
    let archive = support::tarball::noisy_archive(dir.path(), 300_000);
    let source = images::skopeo_identity(&format!("docker-archive:{}", archive.display()));
    for (compress, repository) in [("gzip", "chunked/gzip"), ("none", "chunked/none")] {
        let before = registry.requests("PATCH /v2/");
        let target = format!("{}/{repository}:v1", registry.host());
        let args = [
            "push",
            archive.to_str().unwrap(),
            &target,
            "--compress",
            compress,
            "--large-layer-threshold",
            "64K",
            "--chunk-size",
            "32K",
        ];
        TestCache::new().run(&args).success();
        let patches = registry.requests("PATCH /v2/") - before;
        assert!(
            patches >= 10,
            "{compress}: 300 kB in 32 KiB chunks took {patches} PATCH requests"
        );
        assert_eq!(
            skopeo_sees(&registry, &format!("{repository}:v1")),
            source,
            "{compress}"
        );
    }
}

#[test]
fn a_pull_resumes_from_what_an_earlier_run_left() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("resume");
    let archive = support::tarball::noisy_archive(dir.path(), 400_000);
    let target = format!("{}/resume/app:v1", registry.host());
    support::push_uncompressed(&archive, &target);

    let cache = TestCache::new();
    cache.run(&["pull", &target]).success();
    let listed = cache.list();
    let layer = listed[0]["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let hex = layer.trim_start_matches("sha256:");
    let whole = fs::read(cache.path().join("blobs/sha256").join(hex)).unwrap();
    cache.run(&["clean", "--all"]).success();
    let partial = cache.path().join("tmp/partial");
    fs::create_dir_all(&partial).unwrap();
    fs::write(partial.join(hex), &whole[..whole.len() / 2]).unwrap();

    cache.run(&["pull", &target]).success();
    let ranged = registry
        .log()
        .lines()
        .filter(|line| line.contains(&layer) && line.contains("\" 206 "))
        .count();
    assert_eq!(
        ranged,
        1,
        "the second pull asked for the missing half only:\n{}",
        registry.log()
    );
    assert!(
        !partial.join(hex).exists(),
        "the partial file became the blob"
    );
}

/// A push to a sibling repository mounts the blobs instead of uploading them.
fn mounts_between_repositories(setup: Setup) {
    let registry = TestRegistry::start(setup);
    let dir = TempDir::new("mount");
    let archive = archive(&dir);
    let cache = TestCache::new();
    let first = format!("{}/mount/first:v1", registry.host());
    let second = format!("{}/mount/second:v1", registry.host());
    run_with(
        &cache,
        &["push", archive.to_str().unwrap(), &first],
        &registry,
    )
    .success();
    let run = run_with(
        &cache,
        &["push", archive.to_str().unwrap(), &second],
        &registry,
    )
    .success();
    assert!(
        run.stderr.contains("0 blobs uploaded") && run.stderr.contains("3 mounted"),
        "{}",
        run.stderr
    );
    let mounts = (registry.log().lines())
        .filter(|line| {
            line.contains("\"POST /v2/mount/second/blobs/uploads/?mount=")
                && line.contains("\" 201 ")
        })
        .count();
    assert_eq!(
        mounts,
        3,
        "the registry saw three mounts:\n{}",
        registry.log()
    );
    assert_eq!(
        registry.requests("PATCH /v2/mount/second/"),
        0,
        "and no upload"
    );
    let source = images::skopeo_identity(&format!("docker-archive:{}", archive.display()));
    assert_eq!(skopeo_sees(&registry, "mount/second:v1"), source);
}

#[test]
fn blobs_are_mounted_between_repositories() {
    mounts_between_repositories(Setup::Plain);
}

#[test]
fn blobs_are_mounted_between_repositories_with_tokens() {
    mounts_between_repositories(Setup::Token);
}

#[test]
fn a_blob_redirect_to_another_host_gets_no_credentials() {
    let registry = TestRegistry::start(Setup::PlainBasic);
    let basic = format!(
        "Basic {}",
        support::base64(format!("{ROBOT_USER}:{ROBOT_PASSWORD}").as_bytes())
    );
    // A storage host on another port, fetching with its own credentials, and a front that
    // sends every blob download there, as registries backed by S3 or a CDN do.
    let storage = Front::start(registry.port(), move |_, _| {
        Action::ForwardAs(basic.clone())
    });
    let storage_host = storage.host();
    let front = Front::start(registry.port(), move |request, _| {
        match request.method == "GET" && request.target.contains("/blobs/sha256:") {
            true => Action::Redirect(format!("http://{storage_host}{}", request.target)),
            false => Action::Forward,
        }
    });
    let dir = TempDir::new("redirect");
    let archive = archive(&dir);
    let direct = format!("{}/redirect/app:v1", registry.host());
    run_with(
        &TestCache::new(),
        &["push", archive.to_str().unwrap(), &direct],
        &registry,
    )
    .success();

    let pulled = TestCache::new();
    run_with(
        &pulled,
        &["pull", &format!("{}/redirect/app:v1", front.host()), "-v"],
        &registry,
    )
    .success();
    let saw = storage.authorizations();
    assert_eq!(saw.len(), 3, "every blob came through the redirect");
    assert!(
        saw.iter().all(Option::is_none),
        "credentials went to the storage host: {saw:?}"
    );
    let source = images::skopeo_identity(&format!("docker-archive:{}", archive.display()));
    assert_eq!(listed_identity(&pulled.list()[0]), source);
}

#[test]
fn concurrent_transfers_give_the_same_image() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("concurrent");
    let layers: Vec<Vec<u8>> = (1..=6u8).map(|n| vec![n; 20_000 * n as usize]).collect();
    let layer_refs: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
    let archive = dir.join("six.tar");
    support::tarball::write_tar(
        &archive,
        &support::tarball::legacy_items(&layer_refs, r#"["example.com/six:v1"]"#),
    );
    let source = images::skopeo_identity(&format!("docker-archive:{}", archive.display()));
    let target = format!("{}/concurrent/six:v1", registry.host());
    TestCache::new()
        .run(&[
            "push",
            archive.to_str().unwrap(),
            &target,
            "--max-concurrent",
            "4",
        ])
        .success();
    assert_eq!(skopeo_sees(&registry, "concurrent/six:v1"), source);

    let one = TestCache::new();
    one.run(&["pull", &target]).success();
    let four = TestCache::new();
    four.run(&[
        "pull",
        &target,
        "--max-concurrent",
        "4",
        "--limit-rate",
        "100M",
    ])
    .success();
    assert_eq!(listed_identity(&four.list()[0]), source);
    assert_eq!(
        four.list()[0]["manifest_digest"],
        one.list()[0]["manifest_digest"]
    );
    assert_eq!(
        four.content_snapshot(),
        one.content_snapshot(),
        "the same blobs, byte for byte"
    );

    for (n, spelling) in [
        ["--concurrency", "dynamic"],
        ["--concurrency-manager", "dynamic"],
        ["--enable-dynamic-concurrency", "-v"],
    ]
    .iter()
    .enumerate()
    {
        let dynamic = TestCache::new();
        let args = [
            &["pull", target.as_str(), "--max-concurrent", "4", "--json"][..],
            &spelling[..],
        ]
        .concat();
        let run = dynamic.run(&args).success();
        let result: serde_json::Value =
            serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
        assert!(
            result["adjustments"].is_array(),
            "{spelling:?}: {}",
            run.stdout
        );
        assert_eq!(
            dynamic.content_snapshot(),
            one.content_snapshot(),
            "{spelling:?}"
        );
        let again = format!("{}/concurrent/dynamic{n}:v1", registry.host());
        TestCache::new()
            .run(&[
                "push",
                archive.to_str().unwrap(),
                &again,
                "--max-concurrent",
                "3",
                spelling[0],
                spelling[1],
            ])
            .success();
        assert_eq!(
            skopeo_sees(&registry, &format!("concurrent/dynamic{n}:v1")),
            source,
            "{spelling:?}"
        );
    }
}

#[test]
fn a_rate_limit_caps_the_transfer() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("rate");
    let archive = dir.join("three.tar");
    support::tarball::write_tar(
        &archive,
        &support::tarball::legacy_items(&[&vec![7u8; 3 << 20]], r#"["example.com/three:v1"]"#),
    );
    let target = format!("{}/rate/three:v1", registry.host());
    support::push_uncompressed(&archive, &target);
    // 3 MiB at 1 MiB/s, with one second of burst allowed: two seconds at least.
    let started = std::time::Instant::now();
    TestCache::new()
        .run(&[
            "pull",
            &target,
            "--limit-rate",
            "1M",
            "--max-concurrent",
            "2",
        ])
        .success();
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1800),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_never_pushed() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("tampered");
    let mut items = legacy_items(&[b"the real layer"], r#"["example.com/tampered:v1"]"#);
    items[0] = support::tarball::Item::File("0/layer.tar".into(), b"a tampered layer".to_vec());
    let archive = dir.join("tampered.tar");
    write_tar(&archive, &items);
    let expected = format!("sha256:{}", support::sha256(b"the real layer"));
    for compress in ["gzip", "none"] {
        let target = format!("{}/tampered/{compress}:v1", registry.host());
        let run = TestCache::new().run(&[
            "push",
            archive.to_str().unwrap(),
            &target,
            "--compress",
            compress,
        ]);
        assert_eq!(run.code, 3, "{compress}: {}", run.stderr);
        assert!(run.stderr.contains(&expected), "{compress}: {}", run.stderr);
        let manifests = format!("PUT /v2/tampered/{compress}/manifests/");
        assert_eq!(
            registry.requests(&manifests),
            0,
            "{compress}: no manifest was pushed"
        );
    }
}

#[test]
fn gzip_layers_with_incompressible_stretches_decompress_with_gnu_gzip() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("gzip-mixed");
    // Random stretches long enough to be stored, between text that is compressed.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut random = |len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    let text = |len: usize| -> Vec<u8> {
        b"GET /items 200\n"
            .iter()
            .copied()
            .cycle()
            .take(len)
            .collect()
    };
    let layer = [
        text(1 << 20),
        random(4 << 20),
        text(12 << 20),
        random(1 << 20),
    ]
    .concat();
    let archive = dir.join("mixed.tar");
    write_tar(
        &archive,
        &legacy_items(&[&layer], r#"["example.com/mixed:v1"]"#),
    );
    let target = format!("{}/mixed/app:v1", registry.host());
    TestCache::new()
        .run(&["push", archive.to_str().unwrap(), &target])
        .success();

    let copied = dir.join("copied");
    let from = format!("docker://{target}");
    let to = format!("dir:{}", copied.display());
    tool(
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &from,
            &to,
        ],
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(copied.join("manifest.json")).unwrap()).unwrap();
    let blob = manifest["layers"][0]["digest"].as_str().unwrap();
    let compressed = copied.join(blob.trim_start_matches("sha256:"));
    assert!(
        fs::metadata(&compressed).unwrap().len() < layer.len() as u64 - (6 << 20),
        "the text after the random stretch was compressed again"
    );
    let output = std::process::Command::new("gzip")
        .args(["-dc", compressed.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        support::sha256(&output.stdout),
        support::sha256(&layer),
        "GNU gzip gives the layer back"
    );
}

#[test]
fn copy_between_registries_streams_each_blob() {
    let plain = TestRegistry::start(Setup::Plain);
    let token = TestRegistry::start(Setup::Token);
    let dir = TempDir::new("copy");
    let archive = archive(&dir);
    let source = images::skopeo_identity(&format!("docker-archive:{}", archive.display()));
    let from = format!("{}/copy/app:v1", plain.host());
    TestCache::new()
        .run(&["push", archive.to_str().unwrap(), &from])
        .success();

    let cache = TestCache::new();
    let to = format!("{}/copy/app:v1", token.host());
    let run = run_with(&cache, &["copy", &from, &to], &token).success();
    assert!(
        run.stderr.contains("copied ") && run.stderr.contains("3 blobs uploaded"),
        "{}",
        run.stderr
    );
    assert_eq!(skopeo_sees(&token, "copy/app:v1"), source);
    assert!(
        !cache.path().join("blobs").exists(),
        "nothing touched the disk"
    );

    let kept = TestCache::new();
    let again = format!("{}/copy/kept:v1", token.host());
    run_with(&kept, &["copy", &from, &again, "--via-cache"], &token).success();
    assert_eq!(skopeo_sees(&token, "copy/kept:v1"), source);
    assert_eq!(
        listed_identity(&kept.list()[0]),
        source,
        "--via-cache kept a copy"
    );

    // --password-stdin is read once, though two registries are connected to.
    let password = dir.join("password");
    fs::write(&password, format!("{ROBOT_PASSWORD}\n")).unwrap();
    let stdin = format!("{}/copy/stdin:v1", token.host());
    let mut args = vec!["copy", &from, &stdin, "-u", ROBOT_USER, "--password-stdin"];
    let ca = token.ca_args();
    args.extend(ca.iter().map(String::as_str));
    TestCache::new().run_with_stdin(&args, &password).success();
    assert_eq!(skopeo_sees(&token, "copy/stdin:v1"), source);
}

#[test]
fn copy_within_one_registry_mounts_instead_of_uploading() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("copy-mount");
    let archive = archive(&dir);
    let from = format!("{}/copy/from:v1", registry.host());
    TestCache::new()
        .run(&["push", archive.to_str().unwrap(), &from])
        .success();
    let run = TestCache::new()
        .run(&["copy", &from, &format!("{}/copy/to:v1", registry.host())])
        .success();
    assert!(run.stderr.contains("3 mounted"), "{}", run.stderr);
    let mounts = (registry.log().lines())
        .filter(|line| {
            line.contains("\"POST /v2/copy/to/blobs/uploads/?mount=") && line.contains("\" 201 ")
        })
        .count();
    assert_eq!(mounts, 3, "the registry saw mounts");
    assert_eq!(registry.requests("PATCH /v2/copy/to/"), 0, "and no upload");
    assert_eq!(registry.requests("PUT /v2/copy/to/blobs/"), 0);
    let source = images::skopeo_identity(&format!("docker-archive:{}", archive.display()));
    assert_eq!(skopeo_sees(&registry, "copy/to:v1"), source);
}

#[test]
fn copy_all_platforms_carries_the_index() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("copy-index");
    let (layout, digests) = images::multi_platform_layout(dir.path(), &["amd64", "arm64"]);
    let from = format!("{}/copy/multi:v1", registry.host());
    images::skopeo_push(&format!("oci:{}:multi", layout.display()), &from, true);
    let to = format!("{}/copy/multi-copy:v1", registry.host());
    TestCache::new()
        .run(&["copy", &from, &to, "--all-platforms"])
        .success();
    let raw: serde_json::Value = serde_json::from_str(&tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{to}"),
        ],
    ))
    .unwrap();
    let children: Vec<&str> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(children, [digests[0].as_str(), digests[1].as_str()]);
}

#[test]
fn tags_lists_what_skopeo_pushed() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("tags");
    let layout = images::umoci_layout(dir.path(), "src", &two_layers());
    let mut pushed = Vec::new();
    for n in 1..=5 {
        let tag = format!("v{n}");
        let target = format!("{}/tags/app:{tag}", registry.host());
        images::skopeo_push(&format!("oci:{}:src", layout.display()), &target, false);
        pushed.push(tag);
    }
    let run = TestCache::new()
        .run(&[
            "tags",
            &format!("{}/tags/app", registry.host()),
            "--page-size",
            "2",
        ])
        .success();
    let mut listed: Vec<&str> = run.stdout.lines().collect();
    listed.sort();
    assert_eq!(listed, pushed);
    assert!(
        registry.requests("GET /v2/tags/app/tags/list?n=2") >= 1,
        "the page size was asked for"
    );
    // Distribution 2.8 answers every tag in one page whatever n is; a front pages its list as
    // Distribution 3 and Harbor do, with Link headers to follow.
    let front = Front::start(registry.port(), |request, _| {
        match request.target.contains("/tags/list") {
            true => Action::Paginate,
            false => Action::Forward,
        }
    });
    let paged = TestCache::new()
        .run(&[
            "tags",
            &format!("{}/tags/app", front.host()),
            "--page-size",
            "2",
        ])
        .success();
    assert_eq!(
        paged.stdout.lines().collect::<Vec<_>>(),
        pushed,
        "every page, in order"
    );
    let pages: Vec<String> = (front.seen().into_iter())
        .filter(|(_, target, _)| target.contains("/tags/list"))
        .map(|(_, target, _)| target)
        .collect();
    assert_eq!(
        pages,
        [
            "/v2/tags/app/tags/list?n=2",
            "/v2/tags/app/tags/list?last=v2&n=2",
            "/v2/tags/app/tags/list?last=v4&n=2"
        ],
        "three pages, each from the Link of the one before"
    );
    let json = TestCache::new()
        .run(&["tags", &format!("{}/tags/app", registry.host()), "--json"])
        .success();
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(parsed["tags"].as_array().unwrap().len(), 5);
    let tagged = TestCache::new()
        .run(&["tags", &format!("{}/tags/app:v1", registry.host())])
        .exits(2);
    assert!(tagged.stderr.contains("without a tag"), "{}", tagged.stderr);
}

#[test]
fn inspect_describes_images_and_prints_their_exact_bytes() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("inspect");
    let layout = images::umoci_layout(dir.path(), "src", &two_layers());
    let target = format!("{}/inspect/app:v1", registry.host());
    images::skopeo_push(&format!("oci:{}:src", layout.display()), &target, false);
    let skopeo: serde_json::Value = serde_json::from_str(&tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{target}"),
        ],
    ))
    .unwrap();

    let cache = TestCache::new();
    let raw = cache.run(&["inspect", "--raw", &target]).success();
    assert_eq!(
        format!("sha256:{}", support::sha256(raw.stdout.as_bytes())),
        skopeo["Digest"].as_str().unwrap()
    );
    let config: serde_json::Value = serde_json::from_str(
        &cache
            .run(&["inspect", "--config", &target])
            .success()
            .stdout,
    )
    .unwrap();
    let (_, diff_ids) = skopeo_sees(&registry, "inspect/app:v1");
    assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!(diff_ids));
    let text = cache.run(&["inspect", &target]).success().stdout;
    for part in [
        "Digest:",
        "Layers:      2",
        "Image ID:",
        "Platform:    linux/amd64",
    ] {
        assert!(text.contains(part), "{part} missing:\n{text}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&cache.run(&["inspect", "--json", &target]).success().stdout).unwrap();
    assert_eq!(json["digest"], skopeo["Digest"]);
    assert_eq!(json["layers"].as_array().unwrap().len(), 2);

    cache.run(&["pull", &target]).success();
    drop(registry);
    let offline = cache.run(&["inspect", "--json", &target]).success();
    let cached: serde_json::Value = serde_json::from_str(&offline.stdout).unwrap();
    assert_eq!(
        cached["digest"], skopeo["Digest"],
        "a cached image is inspected without its registry"
    );
}

#[test]
fn inspect_lists_the_platforms_of_an_index() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("inspect-index");
    let (layout, digests) = images::multi_platform_layout(dir.path(), &["amd64", "arm64"]);
    let target = format!("{}/inspect/multi:v1", registry.host());
    images::skopeo_push(&format!("oci:{}:multi", layout.display()), &target, true);
    let text = TestCache::new().run(&["inspect", &target]).success().stdout;
    assert!(
        text.contains("linux/amd64") && text.contains("linux/arm64") && text.contains(&digests[1]),
        "{text}"
    );
    let arm: serde_json::Value = serde_json::from_str(
        &TestCache::new()
            .run(&["inspect", &target, "--platform", "linux/arm64", "--json"])
            .success()
            .stdout,
    )
    .unwrap();
    assert_eq!(arm["digest"], digests[1].as_str());
    assert_eq!(arm["config"]["architecture"], "arm64");
}
