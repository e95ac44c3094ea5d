//! Mirroring at fleet scale with `sync`: whole repositories filtered by tag patterns, a
//! second run that sends nothing (one HEAD per image at each end), `--jobs` with a blob
//! several images share crossing once, a stopped run started again, `--shard` splitting one
//! list between processes so each image is copied exactly once, `--digestfile`, and a later
//! run's copy to another repository mounting what an earlier one uploaded (the memo). The
//! images are made with umoci and pushed with skopeo; skopeo checks what arrived.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::images::{images_with_a_shared_base, registry_digest, skopeo_identity_with};
use support::registry::{Setup, TestRegistry};
use support::{TempDir, TestCache};

/// What skopeo sees at `image` in a plain-HTTP registry.
fn seen(image: &str) -> (String, Vec<String>) {
    skopeo_identity_with(&["--tls-verify=false"], &format!("docker://{image}"))
}

/// The manifest digest skopeo reads for `image` on a plain-HTTP registry.
fn digest_of(image: &str) -> String {
    registry_digest(&["--tls-verify=false"], image)
}

/// Runs `sync ... --json` and returns its jobs and what it said on stderr.
fn sync_json(cache: &TestCache, args: &[&str]) -> (Vec<Value>, String) {
    let run = cache.run(&[&["sync", "--json"][..], args].concat());
    let last = run.stdout.lines().last().unwrap_or_default().to_string();
    let result: Value = serde_json::from_str(&last)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    (result["jobs"].as_array().unwrap().clone(), run.stderr)
}

/// The outcome of each job, by target.
fn outcomes(jobs: &[Value]) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = (jobs.iter())
        .map(|job| {
            let target = job["target"].as_str().unwrap().to_string();
            (target, job["outcome"].as_str().unwrap().to_string())
        })
        .collect();
    found.sort();
    found
}

/// Access-log lines of `registry` after the first `from`.
fn log_since(registry: &TestRegistry, from: usize) -> Vec<String> {
    (registry.log().lines())
        .filter(|line| {
            line.contains("\"HEAD /v2/")
                || line.contains("\"GET /v2/")
                || line.contains("\"PUT /v2/")
                || line.contains("\"POST /v2/")
                || line.contains("\"PATCH /v2/")
        })
        .skip(from)
        .map(str::to_string)
        .collect()
}

