//! Helpers for the end-to-end tests: temporary directories, running the built binary the way
//! a user would, and checking a cache with an independent sha256.
//!
//! Each test file uses a different subset, hence the allowance below.
#![allow(dead_code)]

pub mod access;
pub mod front;
pub mod images;
pub mod proxy;
pub mod referrers;
pub mod referrers_api;
pub mod registry;
pub mod tarball;
pub mod token;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_docker-image-pusher")
}

/// A directory removed when dropped.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new empty directory whose name starts with `label`.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("dip-{label}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("creating a temporary directory");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A cache directory for one test. When the test ends without panicking, every blob in it is
/// checked to hash to its name.
pub struct TestCache {
    dir: TempDir,
}

impl TestCache {
    pub fn new() -> TestCache {
        TestCache {
            dir: TempDir::new("cache"),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("cache")
    }

    /// Runs the binary with this cache.
    pub fn run(&self, args: &[&str]) -> Run {
        let cache = self.path();
        let mut all = vec!["--cache-dir", cache.to_str().expect("UTF-8 temp path")];
        all.extend_from_slice(args);
        run(&all)
    }

    /// Runs the binary with this cache and `input` on standard input.
    pub fn run_with_stdin(&self, args: &[&str], input: &Path) -> Run {
        let cache = self.path();
        let mut command = command(&[]);
        command.arg("--cache-dir").arg(&cache).args(args);
        command.stdin(fs::File::open(input).expect("opening the input"));
        Run::from(command.output().expect("running the binary"))
    }

    /// Runs the binary with this cache, expecting success; returns standard output as bytes
    /// (for commands that write data, not text).
    pub fn stdout_bytes(&self, args: &[&str]) -> Vec<u8> {
        let mut command = command(&[
            "--cache-dir",
            self.path().to_str().expect("UTF-8 temp path"),
        ]);
        let output = command.args(args).output().expect("running the binary");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?} failed:\n{stderr}");
        output.stdout
    }

    /// `list --json`, parsed.
    pub fn list(&self) -> Vec<serde_json::Value> {
        let listed = self.run(&["list", "--json"]).success();
        serde_json::from_str(&listed.stdout).expect("list --json prints JSON")
    }

    /// Every file in the cache with the sha256 of its content, for byte-for-byte comparisons.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        let mut files = BTreeMap::new();
        if self.path().exists() {
            for path in files_under(&self.path()) {
                let relative = path.strip_prefix(self.path()).unwrap().to_path_buf();
                files.insert(relative, sha256_file(&path));
            }
        }
        files
    }

    /// The blobs and manifest files only: what two runs from different sources, at different
    /// times, should agree on (`index.json` records the source and the time).
    pub fn content_snapshot(&self) -> BTreeMap<PathBuf, String> {
        let mut files = self.snapshot();
        files.retain(|path, _| path.starts_with("blobs") || path.starts_with("manifests"));
        files
    }

    /// Checks the cache: see [`verify_cache`].
    pub fn verify(&self) {
        verify_cache(&self.path());
    }
}

impl Drop for TestCache {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.verify();
        }
    }
}

/// Checks that every `blobs/sha256/<hex>` of the cache at `cache` hashes to `<hex>`, and that
/// every blob and manifest file its index names is there.
pub fn verify_cache(cache: &Path) {
    let blobs = cache.join("blobs/sha256");
    if blobs.exists() {
        for path in files_under(&blobs) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(
                sha256_file(&path),
                name,
                "blob {} does not hash to its name",
                path.display()
            );
        }
    }
    let index = cache.join("index.json");
    if index.exists() {
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(&index).unwrap()).expect("index.json is JSON");
        for (name, image) in index.as_object().expect("index.json is an object") {
            for digest in image["blobs"].as_object().unwrap().keys() {
                let hex = digest.strip_prefix("sha256:").unwrap();
                assert!(blobs.join(hex).exists(), "{name}: blob {digest} is missing");
            }
            let manifest = cache.join(image["manifest_path"].as_str().unwrap());
            assert!(
                manifest.exists(),
                "{name}: manifest file {} is missing",
                manifest.display()
            );
        }
    }
}

/// What a run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// What a finished command said and how it exited.
    pub fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts exit 0 and returns the run.
    pub fn success(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts the exit code and returns the run.
    pub fn exits(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// The binary with `args`, no `DOCKER_PUSHER_*` variables, no podman credentials of the
/// machine's (`auth.json` is looked for where nothing is; a test that means one names it),
/// and no standard input.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(bin());
    command.args(args).stdin(Stdio::null());
    for (name, _) in std::env::vars() {
        if name.starts_with("DOCKER_PUSHER_") {
            command.env_remove(name);
        }
    }
    let nowhere = std::env::temp_dir().join("docker-image-pusher-tests-no-auth-json");
    command
        .env_remove("REGISTRY_AUTH_FILE")
        .env("XDG_RUNTIME_DIR", &nowhere)
        .env("XDG_CONFIG_HOME", &nowhere);
    command
}

/// Runs the binary with `args` and waits for it.
pub fn run(args: &[&str]) -> Run {
    Run::from(command(args).output().expect("running the binary"))
}

/// Every file below `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// The sha256 hex of a file, streamed.
pub fn sha256_file(path: &Path) -> String {
    let mut file = fs::File::open(path).unwrap();
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        let n = file.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    hex(&hasher.finalize())
}

/// The sha256 hex of bytes.
pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 with padding (for `Authorization: Basic` and JWT parts).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// Gzips a file into another.
pub fn gzip_file(from: &Path, to: &Path) {
    let mut encoder =
        flate2::write::GzEncoder::new(fs::File::create(to).unwrap(), flate2::Compression::fast());
    std::io::copy(&mut fs::File::open(from).unwrap(), &mut encoder).unwrap();
    encoder.finish().unwrap().flush().unwrap();
}

/// Pushes the archive at `archive` to `target` with `--compress none` from a fresh cache, so
/// the registry holds its layers byte for byte.
pub fn push_uncompressed(archive: &Path, target: &str) {
    let archive = archive.to_str().expect("UTF-8 temp path");
    TestCache::new()
        .run(&["push", "--compress", "none", archive, target])
        .success();
}

/// Runs an external tool, failing the test (never skipping it) when the tool is missing or fails.
pub fn tool(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}); scripts/test.sh installs the test dependencies")
        });
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
