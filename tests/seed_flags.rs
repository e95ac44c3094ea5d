//! The short flags of the design documents this tool comes from, which scripts written
//! against them use: `pull -r REPO -t REF`, `push -s SRC -r REPO -t TAG`, and the one-shot
//! form's `-t SECONDS`; and the v0.2 README's "Large Image Optimization" and "Enterprise
//! Harbor Registry" examples, run with their arguments as written against local HTTPS
//! registries.

mod support;

use std::path::Path;

use support::images;
use support::registry::{ROBOT_PASSWORD, ROBOT_USER, Setup, TestRegistry};
use support::{Run, TempDir, TestCache, command};

/// What skopeo sees of `reference` on `registry` (which wants `user`/`password`).
fn seen(
    registry: &TestRegistry,
    (user, password): (&str, &str),
    reference: &str,
) -> (String, Vec<String>) {
    let creds = format!("--creds={user}:{password}");
    images::skopeo_identity_with(
        &["--tls-verify=false", &creds],
        &format!("docker://{}/{reference}", registry.host()),
    )
}

/// Runs the binary in `dir` with `args` and, when given, `SSL_CERT_FILE`.
fn run_in(dir: &Path, args: &[&str], ca: Option<&Path>) -> Run {
    let mut command = command(args);
    command.current_dir(dir);
    if let Some(ca) = ca {
        command.env("SSL_CERT_FILE", ca);
    }
    Run::from(command.output().unwrap())
}

#[test]
fn pull_and_push_take_the_seed_forms_short_flags() {
    let registry = TestRegistry::start(Setup::Basic {
        username: ROBOT_USER,
        password: ROBOT_PASSWORD,
    });
    let dir = TempDir::new("seed-short");
    let archive = images::docker_archive(dir.path(), "example.com/app:v1");
    let source = images::skopeo_identity(&format!("docker-archive:{}", archive.display()));
    let url = format!("https://{}", registry.host());
    let ca = registry.ca_cert.clone().unwrap();
    let access = [
        "--ca-cert",
        ca.to_str().unwrap(),
        "-u",
        ROBOT_USER,
        "-p",
        ROBOT_PASSWORD,
    ];
    let robot = (ROBOT_USER, ROBOT_PASSWORD);
    let cache = TestCache::new();
    let with_access = |args: &[&str]| -> Vec<String> {
        args.iter().chain(&access).map(|a| a.to_string()).collect()
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cache.run(&args).success()
    };

    // From an archive, then from the cache.
    let archive = archive.to_str().unwrap();
    run(with_access(&[
        "push",
        "-s",
        archive,
        "--registry",
        &url,
        "-r",
        "seed/short",
        "-t",
        "v4",
    ]));
    assert_eq!(seen(&registry, robot, "seed/short:v4"), source);
    run(with_access(&[
        "pull",
        "-r",
        "seed/short",
        "-t",
        "v4",
        "--registry",
        &url,
    ]));
    let pulled = format!("{}/seed/short:v4", registry.host());
    assert!(cache.list().iter().any(|image| image["name"] == pulled));
    run(with_access(&[
        "push",
        "-s",
        &pulled,
        "-t",
        "v5",
        "-r",
        "seed/again",
        "--registry",
        &url,
    ]));
    assert_eq!(seen(&registry, robot, "seed/again:v5"), source);
    // Without -t, push's -r is still the target URL.
    let target = format!("{url}/seed/url:v6");
    run(with_access(&["push", "-s", archive, "-r", &target]));
    assert_eq!(seen(&registry, robot, "seed/url:v6"), source);
}

#[test]
fn the_one_shot_forms_t_is_the_timeout() {
    let registry = TestRegistry::start(Setup::Basic {
        username: ROBOT_USER,
        password: ROBOT_PASSWORD,
    });
    let dir = TempDir::new("one-shot-t");
    let archive = images::docker_archive(dir.path(), "example.com/app:v1");
    let source = images::skopeo_identity(&format!("docker-archive:{}", archive.display()));
    let target = format!("https://{}/one/shot:v1", registry.host());
    let ca = registry.ca_cert.clone().unwrap();
    let args = |timeout: &'static str| {
        [
            "-t",
            timeout,
            "-r",
            &target,
            "-f",
            archive.to_str().unwrap(),
            "-u",
            ROBOT_USER,
            "-p",
            ROBOT_PASSWORD,
        ]
        .map(str::to_string)
    };
    let run = |timeout| {
        let args = args(timeout);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_in(dir.path(), &args, Some(&ca))
    };
    let bad = run("soon").exits(2);
    assert!(bad.stderr.contains("-t"), "{}", bad.stderr);
    run("3600").success();
    assert_eq!(
        seen(&registry, (ROBOT_USER, ROBOT_PASSWORD), "one/shot:v1"),
        source
    );
}

