//! What reaches a terminal: tags, registries' and token servers' errors, configs, archives'
//! names and credential helpers' output that hold escape sequences (a window title, a screen
//! clear, a `\r` that overwrites the line) are shown with those made visible, on stdout and
//! stderr; and a listed tag that is not one fails its own row of a sync, not the repository.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use support::front::{Action, Front};
use support::registry::{Setup, TestRegistry};
use support::tarball::{self, Item};
use support::{Run, TempDir, TestCache, command, images};

/// A title change, a screen clear and a carriage return, as a hostile server sends them.
const HOSTILE: &str = "\u{1b}]0;owned\u{7}\u{1b}[2J\r";
/// The same text as JSON writes it.
const HOSTILE_JSON: &str = r"\u001b]0;owned\u0007\u001b[2J\r";

/// Asserts that `text` holds no control character but line ends, and shows the escape.
fn assert_inert(text: &str, what: &str) {
    let raw: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(raw.is_empty(), "{what} holds raw {raw:?}:\n{text:?}");
    assert!(
        text.contains(r"\x1b]0;owned\x07\x1b[2J\r"),
        "{what}:\n{text}"
    );
}

/// Asserts the same of both streams of `run`.
fn assert_run_inert(run: &Run) {
    assert_inert(&format!("{}{}", run.stdout, run.stderr), "the output");
}

/// A front whose manifest requests all get `answer`; everything else goes to `registry`.
fn manifests_answered(registry: &TestRegistry, answer: Action) -> Front {
    let answer = std::sync::Mutex::new(Some(answer));
    Front::start(registry.port(), move |request, _| {
        match request.target.contains("/manifests/") {
            true => (answer.lock().unwrap().take()).unwrap_or(Action::Respond(500, vec![])),
            false => Action::Forward,
        }
    })
}

#[test]
fn tags_a_registry_lists_are_printed_inert() {
    let registry = TestRegistry::start(Setup::Plain);
    let body = format!(r#"{{"name":"hostile/app","tags":["v1{HOSTILE_JSON}","v2"]}}"#);
    let front = Front::start(registry.port(), move |request, _| {
        match request.target.contains("/tags/list") {
            true => Action::Reply(
                200,
                vec![("Content-Type".into(), "application/json".into())],
                body.clone(),
            ),
            false => Action::Forward,
        }
    });
    let run = TestCache::new()
        .run(&["tags", &format!("{}/hostile/app", front.host())])
        .success();
    assert_run_inert(&run);
    assert_eq!(run.stdout.lines().last(), Some("v2"), "{}", run.stdout);
    let json = TestCache::new()
        .run(&["tags", &format!("{}/hostile/app", front.host()), "--json"])
        .success();
    assert!(json.stdout.contains(HOSTILE_JSON), "{}", json.stdout);
}

#[test]
fn a_registry_s_error_is_shown_inert_whether_json_or_text() {
    let registry = TestRegistry::start(Setup::Plain);
    let body = format!(
        r#"{{"errors":[{{"code":"DENIED{HOSTILE_JSON}","message":"go away{HOSTILE_JSON}"}}]}}"#
    );
    let json = Action::Reply(
        403,
        vec![("Content-Type".into(), "application/json".into())],
        body,
    );
    let front = manifests_answered(&registry, json);
    let image = format!("{}/hostile/app:v1", front.host());
    let run = TestCache::new().run(&["pull", &image]).exits(4);
    assert_run_inert(&run);
    assert!(run.stderr.contains("go away"), "{}", run.stderr);

    let text = Action::Reply(
        404,
        vec![("Content-Type".into(), "text/plain".into())],
        format!("not here{HOSTILE} at all\n"),
    );
    let front = manifests_answered(&registry, text);
    let image = format!("{}/hostile/app:v1", front.host());
    let run = TestCache::new().run(&["pull", &image]).exits(6);
    assert_run_inert(&run);
    assert!(run.stderr.contains("not here"), "{}", run.stderr);
}

#[test]
fn a_token_server_s_error_is_shown_inert() {
    let registry = TestRegistry::start(Setup::Plain);
    let body = format!(r#"{{"errors":[{{"code":"DENIED","message":"no{HOSTILE_JSON}"}}]}}"#);
    let token_server = Front::start(registry.port(), move |_, _| {
        Action::Reply(
            403,
            vec![("Content-Type".into(), "application/json".into())],
            body.clone(),
        )
    });
    let challenge = format!(
        r#"Bearer realm="http://{}/token",service="hostile""#,
        token_server.host()
    );
    let front = Front::start(registry.port(), move |_, _| {
        Action::Respond(401, vec![("WWW-Authenticate".into(), challenge.clone())])
    });
    let run = TestCache::new()
        .run(&["pull", &format!("{}/hostile/app:v1", front.host())])
        .exits(4);
    assert_run_inert(&run);
    assert!(run.stderr.contains("token server"), "{}", run.stderr);
}

#[test]
fn inspect_shows_a_hostile_config_inert() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("hostile-config");
    let layer = b"one layer".to_vec();
    let diff_id = format!("sha256:{}", support::sha256(&layer));
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "variant": format!("v1{HOSTILE}"),
        "created": format!("2026{HOSTILE}"),
        "config": {
            "WorkingDir": format!("/w{HOSTILE}"),
            "User": format!("root{HOSTILE}"),
            "Env": [format!("A=b{HOSTILE}\u{9b}2J\u{7f}")],
        },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
    });
    let archive = dir.join("hostile.tar");
    let manifest =
        r#"[{"Config":"config.json","RepoTags":["hostile/app:v1"],"Layers":["0/layer.tar"]}]"#;
    tarball::write_tar(
        &archive,
        &[
            Item::File("0/layer.tar".into(), layer),
            Item::File("config.json".into(), config.to_string().into_bytes()),
            Item::File("manifest.json".into(), manifest.as_bytes().to_vec()),
        ],
    );
    let image = format!("{}/hostile/app:v1", registry.host());
    let cache = TestCache::new();
    cache
        .run(&["push", archive.to_str().unwrap(), &image])
        .success();
    let run = cache.run(&["inspect", &image, "--remote"]).success();
    assert_run_inert(&run);
    let env = (run.stdout.lines())
        .find(|line| line.starts_with("Env:"))
        .unwrap_or_default();
    assert!(env.contains(r"\u{9b}2J\x7f"), "{env}");
    for field in ["Platform:", "Created:", "WorkingDir:", "User:"] {
        let line = (run.stdout.lines())
            .find(|line| line.starts_with(field))
            .unwrap_or_default();
        assert!(line.contains(r"\x1b"), "{field} {line}\n{}", run.stdout);
    }
}

