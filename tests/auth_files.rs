//! podman's and skopeo's credentials, against a real registry with htpasswd Basic auth: an
//! auth.json is read when Docker's config.json has nothing for the registry and never when it
//! has, in the order containers-auth.json(5) gives; `login --auth-file` writes a file that
//! skopeo (the oracle) reads, and a file `skopeo login` wrote is read.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::access::archive;
use support::registry::{ROBOT_PASSWORD, ROBOT_USER, Setup, TestRegistry};
use support::{Run, TempDir, TestCache, command};

/// The variables that say where credentials are, each set by the tests themselves.
const PLACES: [&str; 5] = [
    "DOCKER_CONFIG",
    "HOME",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "REGISTRY_AUTH_FILE",
];

/// One user's world: a home, Docker's folder and a runtime folder below `dir`.
struct User {
    dir: TempDir,
    cache: TestCache,
}

impl User {
    fn new(label: &str) -> User {
        User {
            dir: TempDir::new(label),
            cache: TestCache::new(),
        }
    }

    fn docker_config(&self) -> PathBuf {
        self.dir.join("docker/config.json")
    }

    fn home_auth(&self) -> PathBuf {
        self.dir.join("home/.config/containers/auth.json")
    }

    fn runtime_auth(&self) -> PathBuf {
        self.dir.join("run/containers/auth.json")
    }

    /// Runs the binary with this user's folders, and `extra` variables (`REGISTRY_AUTH_FILE`).
    fn run(&self, args: &[&str], extra: &[(&str, &Path)]) -> Run {
        let cache = self.cache.path();
        let mut binary = command(&[&["--cache-dir", cache.to_str().unwrap()], args].concat());
        self.environment(&mut binary, extra);
        let run = Run::from(binary.output().unwrap());
        assert!(
            !run.stdout.contains(ROBOT_PASSWORD) && !run.stderr.contains(ROBOT_PASSWORD),
            "the password leaked: {}",
            run.stderr
        );
        run
    }

    /// Sets this user's folders on `program`, with `extra` variables.
    fn environment(&self, program: &mut Command, extra: &[(&str, &Path)]) {
        for name in PLACES {
            program.env_remove(name);
        }
        program
            .env("DOCKER_CONFIG", self.dir.join("docker"))
            .env("HOME", self.dir.join("home"))
            .env("XDG_RUNTIME_DIR", self.dir.join("run"));
        for (name, value) in extra {
            program.env(name, value);
        }
    }
}

/// Writes a file of credentials at `path` with `auths` entries of (key, user, password).
fn write_auths(path: &Path, entries: &[(&str, &str, &str)]) {
    let auths: serde_json::Map<String, serde_json::Value> = entries
        .iter()
        .map(|(key, user, password)| {
            let auth = support::base64(format!("{user}:{password}").as_bytes());
            (key.to_string(), serde_json::json!({ "auth": auth }))
        })
        .collect();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, serde_json::json!({ "auths": auths }).to_string()).unwrap();
}

/// A registry with htpasswd Basic auth over plain HTTP, holding `files/app:v1`; returns the
/// registry and that reference.
fn registry_with_an_image(user: &User) -> (TestRegistry, String) {
    let registry = TestRegistry::start(Setup::PlainBasic);
    let archive = archive(&user.dir);
    let image = format!("{}/files/app:v1", registry.host());
    let push = ["push", archive.to_str().unwrap(), &image];
    TestCache::new()
        .run(&[&push[..], &["-u", ROBOT_USER, "-p", ROBOT_PASSWORD]].concat())
        .success();
    (registry, image)
}

/// Asserts that a verbose pull of `image` succeeded with the credentials of `file`.
fn pulled_with(run: Run, host: &str, file: &Path) {
    let said = format!("credentials for {host} from {}", file.display());
    assert!(run.stderr.contains(&said), "{said}: {}", run.stderr);
}

