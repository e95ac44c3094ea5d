//! Secrets stay out of output: a password in a reference, on the command line, in a broken
//! `config.json` or in bytes that are not UTF-8 is never printed, on stdout, stderr or in
//! `--json`, and a password on the command line earns a warning.

mod support;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;

use support::{Run, TempDir, TestCache, command};

const SECRET: &str = "hunter2";

/// Asserts that the run printed the secret nowhere.
fn assert_unprinted(run: &Run) {
    assert!(
        !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
        "the password was printed:\n{}{}",
        run.stdout,
        run.stderr
    );
}

/// A loopback port nothing listens on, so that connecting fails at once.
const NOBODY: &str = "127.0.0.1:9";

#[test]
fn a_password_in_a_reference_is_refused_without_being_printed() {
    let dir = TempDir::new("secret-reference");
    let cache = TestCache::new();
    let with_password = format!("https://user:{SECRET}@{NOBODY}/app:v1");
    let bare = format!("user:{SECRET}@{NOBODY}/app:v1");
    let repository = format!("https://user:{SECRET}@{NOBODY}/app");
    for args in [
        vec!["pull", with_password.as_str()],
        vec!["push", "app.tar", bare.as_str()],
        vec!["copy", bare.as_str(), "127.0.0.1:9/b:v1"],
        vec!["tags", repository.as_str()],
        vec!["-r", with_password.as_str(), "-f", "app.tar"],
    ] {
        let run = cache.run(&args).exits(2);
        assert!(
            run.stderr.contains("credentials in references"),
            "{args:?}: {}",
            run.stderr
        );
        assert_unprinted(&run);
    }
    let list = dir.join("list.txt");
    fs::write(&list, format!("{with_password} {NOBODY}/b:v1\n{bare}\n")).unwrap();
    for json in [false, true] {
        let mut args = vec!["sync", "--file", list.to_str().unwrap()];
        if json {
            args.push("--json");
        }
        let run = cache.run(&args);
        assert_ne!(run.code, 0);
        assert!(run.stdout.contains("***@"), "{}", run.stdout);
        assert_unprinted(&run);
    }
}

#[test]
fn a_password_on_the_command_line_is_warned_about_and_never_echoed() {
    let cache = TestCache::new();
    let image = format!("{NOBODY}/app:v1");
    let run = cache.run(&[
        "pull",
        &image,
        "-u",
        "me",
        "-p",
        SECRET,
        "--retry-attempts",
        "0",
    ]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(run.stderr.contains("--password-stdin"), "{}", run.stderr);
    assert_unprinted(&run);

    let mut not_utf8 = SECRET.as_bytes().to_vec();
    not_utf8.push(0xff);
    let output = command(&["pull", &image, "-u", "me", "-p"])
        .arg(OsStr::from_bytes(&not_utf8))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not valid UTF-8"), "{stderr}");
    assert!(!stderr.contains(SECRET), "{stderr}");
}

#[test]
fn a_broken_docker_config_is_named_but_not_quoted() {
    let dir = TempDir::new("secret-config");
    let image = format!("{NOBODY}/app:v1");
    for content in [
        format!("password={SECRET}"),
        format!("\"{SECRET}\""),
        format!(r#"{{"auths": {{"{NOBODY}": {{"auth": 12}}}}, "x": {SECRET}}}"#),
        format!(r#"{{"auths": {{"{NOBODY}": {{"auth": "{SECRET}"}}}}"#),
    ] {
        fs::write(dir.join("config.json"), &content).unwrap();
        let output = command(&["pull", &image, "--retry-attempts", "0"])
            .env("DOCKER_CONFIG", dir.path())
            .output()
            .unwrap();
        let run = Run::from(output);
        assert_unprinted(&run);
    }
}
