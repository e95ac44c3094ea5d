//! The real CNCF Distribution registry (`docker-registry serve`), started on a free loopback
//! port in a temporary directory: plain HTTP, or HTTPS with a test CA made by openssl. A
//! registry that cannot start fails the test.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::token::{ISSUER, SERVICE, TokenServer};
use super::{TempDir, tool};

/// A running registry, stopped when dropped.
pub struct TestRegistry {
    process: Child,
    dir: TempDir,
    port: u16,
    /// The CA that signed its certificate, for `--ca-cert` (HTTPS registries only).
    pub ca_cert: Option<PathBuf>,
    credentials: bool,
    /// Its token issuer (Bearer registries only).
    issuer: Option<TokenServer>,
}

/// How the registry is reached and who may use it.
pub enum Setup {
    /// Plain HTTP, anonymous.
    Plain,
    /// HTTPS with a certificate from a test CA, anonymous.
    Tls,
    /// HTTPS and htpasswd Basic authentication for one user.
    Basic {
        username: &'static str,
        password: &'static str,
    },
    /// Plain HTTP and htpasswd Basic authentication for the robot user.
    PlainBasic,
    /// HTTPS and Bearer tokens from the tests' issuer: push and pull for the robot user,
    /// pull on `public/` for anyone.
    Token,
    /// Plain HTTP, a pull-through cache (`proxy: remoteurl`) of the plain registry on this
    /// port: it fetches what it lacks from there, and refuses pushes.
    PullThrough(u16),
}

/// A Harbor-style robot account name, with the `$` that trips up shells and parsers.
pub const ROBOT_USER: &str = "robot$ci+pusher";
/// A password with a `:`, which must not be taken as the end of the user name.
pub const ROBOT_PASSWORD: &str = "s3cret:with:colons";

impl TestRegistry {
    /// Starts a registry of the given kind, which allows deleting manifests.
    pub fn start(setup: Setup) -> TestRegistry {
        TestRegistry::start_with(setup, true, "")
    }

    /// Starts a registry of the given kind that refuses to delete (Distribution's default).
    pub fn start_without_deletes(setup: Setup) -> TestRegistry {
        TestRegistry::start_with(setup, false, "")
    }

    /// Starts a plain registry that accepts manifests naming foreign (non-distributable)
    /// layers by http(s) URL, as registries holding Windows images do (Distribution refuses
    /// URLs in manifests unless its `validation` allows them).
    pub fn start_allowing_foreign_layers() -> TestRegistry {
        let validation =
            "validation:\n  manifests:\n    urls:\n      allow:\n        - ^https?://\n";
        TestRegistry::start_with(Setup::Plain, true, validation)
    }