#[test]
fn repo_tags_quoted_in_an_archive_error_are_inert() {
    let dir = TempDir::new("hostile-repotags");
    let archive = dir.join("hostile.tar");
    let tags = format!(r#"["app{HOSTILE_JSON}:v1"]"#);
    tarball::write_tar(&archive, &tarball::legacy_items(&[b"layer"], &tags));
    let run = TestCache::new()
        .run(&["extract", archive.to_str().unwrap()])
        .exits(3);
    assert_run_inert(&run);
    assert!(run.stderr.contains("RepoTags"), "{}", run.stderr);
}

#[test]
fn a_credential_helper_s_output_is_shown_inert() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("hostile-helper");
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-dip-hostile");
    fs::write(
        &helper,
        "#!/bin/sh\nprintf 'helper says \\033]0;owned\\007\\033[2J\\r at all'\nexit 1\n",
    )
    .unwrap();
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    let docker_config = dir.join("docker");
    fs::create_dir_all(&docker_config).unwrap();
    fs::write(
        docker_config.join("config.json"),
        format!(
            r#"{{"credHelpers": {{"{}": "dip-hostile"}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let cache = TestCache::new();
    let repository = format!("{}/hostile/app", registry.host());
    let output = command(&[
        "--cache-dir",
        cache.path().to_str().unwrap(),
        "tags",
        &repository,
    ])
    .env("DOCKER_CONFIG", &docker_config)
    .env("PATH", path)
    .output()
    .unwrap();
    let run = Run::from(output);
    assert_run_inert(&run);
    assert!(run.stderr.contains("helper says"), "{}", run.stderr);
}

#[test]
fn a_listed_tag_that_is_not_one_fails_its_own_row_and_the_rest_is_mirrored() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("hostile-sync");
    let archive = images::docker_archive(dir.path(), "example.com/app:v1");
    let cache = TestCache::new();
    for tag in ["v1", "v2"] {
        let image = format!("{}/hostile/app:{tag}", registry.host());
        cache
            .run(&["push", archive.to_str().unwrap(), &image])
            .success();
    }
    let body = format!(r#"{{"name":"hostile/app","tags":["v1","bad{HOSTILE_JSON}","v2"]}}"#);
    let front = Front::start(registry.port(), move |request, _| {
        match request.target.contains("/tags/list") {
            true => Action::Reply(
                200,
                vec![("Content-Type".into(), "application/json".into())],
                body.clone(),
            ),
            false => Action::Forward,
        }
    });
    let source = format!("{}/hostile/app", front.host());
    let to = format!("{}/mirror", registry.host());
    let run = cache.run(&["sync", &source, "--to", &to]).exits(3);
    assert_run_inert(&run);
    let failed: Vec<&str> = (run.stdout.lines())
        .filter(|line| line.contains("FAILED"))
        .collect();
    assert_eq!(failed.len(), 1, "{}", run.stdout);
    assert!(
        failed[0].contains(r"bad\x1b") && failed[0].contains("(exit 3)"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("warning: line 1"), "{}", run.stderr);
    let mirrored = cache.run(&["tags", &format!("{to}/hostile/app")]).success();
    assert_eq!(mirrored.stdout, "v1\nv2\n");
}
