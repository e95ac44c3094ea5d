//! Progress as users see it: plain lines when stderr is not a terminal, a live line or block
//! under a real pseudo-terminal (util-linux `script`), JSON events for scripts, or nothing.

mod support;

use std::process::Command;

use support::registry::{Setup, TestRegistry};
use support::tarball::{legacy_items, write_tar};
use support::{TempDir, TestCache, bin, tool};

/// A registry holding a three-blob image, and the image's reference.
fn registry_with_image(dir: &TempDir) -> (TestRegistry, String) {
    let registry = TestRegistry::start(Setup::Plain);
    let archive = dir.join("image.tar");
    write_tar(
        &archive,
        &legacy_items(
            &[&vec![1u8; 1 << 20], &vec![2u8; 1 << 19]],
            r#"["example.com/image:v1"]"#,
        ),
    );
    let target = format!("{}/progress/image:v1", registry.host());
    TestCache::new()
        .run(&[
            "push",
            "--compress",
            "none",
            archive.to_str().unwrap(),
            &target,
        ])
        .success();
    (registry, target)
}

#[test]
fn plain_lines_when_stderr_is_not_a_terminal() {
    let dir = TempDir::new("lines");
    let (_registry, target) = registry_with_image(&dir);
    let run = TestCache::new().run(&["pull", &target]).success();
    assert_eq!(run.stderr.matches(" start (").count(), 3, "{}", run.stderr);
    assert_eq!(run.stderr.matches(" copied (").count(), 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("pulled ") && run.stderr.contains(" s ("),
        "the summary has the time: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains('\r') && !run.stderr.contains('\x1b'),
        "no control characters: {:?}",
        run.stderr
    );
}

/// Runs the binary under a pseudo-terminal and returns everything it wrote there.
fn under_a_terminal(cache: &TestCache, args: &[&str]) -> String {
    let mut line = format!("{} --cache-dir {}", bin(), cache.path().display());
    for arg in args {
        line.push(' ');
        line.push_str(arg);
    }
    let output = Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .output()
        .expect("running script");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{line}:\n{text}");
    text
}

#[test]
fn a_live_line_or_block_on_a_terminal() {
    let dir = TempDir::new("live");
    let (_registry, target) = registry_with_image(&dir);
    let slow = ["--limit-rate", "2M", "--progress-interval", "20"];
    let simple = under_a_terminal(
        &TestCache::new(),
        &[&["pull", target.as_str()][..], &slow].concat(),
    );
    assert!(
        simple.contains("\r\x1b[2K"),
        "the line is redrawn in place: {simple:?}"
    );
    assert!(
        simple.contains("%")
            && simple.contains("blobs")
            && simple.contains("ETA")
            && simple.contains("x1"),
        "{simple:?}"
    );
    assert!(
        !simple.contains(" start ("),
        "no plain lines on a terminal: {simple:?}"
    );

    let detailed = under_a_terminal(
        &TestCache::new(),
        &[
            &["pull", target.as_str(), "--progress", "detailed"][..],
            &slow,
        ]
        .concat(),
    );
    assert!(
        detailed.contains("blobs: ")
            && detailed.contains("speed: ")
            && detailed.contains("average"),
        "{detailed:?}"
    );
    assert!(
        detailed.contains("\x1b[1A"),
        "the block is redrawn in place: {detailed:?}"
    );

    let none = under_a_terminal(
        &TestCache::new(),
        &["pull", target.as_str(), "--progress", "none"],
    );
    assert!(
        !none.contains('\x1b') && none.contains("pulled "),
        "only the summary: {none:?}"
    );
}

#[test]
fn json_events_for_scripts() {
    let dir = TempDir::new("json");
    let (registry, target) = registry_with_image(&dir);
    let run = TestCache::new().run(&["pull", &target, "--json"]).success();
    let events: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect();
    assert_eq!(events[0]["event"], "start");
    assert_eq!(events[0]["blobs"], 3);
    assert_eq!(events.iter().filter(|e| e["event"] == "blob").count(), 3);
    let result = events.last().unwrap();
    assert_eq!(result["event"], "result");
    assert_eq!(result["ok"], true);
    assert_eq!(result["blobs_copied"], 3);
    let raw = tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{}/progress/image:v1", registry.host()),
        ],
    );
    let digest = serde_json::from_str::<serde_json::Value>(&raw).unwrap()["Digest"].clone();
    assert_eq!(
        result["manifests"][0], digest,
        "the result names what the registry holds"
    );
    assert!(
        !run.stderr.contains(" start ("),
        "events go to stdout only: {}",
        run.stderr
    );
}

#[test]
fn quiet_means_errors_only() {
    let dir = TempDir::new("quiet");
    let (_registry, target) = registry_with_image(&dir);
    let run = TestCache::new().run(&["pull", &target, "-q"]).success();
    assert_eq!(run.stderr, "");
}
