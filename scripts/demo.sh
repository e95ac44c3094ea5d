#!/usr/bin/env bash
# The main job on a fresh machine, with nothing set up: installs what it needs, starts a local
# registry on loopback, makes a small image with umoci, turns it into a `docker save` archive
# with skopeo, then extracts, pushes, pulls and lists it, printing what happens.
# DOCKER_IMAGE_PUSHER=path runs that binary (the static build, say) instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/registry.sh

step() { printf '\n== %s\n' "$*"; }

step "installing the tools the demo uses (skopeo, umoci, docker-registry), if missing"
scripts/install-deps.sh
if [ -n "${DOCKER_IMAGE_PUSHER:-}" ]; then
  bin=$(cd "$(dirname "$DOCKER_IMAGE_PUSHER")" && pwd)/$(basename "$DOCKER_IMAGE_PUSHER")
  step "using $bin"
else
  step "building docker-image-pusher (cargo build --release: the first build takes about a minute)"
  cargo build --release --locked --quiet
  bin=${CARGO_TARGET_DIR:-$PWD/target}/release/docker-image-pusher
fi

work=$(mktemp -d)
registry_pid=""
trap '[ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null; rm -rf "$work"' EXIT
cache=$work/cache

step "starting a registry (CNCF Distribution) on a free loopback port"
start_registry "$work/registry"
registry_pid=$REGISTRY_PID
registry=$REGISTRY
echo "registry listening on $registry"

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

step "docker-image-pusher push demo.tar $registry/demo/app:v1 (layers gzipped on the way)"
"$bin" --cache-dir "$cache" push "$work/demo.tar" "$registry/demo/app:v1"

step "pushing again: every blob is already there, nothing is uploaded"
"$bin" --cache-dir "$cache" push "$work/demo.tar" "$registry/demo/app:v1"

step "skopeo inspect (a tool we did not write) reads what was pushed"
skopeo inspect --tls-verify=false "docker://$registry/demo/app:v1"

step "docker-image-pusher pull $registry/demo/app:v1 into a fresh cache"
"$bin" --cache-dir "$work/pulled" pull "$registry/demo/app:v1"
"$bin" --cache-dir "$work/pulled" list

step "docker-image-pusher list --json (for scripts)"
"$bin" --cache-dir "$cache" list --json

step "docker-image-pusher clean --all"
"$bin" --cache-dir "$cache" clean --all
