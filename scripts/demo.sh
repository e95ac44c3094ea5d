#!/usr/bin/env bash
# The main job on a fresh machine, with nothing set up: installs what it needs, makes a small
# image with umoci, turns it into a `docker save` archive with skopeo, then extracts it into a
# cache and lists it, printing what happens. (Push and pull against a local registry join
# once the registry commands exist.)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "installing the tools the demo uses (skopeo, umoci), if missing"
scripts/install-deps.sh
step "building docker-image-pusher"
cargo build --release --locked --quiet
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/docker-image-pusher

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cache=$work/cache

step "making a small two-layer image with umoci"
umoci init --layout "$work/oci"
umoci new --image "$work/oci:demo"
for layer in 1 2; do
  umoci unpack --image "$work/oci:demo" "$work/bundle" >/dev/null
  mkdir -p "$work/bundle/rootfs/srv"
  echo "hello from layer $layer" >"$work/bundle/rootfs/srv/layer-$layer.txt"
  umoci repack --image "$work/oci:demo" "$work/bundle"
  rm -rf "$work/bundle"
done

step "writing it as a docker save archive with skopeo"
skopeo --insecure-policy copy --quiet "oci:$work/oci:demo" "docker-archive:$work/demo.tar:localhost/demo/app:v1"
ls -l "$work/demo.tar"

step "docker-image-pusher extract demo.tar"
"$bin" --cache-dir "$cache" extract "$work/demo.tar"

step "docker-image-pusher list"
"$bin" --cache-dir "$cache" list

step "extracting it again from standard input, gzip-compressed: nothing new to write"
gzip -c "$work/demo.tar" | "$bin" --cache-dir "$cache" extract -

step "docker-image-pusher list --json (for scripts)"
"$bin" --cache-dir "$cache" list --json

step "docker-image-pusher clean --all"
"$bin" --cache-dir "$cache" clean --all
