//! OAuth2 identity tokens, as `docker login` to ACR leaves them: `"identitytoken"` in
//! config.json, or a credential helper answering the user `<token>`. They are exchanged at the
//! registry's token server with a refresh-token grant (`POST`), never sent as a password unless
//! the server refuses `POST`; `login` stores one when the server grants it. The registry is the
//! real one with `auth: token`; the issuer is the tests' own, taught both grants.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use support::access::{archive, skopeo_sees};
use support::images::skopeo_identity;
use support::registry::{ROBOT_PASSWORD, ROBOT_USER, Setup, TestRegistry};
use support::token::REFRESH_TOKEN;
use support::{Run, TempDir, base64, command};

/// ACR's user name for identity tokens.
const TOKEN_USER: &str = "00000000-0000-0000-0000-000000000000";

/// A token registry and a folder for Docker's configuration (and a helper's `bin`).
struct Site {
    registry: TestRegistry,
    dir: TempDir,
}

impl Site {
    fn new() -> Site {
        Site {
            registry: TestRegistry::start(Setup::Token),
            dir: TempDir::new("identity"),
        }
    }

    fn config_json(&self) -> PathBuf {
        self.dir.join("docker/config.json")
    }

    fn write_config(&self, config: serde_json::Value) {
        fs::create_dir_all(self.dir.join("docker")).unwrap();
        fs::write(self.config_json(), config.to_string()).unwrap();
    }

    /// Runs the binary with this site's DOCKER_CONFIG, its helpers first on PATH, the
    /// registry's CA and `stdin` as standard input; no secret may show in what it says.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let cache = self.dir.join("cache");
        let ca = self.registry.ca_cert.as_ref().unwrap();
        let mut all = vec!["--cache-dir", cache.to_str().unwrap()];
        all.extend_from_slice(args);
        all.extend(["--ca-cert", ca.to_str().unwrap()]);
        let path = format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut command = command(&all);
        command
            .env("DOCKER_CONFIG", self.dir.join("docker"))
            .env("PATH", path);
        if let Some(input) = stdin {
            let file = self.dir.join("stdin");
            fs::write(&file, input).unwrap();
            command.stdin(fs::File::open(file).unwrap());
        }
        let run = Run::from(command.output().unwrap());
        for secret in [ROBOT_PASSWORD, REFRESH_TOKEN, "eyJ"] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "a secret leaked: {}",
                run.stderr
            );
        }
        run
    }

    fn push(&self, archive: &Path, repository: &str) -> Run {
        let target = format!("{}/{repository}", self.registry.host());
        self.run(&["push", archive.to_str().unwrap(), &target], None)
    }
}

/// config.json as `docker login` leaves it for an identity token.
fn identity_token_entry(host: &str) -> serde_json::Value {
    serde_json::json!({ "auths": { host: {
        "auth": base64(format!("{TOKEN_USER}:").as_bytes()),
        "identitytoken": REFRESH_TOKEN,
    }}})
}

#[test]
fn an_identity_token_is_exchanged_with_a_refresh_grant_never_sent_as_basic() {
    let site = Site::new();
    let archive = archive(&site.dir);
    site.write_config(identity_token_entry(&site.registry.host()));
    site.push(&archive, "private/app:v1").success();
    let asked = site.registry.issuer().asked();
    assert_eq!(
        skopeo_sees(&site.registry, "private/app:v1"),
        skopeo_identity(&format!("docker-archive:{}", archive.display()))
    );
    assert!(!asked.is_empty());
    for request in &asked {
        assert_eq!(request.method, "POST", "{request:?}");
        assert_eq!(request.param("grant_type"), Some("refresh_token"));
        assert_eq!(request.param("client_id"), Some("docker-image-pusher"));
        assert_eq!(request.param("service"), Some(support::token::SERVICE));
        assert_eq!(request.authorization, None, "no Basic beside the grant");
    }

    // A credential helper says the same with the user name `<token>`.
    let helper = site.dir.join("bin/docker-credential-dip-token");
    fs::create_dir_all(helper.parent().unwrap()).unwrap();
    let answer = serde_json::json!({ "Username": "<token>", "Secret": REFRESH_TOKEN });
    fs::write(
        &helper,
        format!("#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\necho '{answer}'\n"),
    )
    .unwrap();
    fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let host = site.registry.host();
    site.write_config(serde_json::json!({ "credHelpers": { &host: "dip-token" } }));
    let before = site.registry.issuer().asked().len();
    let image = format!("{host}/private/app:v1");
    site.run(&["pull", &image], None).success();
    let helper_asked = &site.registry.issuer().asked()[before..];
    assert!(!helper_asked.is_empty());
    assert!(
        (helper_asked.iter()).all(|r| r.param("grant_type") == Some("refresh_token")),
        "{helper_asked:?}"
    );
}

#[test]
fn login_stores_the_identity_token_the_server_grants_instead_of_the_password() {
    let site = Site::new();
    let host = site.registry.host();
    let login = site
        .run(
            &["login", &host, "-u", ROBOT_USER, "--password-stdin"],
            Some(&format!("{ROBOT_PASSWORD}\n")),
        )
        .success();
    assert!(login.stderr.contains("identity token"), "{}", login.stderr);
    let offline = (site.registry.issuer().asked().into_iter())
        .find(|r| r.param("grant_type") == Some("password"))
        .expect("a password grant");
    assert_eq!(offline.method, "POST");
    assert_eq!(offline.param("access_type"), Some("offline"));

    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(site.config_json()).unwrap()).unwrap();
    let entry = &config["auths"][&host];
    assert_eq!(entry["identitytoken"], REFRESH_TOKEN, "{config}");
    assert_eq!(entry["auth"], base64(format!("{ROBOT_USER}:").as_bytes()));
    assert!(!config.to_string().contains(ROBOT_PASSWORD));

    // What was stored works on its own.
    let archive = archive(&site.dir);
    let before = site.registry.issuer().asked().len();
    site.push(&archive, "private/app:v2").success();
    let after = &site.registry.issuer().asked()[before..];
    assert!(
        after
            .iter()
            .all(|r| r.param("grant_type") == Some("refresh_token"))
    );
}

#[test]
fn a_token_server_that_refuses_post_gets_basic_instead() {
    let site = Site::new();
    site.registry.issuer().refuse_post();
    let host = site.registry.host();
    let archive = archive(&site.dir);

    site.write_config(identity_token_entry(&host));
    site.push(&archive, "private/app:v1").success();
    let asked = site.registry.issuer().asked();
    assert_eq!(asked[0].method, "POST", "the grant is tried first");
    let fallback = (asked.iter())
        .find(|r| r.method == "GET")
        .expect("then GET");
    let basic = base64(format!("{TOKEN_USER}:{REFRESH_TOKEN}").as_bytes());
    assert_eq!(fallback.authorization, Some(format!("Basic {basic}")));

    // login finds no refresh token to get, and stores the password as before.
    fs::remove_file(site.config_json()).unwrap();
    let login = site
        .run(
            &["login", &host, "-u", ROBOT_USER, "-p", ROBOT_PASSWORD],
            None,
        )
        .success();
    assert!(!login.stderr.contains("identity token"), "{}", login.stderr);
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(site.config_json()).unwrap()).unwrap();
    assert_eq!(
        config["auths"][&host]["auth"],
        base64(format!("{ROBOT_USER}:{ROBOT_PASSWORD}").as_bytes())
    );
    assert!(config["auths"][&host].get("identitytoken").is_none());
}