#[test]
fn an_auth_json_is_read_only_when_config_json_has_nothing_for_the_registry() {
    let user = User::new("auth-json-after-config");
    let (registry, image) = registry_with_an_image(&user);
    let host = registry.host();
    let pull = || user.run(&["pull", &image, "-v"], &[]);

    // Nothing anywhere: refused, and the message names every file looked in.
    let refused = pull().exits(4);
    for file in [user.docker_config(), user.runtime_auth(), user.home_auth()] {
        let file = file.display().to_string();
        assert!(refused.stderr.contains(&file), "{file}: {}", refused.stderr);
    }

    // A namespaced key is for that namespace only, never for the registry as a whole.
    let namespaced = format!("{host}/files/app");
    write_auths(
        &user.home_auth(),
        &[(&namespaced, ROBOT_USER, ROBOT_PASSWORD)],
    );
    pull().exits(4);

    // config.json has nothing: the auth.json gives the credentials.
    write_auths(&user.home_auth(), &[(&host, ROBOT_USER, ROBOT_PASSWORD)]);
    pulled_with(pull().success(), &host, &user.home_auth());
    write_auths(&user.docker_config(), &[("other.example", "someone", "x")]);
    pulled_with(pull().success(), &host, &user.home_auth());

    // config.json has the registry: it wins, right or wrong.
    write_auths(&user.home_auth(), &[(&host, ROBOT_USER, "wrong")]);
    write_auths(
        &user.docker_config(),
        &[(&host, ROBOT_USER, ROBOT_PASSWORD)],
    );
    pulled_with(pull().success(), &host, &user.docker_config());
    write_auths(&user.home_auth(), &[(&host, ROBOT_USER, ROBOT_PASSWORD)]);
    write_auths(&user.docker_config(), &[(&host, ROBOT_USER, "wrong")]);
    let refused = pull().exits(4);
    let from = format!(
        "whose credentials came from {}",
        user.docker_config().display()
    );
    assert!(refused.stderr.contains(&from), "{from}: {}", refused.stderr);
}

#[test]
fn registry_auth_file_beats_the_runtime_folder_which_beats_home() {
    let user = User::new("auth-json-order");
    let (registry, image) = registry_with_an_image(&user);
    let host = registry.host();
    let given = user.dir.join("given/auth.json");
    let pull = |extra: &[(&str, &Path)]| user.run(&["pull", &image, "-v"], extra);

    write_auths(&user.home_auth(), &[(&host, ROBOT_USER, "wrong")]);
    write_auths(&user.runtime_auth(), &[(&host, ROBOT_USER, ROBOT_PASSWORD)]);
    pulled_with(pull(&[]).success(), &host, &user.runtime_auth());
    write_auths(&user.home_auth(), &[(&host, ROBOT_USER, ROBOT_PASSWORD)]);
    write_auths(&user.runtime_auth(), &[(&host, ROBOT_USER, "wrong")]);
    pull(&[]).exits(4);

    write_auths(&given, &[(&host, ROBOT_USER, ROBOT_PASSWORD)]);
    pulled_with(
        pull(&[("REGISTRY_AUTH_FILE", &given)]).success(),
        &host,
        &given,
    );
    // As for podman and skopeo, a file named explicitly is the only auth.json read.
    write_auths(&given, &[("other.example", "someone", "x")]);
    write_auths(&user.runtime_auth(), &[(&host, ROBOT_USER, ROBOT_PASSWORD)]);
    pull(&[("REGISTRY_AUTH_FILE", &given)]).exits(4);
}