    /// Starts a registry; `validation` is added to its configuration as it is.
    fn start_with(setup: Setup, deletes: bool, validation: &str) -> TestRegistry {
        let dir = TempDir::new("registry");
        let mut tls = String::new();
        let mut extra = String::new();
        let mut ca_cert = None;
        if !matches!(
            setup,
            Setup::Plain | Setup::PlainBasic | Setup::PullThrough(_)
        ) {
            let (ca, cert, key) = test_certificates(&dir);
            tls = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            );
            ca_cert = Some(ca);
        }
        let credentials = !matches!(setup, Setup::Plain | Setup::Tls | Setup::PullThrough(_));
        let mut issuer = None;
        match setup {
            Setup::Basic { .. } | Setup::PlainBasic => {
                let (username, password) = match setup {
                    Setup::Basic { username, password } => (username, password),
                    _ => (ROBOT_USER, ROBOT_PASSWORD),
                };
                let line = tool("htpasswd", &["-Bbn", username, password]);
                fs::write(dir.join("htpasswd"), line.trim()).unwrap();
                let path = dir.join("htpasswd");
                extra = format!(
                    "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                    path.display()
                );
            }
            Setup::Token => {
                let server = TokenServer::start(
                    dir.path(),
                    &dir.join("server.crt"),
                    &dir.join("server.key"),
                );
                extra = format!(
                    "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                    server.realm(),
                    server.signing_cert.display()
                );
                issuer = Some(server);
            }
            Setup::PullThrough(upstream) => {
                extra = format!("proxy:\n  remoteurl: http://127.0.0.1:{upstream}\n");
            }
            Setup::Plain | Setup::Tls => {}
        }
        // A port picked free may be taken by another test before the registry binds it: the
        // registry then exits, and it is started again on another. Only its own log line says
        // that it listens, so another test's registry on a reused port is never mistaken for it.
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "version: 0.1\n\
                 log:\n  level: info\n  accesslog:\n    disabled: false\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: {deletes}\n\
                 http:\n  addr: 127.0.0.1:{port}\n{tls}{extra}{validation}",
                dir.join("storage").display()
            );
            fs::write(dir.join("config.yml"), config).unwrap();
            let log = fs::File::create(dir.join("registry.log")).unwrap();
            let mut process = Command::new("docker-registry")
                .arg("serve")
                .arg(dir.join("config.yml"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start docker-registry ({e}); scripts/test.sh installs it")
                });
            if listening(&mut process, &dir.join("registry.log"), port) {
                return TestRegistry {
                    process,
                    dir,
                    port,
                    ca_cert,
                    credentials,
                    issuer,
                };
            }
            let _ = process.wait();
        }
        panic!("docker-registry found no free port in five tries");
    }

    /// The scope of every token its issuer was asked for, in order (Bearer registries).
    pub fn token_scopes(&self) -> Vec<String> {
        self.issuer
            .as_ref()
            .map(TokenServer::scopes)
            .unwrap_or_default()
    }

    /// Its token issuer (Bearer registries only).
    pub fn issuer(&self) -> &TokenServer {
        self.issuer.as_ref().expect("a registry with Setup::Token")
    }

    /// Whether only the robot user may use it.
    pub fn needs_credentials(&self) -> bool {
        self.credentials
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, the registry part of an image reference.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Everything the registry logged, including one access-log line per request.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// How many requests the access log shows whose request line starts with `prefix`
    /// (`"PATCH /v2/"`).
    pub fn requests(&self, prefix: &str) -> usize {
        self.log()
            .lines()
            .filter(|line| line.contains(&format!("\"{prefix}")))
            .count()
    }

    /// Uploads `bytes` as a blob of `repository` with curl (plain HTTP registries), in a
    /// `POST` and a closing `PUT`; returns its digest.
    pub fn put_blob(&self, repository: &str, bytes: &[u8]) -> String {
        put_blob_at(
            &self.host(),
            &self.dir.join("upload.bin"),
            repository,
            bytes,
        )
    }

    /// Stores `manifest` (of `media_type`) as `reference` of `repository` with curl (plain
    /// HTTP registries), exactly these bytes.
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        manifest: &[u8],
    ) {
        let file = self.dir.join("manifest.json");
        put_manifest_at(
            &self.host(),
            &file,
            (repository, reference),
            media_type,
            manifest,
        );
    }

    /// The `--ca-cert` flag for this registry, if it has a test CA.
    pub fn ca_args(&self) -> Vec<String> {
        match &self.ca_cert {
            Some(ca) => vec!["--ca-cert".into(), ca.display().to_string()],
            None => Vec::new(),
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Waits until the registry's log (at `log`) says it listens on `port`: `false` when it exited
/// because another process took the port first. Any other failure fails the test.
fn listening(process: &mut Child, log: &Path, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    let listening = format!("listening on 127.0.0.1:{port}");
    loop {
        let said = fs::read_to_string(log).unwrap_or_default();
        if said.contains(&listening) && TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        if let Some(status) = process.try_wait().unwrap() {
            if said.contains("address already in use") {
                return false;
            }
            panic!("docker-registry exited ({status}):\n{said}");
        }
        assert!(
            Instant::now() < deadline,
            "docker-registry did not listen:\n{said}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback port nothing listens on now.
/// A loopback port held for as long as it lives, where every connection is closed at once
/// without a word: a mirror that is down, on a port no other test can take meanwhile.
pub struct DeadPort {
    pub port: u16,
}

impl DeadPort {
    /// Binds a port and closes whatever connects to it.
    pub fn hold() -> DeadPort {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // The thread lives as long as the test process; the port stays taken till then.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                drop(stream);
            }
        });
        DeadPort { port }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Makes a new RSA key at `key` and a self-signed certificate for it at `cert`, valid two
/// days, with the common name `name`.
pub fn self_signed(key: &Path, cert: &Path, name: &str) {
    let subject = format!("/CN={name}");
    let (key, cert) = (key.to_str().unwrap(), cert.to_str().unwrap());
    let args = [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
    ];
    tool(
        "openssl",
        &[
            &args[..],
            &["-subj", &subject, "-keyout", key, "-out", cert],
        ]
        .concat(),
    );
}

/// A test CA and a server certificate it signed for 127.0.0.1, localhost and registry.test (the
/// name the tests' proxy resolves to loopback).
fn test_certificates(dir: &TempDir) -> (PathBuf, PathBuf, PathBuf) {
    let path = |name: &str| dir.join(name).display().to_string();
    self_signed(
        &dir.join("ca.key"),
        &dir.join("ca.crt"),
        "docker-image-pusher test CA",
    );
    tool(
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &path("server.key"),
            "-out",
            &path("server.csr"),
        ],
    );
    fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:registry.test\n",
    )
    .unwrap();
    tool(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &path("server.csr"),
            "-CA",
            &path("ca.crt"),
            "-CAkey",
            &path("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &path("san.ext"),
            "-out",
            &path("server.crt"),
        ],
    );
    (
        dir.join("ca.crt"),
        dir.join("server.crt"),
        dir.join("server.key"),
    )
}

/// Uploads `bytes` as a blob of `repository` to the plain-HTTP registry (or front) at `host`
/// with curl, in a `POST` and a closing `PUT`, through the scratch file `file`; returns its
/// digest.
pub fn put_blob_at(host: &str, file: &Path, repository: &str, bytes: &[u8]) -> String {
    let digest = format!("sha256:{}", super::sha256(bytes));
    fs::write(file, bytes).unwrap();
    let started = tool(
        "curl",
        &[
            "-sSf",
            "-X",
            "POST",
            "-D",
            "-",
            "-o",
            "/dev/null",
            &format!("http://{host}/v2/{repository}/blobs/uploads/"),
        ],
    );
    let location = (started.lines())
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("location")
                .then(|| value.trim().to_string())
        })
        .expect("the registry names the upload's location");
    let location = match location.starts_with('/') {
        true => format!("http://{host}{location}"),
        false => location,
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    curl_put(
        "application/octet-stream",
        file,
        &format!("{location}{separator}digest={digest}"),
    );
    digest
}

/// Stores `manifest` (of `media_type`) as `(repository, reference)` on the plain-HTTP
/// registry (or front) at `host` with curl, exactly these bytes, through the scratch file
/// `file`.
pub fn put_manifest_at(
    host: &str,
    file: &Path,
    (repository, reference): (&str, &str),
    media_type: &str,
    manifest: &[u8],
) {
    fs::write(file, manifest).unwrap();
    curl_put(
        media_type,
        file,
        &format!("http://{host}/v2/{repository}/manifests/{reference}"),
    );
}

/// PUTs the bytes of `file` as `content_type` to `url` with curl, failing the test on an error
/// status.
fn curl_put(content_type: &str, file: &Path, url: &str) {
    tool(
        "curl",
        &[
            "-sSf",
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {content_type}"),
            "--data-binary",
            &format!("@{}", file.display()),
            url,
        ],
    );
}
