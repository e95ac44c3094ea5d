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
    support::push_uncompressed(&archive, &target);
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

#[test]
fn dynamic_concurrency_adds_workers_while_they_help() {
    // A slow CDN: each connection gets 2 MB/s, so more workers move more.
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("dynamic");
    let archive = dir.join("four.tar");
    let layers: Vec<Vec<u8>> = (1..=4u8).map(|n| vec![n; 3 << 20]).collect();
    let refs: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
    write_tar(&archive, &legacy_items(&refs, r#"["example.com/four:v1"]"#));
    let direct = format!("{}/dynamic/four:v1", registry.host());
    support::push_uncompressed(&archive, &direct);
    let front = support::front::Front::start(registry.port(), |request, _| {
        match request.method == "GET" && request.target.contains("/blobs/") {
            true => support::front::Action::Throttle(2_000_000),
            false => support::front::Action::Forward,
        }
    });
    let target = format!("{}/dynamic/four:v1", front.host());
    let run = TestCache::new()
        .run(&[
            "pull",
            &target,
            "--concurrency",
            "dynamic",
            "--max-concurrent",
            "4",
            "--json",
        ])
        .success();
    let events: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let raised: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "adjustment" && e["to"].as_u64() > e["from"].as_u64())
        .collect();
    assert!(
        !raised.is_empty(),
        "the worker count went up: {}",
        run.stdout
    );
    let result = events.last().unwrap();
    assert_eq!(result["event"], "result");
    assert!(!result["adjustments"].as_array().unwrap().is_empty());

    // The older tool's spelling: a strategy alone turns dynamic on, and monitoring says
    // each change on stderr even with no progress display.
    let run = TestCache::new()
        .run(&[
            "pull",
            &target,
            "--concurrency-strategy",
            "conservative",
            "--enable-monitoring",
            "--progress",
            "none",
        ])
        .success();
    assert!(
        run.stderr
            .contains("workers: 1 -> 2 (trying one worker more"),
        "{}",
        run.stderr
    );
}

#[test]
fn plain_lines_include_a_status_line_as_often_as_asked() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("status");
    let archive = dir.join("four.tar");
    write_tar(
        &archive,
        &legacy_items(&[&vec![9u8; 4 << 20]], r#"["example.com/four:v1"]"#),
    );
    let target = format!("{}/status/four:v1", registry.host());
    support::push_uncompressed(&archive, &target);
    // 4 MiB at 1 MiB/s (one second of burst): about three seconds.
    let run = TestCache::new()
        .run(&[
            "pull",
            &target,
            "--limit-rate",
            "1M",
            "--status-interval",
            "1",
        ])
        .success();
    let status: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.starts_with("progress: "))
        .collect();
    assert!(!status.is_empty(), "a status line: {}", run.stderr);
    let started: Vec<&str> = (run.stderr.lines())
        .filter(|line| line.contains(" start ("))
        .collect();
    assert!(
        !started.is_empty()
            && started.iter().all(|line| {
                let digest = line.split(' ').next().unwrap_or_default();
                digest.len() == "sha256:".len() + 12
            }),
        "plain lines show short digests: {}",
        run.stderr
    );
    assert!(
        status[0].contains("%") && status[0].contains("ETA"),
        "{}",
        status[0]
    );
}