#[test]
fn the_one_shot_form_may_start_with_any_flag_push_takes() {
    // Once refused as "unknown option": the dispatcher kept its own list of starting flags.
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("one-shot-first-flag");
    let archive = images::docker_archive(dir.path(), "example.com/app:v1");
    let source = images::skopeo_identity(&format!("docker-archive:{}", archive.display()));
    let target = format!("http://{}/one/first:v1", registry.host());
    let archive = archive.to_str().unwrap();
    let dry = run_in(dir.path(), &["-n", "-r", &target, "-f", archive], None).success();
    assert!(dry.stderr.contains("would copy"), "{}", dry.stderr);
    run_in(
        dir.path(),
        &["--compress", "none", "-r", &target, "-f", archive],
        None,
    )
    .success();
    let pushed = format!("docker://{}/one/first:v1", registry.host());
    let plain = ["--tls-verify=false"];
    assert_eq!(images::skopeo_identity_with(&plain, &pushed), source);
    let raw = support::tool("skopeo", &["inspect", "--raw", plain[0], &pushed]);
    assert!(!raw.contains("gzip"), "--compress none was taken: {raw}");
    let unknown = run_in(dir.path(), &["--bogus", "-r", &target], None).exits(2);
    assert!(unknown.stderr.contains("--bogus"), "{}", unknown.stderr);
}

#[test]
fn the_v0_2_readme_examples_run_as_written() {
    // "Large Image Optimization": no TLS flag, so the registry's CA comes from the
    // environment as a system bundle would.
    let ml = TestRegistry::start(Setup::Basic {
        username: "ml-user",
        password: "registry-password",
    });
    let dir = TempDir::new("readme-examples");
    let built = images::docker_archive(dir.path(), "example.com/pytorch:latest");
    std::fs::rename(&built, dir.join("pytorch-15gb.tar")).unwrap();
    let url = format!("https://{}/ml/pytorch:latest", ml.host());
    let large_image = [
        "-r",
        &url,
        "-f",
        "pytorch-15gb.tar",
        "-u",
        "ml-user",
        "-p",
        "registry-password",
        "--large-layer-threshold",
        "2147483648",
        "--max-concurrent",
        "4",
        "--timeout",
        "3600",
        "--retry-attempts",
        "5",
        "--verbose",
    ];
    run_in(dir.path(), &large_image, ml.ca_cert.as_deref()).success();
    let source = images::skopeo_identity(&format!(
        "docker-archive:{}",
        dir.join("pytorch-15gb.tar").display()
    ));
    assert_eq!(
        seen(&ml, ("ml-user", "registry-password"), "ml/pytorch:latest"),
        source
    );

    // "Enterprise Harbor Registry": a self-signed certificate, hence --skip-tls.
    let harbor = TestRegistry::start(Setup::Basic {
        username: "prod-deployer",
        password: "harbor-password",
    });
    let built = images::docker_archive(dir.path(), "example.com/webapp:v2.1.0");
    std::fs::rename(&built, dir.join("webapp-v2.1.0.tar")).unwrap();
    let url = format!("https://{}/production/webapp:v2.1.0", harbor.host());
    let enterprise_harbor = [
        "-r",
        &url,
        "-f",
        "webapp-v2.1.0.tar",
        "-u",
        "prod-deployer",
        "-p",
        "harbor-password",
        "--skip-tls",
        "--max-concurrent",
        "2",
        "--verbose",
    ];
    let run = run_in(dir.path(), &enterprise_harbor, None).success();
    assert!(
        run.stderr.contains("--skip-tls"),
        "the risk is said: {}",
        run.stderr
    );
    let source = images::skopeo_identity(&format!(
        "docker-archive:{}",
        dir.join("webapp-v2.1.0.tar").display()
    ));
    let pushed = seen(
        &harbor,
        ("prod-deployer", "harbor-password"),
        "production/webapp:v2.1.0",
    );
    assert_eq!(pushed, source);
}
