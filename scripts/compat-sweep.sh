#!/usr/bin/env bash
# Extracts each archive written by Docker itself (../shared/fixtures, or the folder given) and
# checks the outcome its README table states: what extracts, how many images, and for bad
# input exit code 3 with the cache untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
fixtures=$(cd "${1:-../shared/fixtures}" && pwd)

cargo build --locked --quiet
bin=${CARGO_TARGET_DIR:-$PWD/target}/debug/docker-image-pusher
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

check() { # check DESCRIPTION CONDITION...
  local what=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok   $what"
  else
    failed=$((failed + 1))
    echo "FAIL $what"
  fi
}

# Every cached blob must hash to its name.
blobs_verify() {
  local blob
  for blob in "$work"/cache/blobs/sha256/*; do
    [ -e "$blob" ] || continue
    [ "$(sha256sum "$blob" | cut -c1-64)" = "$(basename "$blob")" ] || return 1
  done
}

# extract FILE [ARGS...]: into a fresh cache $work/cache; sets $code and $count (images listed),
# and checks the cache's blobs.
extract() {
  rm -rf "$work/cache"
  set +e
  "$bin" --cache-dir "$work/cache" -q extract "$fixtures/$1" "${@:2}" 2>"$work/stderr"
  code=$?
  set -e
  count=$("$bin" --cache-dir "$work/cache" list --json | grep -c '"name"' || true)
  check "$1 ${*:2}: every cached blob hashes to its name" blobs_verify
}

extract hello-world-v25.tar
check "hello-world-v25.tar extracts one image, by ID" test "$code-$count" = 0-1
check "hello-world-v25.tar is cached under its image ID" \
  grep -q '"name": "sha256:' <("$bin" --cache-dir "$work/cache" list --json)
extract hello-world-v25.tar --tag hello:v25
check "hello-world-v25.tar --tag names it" \
  grep -q '"name": "docker.io/library/hello:v25"' <("$bin" --cache-dir "$work/cache" list --json)

extract test_image_1.tar
check "test_image_1.tar extracts one image" test "$code-$count" = 0-1

extract test_bundle.tar
check "test_bundle.tar extracts both images" test "$code-$count" = 0-2
for image in test_image_1 test_image_2; do
  extract test_bundle.tar --image "$image"
  check "test_bundle.tar --image $image extracts that one alone" test "$code-$count" = 0-1
done

extract test_link.tar
check "test_link.tar extracts both images through its symlinked layer" test "$code-$count" = 0-2

for bad in null_manifest.tar no_manifest.tar; do
  extract test_image_1.tar
  before=$(cd "$work/cache" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
  set +e
  "$bin" --cache-dir "$work/cache" extract "$fixtures/$bad" 2>"$work/stderr"
  code=$?
  set -e
  after=$(cd "$work/cache" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
  check "$bad is refused with exit 3: $(cat "$work/stderr")" test "$code" = 3
  check "$bad leaves the cache untouched" test "$before" = "$after"
done

echo "sweep: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
