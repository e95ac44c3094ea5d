//! Who may do what, against the real registry: htpasswd Basic auth, Bearer tokens from the
//! test issuer, credentials from flags, environment, standard input and Docker's config.json
//! (with helpers), TLS with a test CA, and credentials that never leave their origin.

mod support;

use std::fs;
use std::io::Write;
use std::process::Stdio;

use support::access::{archive, run_with};
use support::front::{Action, Front};
use support::images::{self, listed_identity};
use support::registry::{ROBOT_PASSWORD, ROBOT_USER, Setup, TestRegistry};
use support::{TempDir, TestCache, command};

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
    let refused = format!("the registry refused user {ROBOT_USER}, whose credentials came from -u");
    assert!(said.contains(&refused), "{said}");

    let mut nobody = base(&target(4));
    let empty = dir.join("no-docker-config");
    std::fs::create_dir(&empty).unwrap();
    nobody.env("DOCKER_CONFIG", &empty);
    let anonymous = check(nobody.output().unwrap(), 4);
    let host = registry.host();
    for fix in [
        format!("no credentials were given or found for {host}"),
        empty.join("config.json").display().to_string(),
        format!("log in with 'docker-image-pusher login {host}', or give -u"),
    ] {
        assert!(anonymous.contains(&fix), "{fix}: {anonymous}");
    }
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
fn workers_at_once_ask_for_one_token_per_scope() {
    let registry = TestRegistry::start(Setup::Token);
    let dir = TempDir::new("one-token");
    let archive = archive(&dir);
    let target = format!("{}/tokens/app:v1", registry.host());
    let cache = TestCache::new();
    run_with(
        &cache,
        &[
            "push",
            archive.to_str().unwrap(),
            &target,
            "--max-concurrent",
            "4",
        ],
        &registry,
    )
    .success();
    // One check of the credentials (GET /v2/, no scope), then one token for the push.
    assert_eq!(
        registry.token_scopes(),
        ["", "repository:tokens/app:pull,push"],
        "each token was asked for once"
    );
}

#[test]
fn login_on_a_terminal_asks_for_the_user_and_the_password_without_echo() {
    let registry = TestRegistry::start(Setup::Basic {
        username: ROBOT_USER,
        password: ROBOT_PASSWORD,
    });
    let dir = TempDir::new("login-prompt");
    let docker_config = dir.join("docker");
    let ca = registry.ca_cert.clone().unwrap();
    // script(1) gives the program a terminal; what is typed is its standard input.
    let line = format!(
        "{} --cache-dir {} login {} --ca-cert {}",
        support::bin(),
        dir.join("cache").display(),
        registry.host(),
        ca.display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("DOCKER_CONFIG", &docker_config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    let mut typed = child.stdin.take().unwrap();
    let mut shown = child.stdout.take().unwrap();
    writeln!(typed, "{ROBOT_USER}").unwrap();
    // The password is typed once it is asked for, so echo is off by then, as for a person.
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("Password: ") {
        let n = std::io::Read::read(&mut shown, &mut byte).unwrap();
        assert!(
            n == 1,
            "ended before asking: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.push(byte[0]);
    }
    writeln!(typed, "{ROBOT_PASSWORD}").unwrap();
    std::io::Read::read_to_end(&mut shown, &mut seen).unwrap();
    let status = child.wait().unwrap();
    let seen = String::from_utf8_lossy(&seen).to_string();
    assert!(status.success(), "{seen}");
    assert!(
        seen.contains(&format!("Username for {}: ", registry.host())),
        "{seen}"
    );
    assert!(seen.contains("Password: "), "{seen}");
    assert!(
        seen.contains(&format!("login succeeded for {ROBOT_USER}")),
        "{seen}"
    );
    assert!(
        !seen.contains(ROBOT_PASSWORD),
        "the password was echoed: {seen}"
    );
    let stored = fs::read_to_string(docker_config.join("config.json")).unwrap();
    assert!(stored.contains(&registry.host()), "{stored}");

    // Not on a terminal, nothing is asked: a script must say them.
    let refused = command(&["login", &registry.host()]).output().unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{said}");
    assert!(said.contains("login needs -u USER"), "{said}");
}