#[test]
fn a_whole_repository_is_mirrored_by_tag_patterns_and_a_second_run_sends_nothing() {
    let source = TestRegistry::start(Setup::Plain);
    let mirror = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("fleet-repo");
    let base = images_with_a_shared_base(
        dir.path(),
        &source,
        &[
            ("src/a", "v1.0"),
            ("src/a", "v1.1"),
            ("src/a", "v2.0"),
            ("src/a", "v2.0-rc1"),
            ("src/a", "nightly"),
            ("src/b", "v1"),
        ],
    );
    let list = dir.join("list");
    let (src, dst) = (source.host(), mirror.host());
    fs::write(&list, format!("{src}/src/a\n{src}/src/b:v1\n")).unwrap();
    let args = [
        "--file",
        list.to_str().unwrap(),
        "--to",
        &format!("{dst}/mirror"),
        "--tags",
        "v*",
        "--exclude-tags",
        "*-rc*",
        "--jobs",
        "4",
    ];

    let cache = TestCache::new();
    let (first, said) = sync_json(&cache, &args);
    assert!(
        said.contains("src/a names no tag, so it stands for its tags: 3 of 5 taken"),
        "{said}"
    );
    let copied: Vec<(String, String)> = ["src/a:v1.0", "src/a:v1.1", "src/a:v2.0", "src/b:v1"]
        .iter()
        .map(|name| (format!("{dst}/mirror/{name}"), "copied".to_string()))
        .collect();
    assert_eq!(outcomes(&first), copied);
    for name in ["src/a:v1.0", "src/a:v1.1", "src/a:v2.0", "src/b:v1"] {
        assert_eq!(
            seen(&format!("{dst}/mirror/{name}")),
            seen(&format!("{src}/{name}"))
        );
    }
    // Four images at once, two repositories: the base layer was uploaded once and mounted or
    // found for the others.
    let hex = base.trim_start_matches("sha256:");
    let uploads_of_base = (log_since(&mirror, 0).iter())
        .filter(|line| line.contains("\"PUT /v2/") && line.contains(hex))
        .count();
    assert_eq!(uploads_of_base, 1, "{:#?}", log_since(&mirror, 0));

    let (source_seen, mirror_seen) = (log_since(&source, 0).len(), log_since(&mirror, 0).len());
    let (second, _) = sync_json(&cache, &args);
    let present: Vec<(String, String)> = (copied.iter())
        .map(|(target, _)| (target.clone(), "present".to_string()))
        .collect();
    assert_eq!(outcomes(&second), present);
    // One HEAD per image at each end; for new signatures of these unsigned images, the
    // Referrers API asked once (404: none) and, for src/b:v1 alone (its line names one image,
    // so no tag list says which of its referrer tags exist), a HEAD of each of its four.
    for (registry, from, heads, probes) in
        [(&source, source_seen, 8, 1), (&mirror, mirror_seen, 4, 0)]
    {
        let asked = log_since(registry, from);
        let manifest_heads = asked
            .iter()
            .filter(|l| l.contains("\"HEAD /v2/") && l.contains("/manifests/"))
            .count();
        assert_eq!(manifest_heads, heads, "{asked:#?}");
        let referrer_heads = asked
            .iter()
            .filter(|l| l.contains("/manifests/sha256-"))
            .count();
        assert_eq!(referrer_heads, heads - 4, "{asked:#?}");
        let api = asked.iter().filter(|l| l.contains("/referrers/")).count();
        assert_eq!(api, probes, "{asked:#?}");
        assert!(
            asked.iter().all(|l| !l.contains("/blobs/")),
            "no blob request: {asked:#?}"
        );
        assert!(
            (asked.iter()).all(|l| l.contains("\"HEAD ")
                || l.contains("/tags/list")
                || l.contains("/referrers/")
                || l.contains("\"GET /v2/ ")),
            "nothing but HEADs, the tag list, the API probe and pings: {asked:#?}"
        );
    }
}

#[test]
fn a_stopped_sync_started_again_copies_only_what_is_left_and_writes_digests() {
    let source = TestRegistry::start(Setup::Plain);
    let mirror = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("fleet-again");
    images_with_a_shared_base(
        dir.path(),
        &source,
        &[("team/one", "v1"), ("team/two", "v1")],
    );
    let (src, dst) = (source.host(), mirror.host());
    let list = dir.join("list");
    fs::write(
        &list,
        format!("{src}/team/one:v1\n{src}/team/two:v1\n{src}/team/three:v1\n"),
    )
    .unwrap();
    let digests = dir.join("digests");
    let args = [
        "--file",
        list.to_str().unwrap(),
        "--to",
        &dst,
        "--digestfile",
        digests.to_str().unwrap(),
    ];
    let cache = TestCache::new();
    let (first, _) = sync_json(&cache, &args);
    let failed = (first.iter())
        .find(|job| job["outcome"] == "failed")
        .expect("team/three is not there yet");
    assert_eq!(failed["exit_code"], 6);
    // The image arrives later; the same run again does only what is left.
    images_with_a_shared_base(&dir.join("later"), &source, &[("team/three", "v1")]);
    let (second, _) = sync_json(&cache, &args);
    assert_eq!(
        outcomes(&second),
        vec![
            (format!("{dst}/team/one:v1"), "present".into()),
            (format!("{dst}/team/three:v1"), "copied".into()),
            (format!("{dst}/team/two:v1"), "present".into()),
        ]
    );
    let written = fs::read_to_string(&digests).unwrap();
    let expected: String = ["one", "two", "three"]
        .iter()
        .map(|name| {
            let target = format!("{dst}/team/{name}:v1");
            format!("{} {target}\n", digest_of(&target))
        })
        .collect();
    assert_eq!(written, expected);
}