#[test]
fn login_auth_file_writes_a_file_skopeo_reads_and_logout_empties_it() {
    let user = User::new("auth-json-login");
    let (registry, image) = registry_with_an_image(&user);
    let host = registry.host();
    let file = user.dir.join("podman/containers/auth.json");
    let file_arg = file.to_str().unwrap();
    let skopeo = || {
        let mut skopeo = Command::new("skopeo");
        skopeo.args([
            "inspect",
            "--tls-verify=false",
            "--authfile",
            file_arg,
            &format!("docker://{image}"),
        ]);
        user.environment(&mut skopeo, &[]);
        skopeo.output().expect("skopeo is installed")
    };

    let login = ["login", &host, "--auth-file", file_arg, "-u", ROBOT_USER];
    let stored = user.run(&[&login[..], &["-p", ROBOT_PASSWORD]].concat(), &[]);
    let stored = stored.success();
    assert!(stored.stderr.contains(file_arg), "{}", stored.stderr);
    assert!(!user.docker_config().exists(), "config.json was written");
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    let seen = skopeo();
    assert!(
        seen.status.success(),
        "skopeo reads the file we wrote: {}",
        String::from_utf8_lossy(&seen.stderr)
    );

    // Logging in again keeps the file's other entries and settings, as podman's are.
    let mut kept: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    kept["auths"]["quay.io/team/app"] = serde_json::json!({ "auth": "dGVhbTp4" });
    kept["credHelpers"] = serde_json::json!({ "gcr.io": "gcloud" });
    fs::write(&file, kept.to_string()).unwrap();
    user.run(&[&login[..], &["-p", ROBOT_PASSWORD]].concat(), &[])
        .success();
    let written: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        written["auths"]["quay.io/team/app"],
        kept["auths"]["quay.io/team/app"]
    );
    assert_eq!(written["credHelpers"], kept["credHelpers"]);
    assert_eq!(mode(&file), 0o600);
    assert!(skopeo().status.success());
    let pulled = user.run(&["pull", &image, "-v"], &[("REGISTRY_AUTH_FILE", &file)]);
    pulled_with(pulled.success(), &host, &file);

    let removed = user.run(&["logout", &host, "--auth-file", file_arg], &[]);
    assert!(removed.success().stderr.contains(file_arg));
    let left: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert!(left["auths"].get(&host).is_none(), "{left}");
    assert_eq!(
        left["auths"]["quay.io/team/app"],
        kept["auths"]["quay.io/team/app"]
    );
    assert!(!skopeo().status.success(), "skopeo got in after logout");

    // And the other way: a file skopeo's own login wrote gives us the credentials.
    let theirs = user.dir.join("skopeo/auth.json");
    let mut login = Command::new("skopeo");
    login.args(["login", "--tls-verify=false", "--authfile"]);
    login
        .arg(&theirs)
        .args(["-u", ROBOT_USER, "-p", ROBOT_PASSWORD, &host]);
    user.environment(&mut login, &[]);
    let logged_in = login.output().expect("skopeo is installed");
    assert!(
        logged_in.status.success(),
        "skopeo login: {}",
        String::from_utf8_lossy(&logged_in.stderr)
    );
    let pulled = user.run(&["pull", &image, "-v"], &[("REGISTRY_AUTH_FILE", &theirs)]);
    pulled_with(pulled.success(), &host, &theirs);
}

#[test]
fn a_creds_store_that_keeps_nothing_for_the_registry_leaves_it_to_auth_json() {
    let user = User::new("auth-json-creds-store");
    let (registry, image) = registry_with_an_image(&user);
    let host = registry.host();
    let bin = user.dir.join("bin");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let helper = |name: &str, said: &str| {
        let script = bin.join(format!("docker-credential-{name}"));
        fs::create_dir_all(&bin).unwrap();
        fs::write(&script, format!("#!/bin/sh\necho '{said}'\nexit 1\n")).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let config = serde_json::json!({ "credsStore": name });
        fs::create_dir_all(user.dir.join("docker")).unwrap();
        fs::write(user.docker_config(), config.to_string()).unwrap();
    };
    write_auths(&user.home_auth(), &[(&host, ROBOT_USER, ROBOT_PASSWORD)]);
    let pull = || user.run(&["pull", &image, "-v"], &[("PATH", Path::new(&path))]);

    // Docker's helpers answer so for a server they keep nothing for.
    helper("empty", "credentials not found in native keychain");
    pulled_with(pull().success(), &host, &user.home_auth());
    // Any other failure is config.json's answer: warned of, and no other file read.
    helper("broken", "the keychain is locked");
    let refused = pull().exits(4);
    assert!(
        refused
            .stderr
            .contains("docker-credential-broken get failed: the keychain is locked"),
        "{}",
        refused.stderr
    );
}

