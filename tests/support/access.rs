//! How the end-to-end tests reach a test registry: with skopeo (the oracle, with no TLS
//! check and the robot's credentials where needed) and with the binary (its CA and the
//! credentials), checking that no password or token is ever printed.

use std::path::PathBuf;

use super::images;
use super::registry::{ROBOT_PASSWORD, ROBOT_USER, TestRegistry};
use super::{Run, TempDir, TestCache};

/// skopeo's flags for talking to a test registry: no TLS check (skopeo is the oracle here,
/// not the subject) and the robot's credentials where the registry needs them.
pub fn skopeo_flags(registry: &TestRegistry, direction: &str) -> Vec<String> {
    let mut flags = vec![format!("--{direction}tls-verify=false")];
    if registry.needs_credentials() {
        flags.push(format!("--{direction}creds={ROBOT_USER}:{ROBOT_PASSWORD}"));
    }
    flags
}

/// What skopeo sees in the registry: config digest and diff_ids.
pub fn skopeo_sees(registry: &TestRegistry, reference: &str) -> (String, Vec<String>) {
    let flags = skopeo_flags(registry, "");
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    images::skopeo_identity_with(&flags, &format!("docker://{}/{reference}", registry.host()))
}

/// The binary's arguments for this registry: its CA, and credentials when it needs them.
pub fn access(registry: &TestRegistry) -> Vec<String> {
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

/// Runs the binary with `args` and this registry's access flags; fails if a password or
/// token shows.
pub fn run_with(cache: &TestCache, args: &[&str], registry: &TestRegistry) -> Run {
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
pub fn archive(dir: &TempDir) -> PathBuf {
    images::docker_archive(dir.path(), "example.com/app:v1")
}