/// Paths of the shard test's list and its images.
fn shard_list(dir: &Path, source: &TestRegistry) -> (PathBuf, Vec<String>) {
    let names: Vec<(String, String)> = (0..8)
        .map(|i| (format!("fleet/app-{i}"), "v1".to_string()))
        .collect();
    let pairs: Vec<(&str, &str)> = names
        .iter()
        .map(|(r, t)| (r.as_str(), t.as_str()))
        .collect();
    images_with_a_shared_base(dir, source, &pairs);
    let sources: Vec<String> = (names.iter())
        .map(|(repository, tag)| format!("{}/{repository}:{tag}", source.host()))
        .collect();
    let list = dir.join("list");
    fs::write(&list, sources.join("\n")).unwrap();
    (list, sources)
}

#[test]
fn shards_split_one_list_so_that_each_image_is_copied_exactly_once() {
    let source = TestRegistry::start(Setup::Plain);
    let mirror = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("fleet-shards");
    let (list, sources) = shard_list(dir.path(), &source);
    let to = format!("{}/mirror", mirror.host());
    // Three machines at once, as an Indexed Job runs them.
    let runs: Vec<std::process::Child> = (0..3)
        .map(|k| {
            support::command(&[
                "--cache-dir",
                dir.join(&format!("cache-{k}")).to_str().unwrap(),
                "sync",
                "--json",
                "--file",
                list.to_str().unwrap(),
                "--to",
                &to,
                "--shard",
                &format!("{k}/3"),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut copied: Vec<String> = Vec::new();
    for run in runs {
        let output = run.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        for job in result["jobs"].as_array().unwrap() {
            assert_eq!(job["outcome"], "copied", "{job}");
            copied.push(job["source"].as_str().unwrap().to_string());
        }
    }
    copied.sort();
    let all: BTreeSet<&String> = sources.iter().collect();
    assert_eq!(copied.len(), sources.len(), "each image once: {copied:?}");
    assert_eq!(copied.iter().collect::<BTreeSet<_>>(), all);
    for name in &sources {
        let repository = name.split_once('/').unwrap().1;
        assert_eq!(seen(&format!("{to}/{repository}")), seen(name));
    }
}

#[test]
fn push_and_copy_write_the_digest_skopeo_reads() {
    let registry = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("digestfile");
    let archive = support::access::archive(&dir);
    let host = registry.host();
    let file = dir.join("pushed");
    let cache = TestCache::new();
    let target = format!("{host}/digests/app:v1");
    let args = [
        "push",
        archive.to_str().unwrap(),
        &target,
        "--digestfile",
        file.to_str().unwrap(),
    ];
    cache.run(&args).success();
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        format!("{}\n", digest_of(&target))
    );
    let copied = format!("{host}/digests/copy:v1");
    let file = dir.join("copied");
    cache
        .run(&[
            "copy",
            &target,
            &copied,
            "--digestfile",
            file.to_str().unwrap(),
        ])
        .success();
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        format!("{}\n", digest_of(&copied))
    );
    let dry = dir.join("dry");
    cache
        .run(&[
            "copy",
            &target,
            &copied,
            "-n",
            "--digestfile",
            dry.to_str().unwrap(),
        ])
        .success();
    assert!(!dry.exists(), "a dry run writes no digest");
}

#[test]
fn the_fleet_examples_use_only_flags_sync_knows() {
    let help = support::run(&["sync", "--help"]).success().stdout;
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut checked = 0;
    for name in ["kubernetes-indexed-job.yaml", "github-actions-mirror.yml"] {
        let text = fs::read_to_string(examples.join(name)).unwrap();
        let flags: BTreeSet<&str> = (text.split(|c: char| c.is_whitespace() || "=)".contains(c)))
            .filter(|word| {
                word.strip_prefix("--")
                    .is_some_and(|name| name.starts_with(|c: char| c.is_ascii_lowercase()))
            })
            // kubectl's, in the comments that say how to run the Job.
            .filter(|word| !["--from-file", "--prefix"].contains(word))
            .collect();
        assert!(flags.contains("--shard"), "{name} shards its list");
        for flag in flags {
            assert!(
                help.contains(&format!("{flag} ")),
                "{name}: sync has no {flag}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked}");
}

#[test]
fn a_tag_pattern_that_matches_nothing_fails_the_sync() {
    let source = TestRegistry::start(Setup::Plain);
    let mirror = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("fleet-no-match");
    images_with_a_shared_base(dir.path(), &source, &[("src/a", "v1.0")]);
    let repository = format!("{}/src/a", source.host());
    let to = format!("{}/mirror", mirror.host());
    let cache = TestCache::new();
    // A typo: `v.1*` for `v1.*`.
    let failed = cache
        .run(&["sync", &repository, "--to", &to, "--tags", "v.1*"])
        .exits(6);
    let said = "no tag of ".to_string() + &repository;
    assert!(failed.stderr.contains(&said), "{}", failed.stderr);
    assert!(failed.stderr.contains("(1 listed)"), "{}", failed.stderr);
}

#[test]
fn images_copied_at_once_say_their_line_on_every_blob_line() {
    let source = TestRegistry::start(Setup::Plain);
    let mirror = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("fleet-labels");
    images_with_a_shared_base(dir.path(), &source, &[("src/a", "v1"), ("src/b", "v1")]);
    let (src, dst) = (source.host(), mirror.host());
    let list = dir.join("list");
    fs::write(&list, format!("{src}/src/a:v1\n{src}/src/b:v1\n")).unwrap();
    let to = format!("{dst}/mirror");
    let run = TestCache::new()
        .run(&[
            "sync",
            "--file",
            list.to_str().unwrap(),
            "--to",
            &to,
            "--jobs",
            "2",
        ])
        .success();
    let blob_lines: Vec<&str> = (run.stderr.lines())
        .filter(|line| line.contains("sha256:") && line.contains(" ("))
        .filter(|line| !line.starts_with("copied ") && !line.contains(" -> "))
        .collect();
    assert!(blob_lines.len() >= 4, "{}", run.stderr);
    for line in &blob_lines {
        assert!(
            line.starts_with("line 1: ") || line.starts_with("line 2: "),
            "{line}\n{}",
            run.stderr
        );
    }
}

#[test]
fn a_line_that_cannot_run_is_reported_by_one_shard_alone() {
    let source = TestRegistry::start(Setup::Plain);
    let mirror = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("fleet-shard-failure");
    images_with_a_shared_base(dir.path(), &source, &[("src/a", "v1")]);
    let list = dir.join("list");
    fs::write(&list, format!("{}/src/a:v1\nmissing.tar\n", source.host())).unwrap();
    let to = format!("{}/mirror", mirror.host());
    let mut reported = 0;
    for k in 0..3 {
        let shard = format!("{k}/3");
        let run = TestCache::new().run(&[
            "sync",
            "--json",
            "--file",
            list.to_str().unwrap(),
            "--to",
            &to,
            "--shard",
            &shard,
        ]);
        let last = run.stdout.lines().last().unwrap_or_default();
        let result: Value = serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
        let failed = (result["jobs"].as_array().unwrap().iter())
            .filter(|job| {
                job["source"]
                    .as_str()
                    .is_some_and(|s| s.ends_with("missing.tar"))
            })
            .count();
        reported += failed;
    }
    assert_eq!(reported, 1, "one shard says the file is missing");
}

#[test]
fn a_dry_run_says_would_mount_where_the_real_run_mounts() {
    let source = TestRegistry::start(Setup::Plain);
    let mirror = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("fleet-dry-mount");
    let base = images_with_a_shared_base(dir.path(), &source, &[("src/a", "v1"), ("src/b", "v1")]);
    let (src, dst) = (source.host(), mirror.host());
    let list = dir.join("list");
    fs::write(&list, format!("{src}/src/a:v1\n{src}/src/b:v1\n")).unwrap();
    let to = format!("{dst}/mirror");
    let sync = |dry: &[&str]| {
        let args = [
            &["sync", "--file", list.to_str().unwrap(), "--to", &to][..],
            dry,
        ]
        .concat();
        TestCache::new().run(&args).success().stderr
    };
    let dry = sync(&["--dry-run"]);
    assert_eq!(
        dry.matches(&format!("would copy {base}")).count(),
        1,
        "{dry}"
    );
    let mount = format!("would mount {base} from mirror/src/a");
    assert!(dry.contains(&mount), "{mount}\n{dry}");
    assert!(
        log_since(&mirror, 0).iter().all(|l| !l.contains("\"PUT ")),
        "a dry run sends nothing"
    );
}

#[test]
fn a_registry_slow_to_connect_holds_up_only_the_jobs_that_need_it() {
    let fast = TestRegistry::start(Setup::Plain);
    let mirror = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("fleet-slow-connect");
    images_with_a_shared_base(dir.path(), &fast, &[("src/a", "v1")]);
    // A registry that answers nothing: each request waits out --timeout.
    let slow = support::front::Front::start(fast.port(), |_, _| {
        support::front::Action::Stall(std::time::Duration::from_secs(30))
    });
    let list = dir.join("list");
    let to = format!("{}/mirror", mirror.host());
    // The fast line has a TARGET of its own: under --to both would write one place.
    fs::write(
        &list,
        format!(
            "{}/src/a:v1\n{}/src/a:v1 {to}/fast/a:v1\n",
            slow.host(),
            fast.host()
        ),
    )
    .unwrap();
    let run = TestCache::new().run(&[
        "sync",
        "--file",
        list.to_str().unwrap(),
        "--to",
        &to,
        "--jobs",
        "2",
        "--timeout",
        "3",
        "--retry-attempts",
        "0",
    ]);
    let copied = run
        .stderr
        .find(&format!("copied {to}/fast/a:v1"))
        .unwrap_or(usize::MAX);
    let failed = run.stderr.find("warning: line 1: ").unwrap_or(0);
    assert!(
        copied < failed,
        "the fast line did not wait for the slow one:\n{}",
        run.stderr
    );
}

#[test]
fn the_summary_counts_failed_images_as_the_table_does() {
    let source = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("fleet-count-failures");
    images_with_a_shared_base(dir.path(), &source, &[("src/a", "v1"), ("src/a", "v2")]);
    let list = dir.join("list");
    fs::write(&list, format!("{}/src/a\n", source.host())).unwrap();
    // Nothing listens there: both images of the one line fail.
    let dead = format!(
        "127.0.0.1:{}/mirror",
        support::registry::DeadPort::hold().port
    );
    let run = TestCache::new().run(&[
        "sync",
        "--file",
        list.to_str().unwrap(),
        "--to",
        &dead,
        "--retry-attempts",
        "0",
    ]);
    assert!(
        run.stderr.contains("2 of 2 images failed (line 1)"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_copy_mounts_what_an_earlier_runs_copy_uploaded_to_that_registry() {
    let source = TestRegistry::start(Setup::Plain);
    let mirror = TestRegistry::start(Setup::Plain);
    let dir = TempDir::new("fleet-memo");
    images_with_a_shared_base(dir.path(), &source, &[("src/app", "v1")]);
    let (src, dst) = (source.host(), mirror.host());
    let image = format!("{src}/src/app:v1");
    let cache = TestCache::new();
    fs::create_dir(cache.path()).unwrap();
    let copy = |cache: &TestCache, to: &str| {
        cache
            .run(&["copy", &image, &format!("{dst}/{to}")])
            .success();
    };

    copy(&cache, "team-x/app:v1");
    let before = log_since(&mirror, 0).len();
    // Another run, another repository of that registry: every blob mounted from the first.
    copy(&cache, "team-y/app:v1");
    let second = log_since(&mirror, before);
    let blobs = seen(&image).1.len() + 1;
    let mounts = (second.iter())
        .filter(|line| line.contains("\"POST /v2/team-y/app/blobs/uploads/?mount="))
        .filter(|line| line.contains("from=team-x%2Fapp") && line.contains("\" 201 "))
        .count();
    assert_eq!(mounts, blobs, "{second:#?}");
    assert!(
        (second.iter()).all(
            |l| (!l.contains("\"PATCH ") && !l.contains("/blobs/uploads/")) || l.contains("mount=")
        ),
        "nothing uploaded: {second:#?}"
    );
    assert_eq!(seen(&format!("{dst}/team-y/app:v1")), seen(&image));

    // Without a cache folder, a copy between registries writes nothing to disk.
    let none = TestCache::new();
    copy(&none, "team-z/app:v1");
    assert!(!none.path().exists());
}
