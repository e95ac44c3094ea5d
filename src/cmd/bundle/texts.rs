//! The words a bundle carries: `push.sh`, which pushes it (or, with `--check`, says what it
//! would push and what is missing), and `README.txt`, which says what the folder is.

use crate::archive::Since;

/// What push.sh says: push every image of the bundle under REGISTRY[/PREFIX], with sync.
pub const PUSH_SCRIPT: &str = r#"#!/bin/sh
# Pushes the images of this bundle to REGISTRY[/PREFIX], each under its own repository and
# tag. Options after REGISTRY go to 'docker-image-pusher sync' (-u USER --password-stdin,
# --ca-cert FILE, --max-concurrent N, ...). With --check first, pushes nothing: says what
# would be pushed and, for a delta bundle, which blobs it relies on the registry lacks (exit 6).
# Written by 'docker-image-pusher bundle'.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
check=""
if [ "${1:-}" = --check ]; then
  check=--dry-run
  shift
fi
if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  echo "usage: $0 [--check] REGISTRY[/PREFIX] [OPTIONS]" >&2
  exit 2
fi
to=$1
shift
# The program and the small files are checked before use; the images as they are pushed.
if command -v sha256sum >/dev/null 2>&1; then
  (cd "$here" && grep -v ' images\.tar' SHA256SUMS | sha256sum -c --quiet -)
fi
# A private cache of this run's own, removed when it ends (so no exec: the trap must run).
if [ -n "${DOCKER_PUSHER_CACHE_DIR:-}" ]; then
  cache=$DOCKER_PUSHER_CACHE_DIR
else
  cache=$(mktemp -d "${TMPDIR:-/tmp}/docker-image-pusher-bundle.XXXXXXXX")
  trap 'rm -rf "$cache"' EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
fi
"$here/docker-image-pusher" --cache-dir "$cache" sync --file "$here/images.list" --to "$to" $check "$@"
"#;

/// `README.txt`: what the folder holds and how to push it; for a delta, that its archive is
/// not for `docker load` and which bundle must reach the registry first.
pub fn readme(archive: &[String], images: &[String], since: Option<&Since>) -> String {
    let files = match archive {
        [one] => one.clone(),
        parts => format!(
            "{} to {} ({} parts: together, the archive)",
            parts[0],
            parts[parts.len() - 1],
            parts.len()
        ),
    };
    let mut text = format!(
        "This folder was made by docker-image-pusher bundle. It holds:\n\n\
         {files}\n    the images: {}\n\
         docker-image-pusher\n    the program\n\
         push.sh\n    push.sh [--check] REGISTRY[/PREFIX] [OPTIONS]: pushes every image there\n\
         images.list, bundle.json, SHA256SUMS\n    what push.sh reads and checks\n\n\
         After carrying it: sha256sum -c SHA256SUMS\n",
        images.join(", ")
    );
    if let Some(since) = since {
        let record = match &since.bundle_json {
            Some(digest) => format!("; its bundle.json is {digest}"),
            None => String::new(),
        };
        text.push_str(&format!(
            "\nThis is a DELTA bundle: the archive leaves out the layers that the bundle {} \
             carried (made {}{record}), so it is NOT an archive for docker load. Push it to a \
             registry that received that bundle; push.sh checks first, and names what is \
             missing without pushing anything.\n",
            since.given, since.created
        ));
    }
    text
}