#[test]
fn a_fifo_folder_or_huge_file_in_an_auth_json_place_is_warned_of_without_waiting_or_reading_it_all()
{
    let user = User::new("auth-json-strange");
    let (registry, image) = registry_with_an_image(&user);
    let fifo = user.dir.join("fifo.json");
    support::tool("mkfifo", &[fifo.to_str().unwrap()]);
    let huge = user.dir.join("huge.json");
    let padding = "x".repeat(5 << 20);
    fs::write(&huge, format!(r#"{{"auths": {{}}, "pad": "{padding}"}}"#)).unwrap();
    let folder = user.dir.join("folder.json");
    fs::create_dir_all(&folder).unwrap();
    let cache = user.cache.path();
    for (file, said) in [
        (&fifo, "not a regular file"),
        (&folder, "not a regular file"),
        (
            &huge,
            "larger than 4194304 bytes; not a file of credentials",
        ),
    ] {
        // Bounded from outside, so that a read that waits on the FIFO fails the test.
        let mut pull = Command::new("timeout");
        pull.args(["60", support::bin(), "--cache-dir", cache.to_str().unwrap()])
            .args(["pull", &image]);
        user.environment(&mut pull, &[("REGISTRY_AUTH_FILE", file)]);
        let refused = Run::from(pull.output().unwrap()).exits(4);
        let warned = format!("{}: {said}; going on without credentials", file.display());
        assert!(
            refused.stderr.contains(&warned),
            "{warned}: {}",
            refused.stderr
        );
    }
    let login = [
        "login",
        &registry.host(),
        "--auth-file",
        fifo.to_str().unwrap(),
    ];
    let login = user.run(
        &[&login[..], &["-u", ROBOT_USER, "-p", ROBOT_PASSWORD]].concat(),
        &[],
    );
    assert!(login.exits(2).stderr.contains("not a regular file"));
}

#[test]
fn the_key_written_for_the_registry_beats_an_older_form_of_it_as_for_skopeo() {
    let user = User::new("auth-json-exact-key");
    let (registry, _) = registry_with_an_image(&user);
    // By a name whose URL form ("http://localhost:…") sorts before it, so the first key that
    // names the registry is the stale one.
    let host = format!("localhost:{}", registry.port());
    let image = format!("{host}/files/app:v1");
    let stale = format!("http://{host}");
    let entries = [
        (stale.as_str(), ROBOT_USER, "wrong"),
        (host.as_str(), ROBOT_USER, ROBOT_PASSWORD),
    ];
    let given = user.dir.join("given/auth.json");
    write_auths(&given, &entries);
    let mut skopeo = Command::new("skopeo");
    skopeo.args(["inspect", "--tls-verify=false", "--authfile"]);
    skopeo.arg(&given).arg(format!("docker://{image}"));
    user.environment(&mut skopeo, &[]);
    assert!(
        skopeo.output().unwrap().status.success(),
        "skopeo takes {host}'s key"
    );
    let pulled = user.run(&["pull", &image, "-v"], &[("REGISTRY_AUTH_FILE", &given)]);
    pulled_with(pulled.success(), &host, &given);

    write_auths(&user.docker_config(), &entries);
    pulled_with(
        user.run(&["pull", &image, "-v"], &[]).success(),
        &host,
        &user.docker_config(),
    );
}

#[test]
fn logout_says_when_another_file_still_gives_the_registry_credentials() {
    let user = User::new("auth-json-logout-left");
    let (registry, image) = registry_with_an_image(&user);
    let host = registry.host();
    write_auths(&user.home_auth(), &[(&host, ROBOT_USER, ROBOT_PASSWORD)]);
    write_auths(
        &user.docker_config(),
        &[(&host, ROBOT_USER, ROBOT_PASSWORD)],
    );
    let home_auth = user.home_auth().display().to_string();

    let out = user.run(&["logout", &host], &[]).success();
    let removed = format!("removed the credentials for {host}");
    let left = format!("{home_auth} still has credentials for {host}, which are used");
    let how = format!("logout {host} --auth-file {home_auth}");
    for said in [&removed, &left, &how] {
        assert!(out.stderr.contains(said.as_str()), "{said}: {}", out.stderr);
    }
    pulled_with(
        user.run(&["pull", &image, "-v"], &[]).success(),
        &host,
        &user.home_auth(),
    );

    let out = user.run(&["logout", &host, "--auth-file", &home_auth], &[]);
    let out = out.success();
    assert!(!out.stderr.contains("still has"), "{}", out.stderr);
    user.run(&["pull", &image], &[]).exits(4);
}
