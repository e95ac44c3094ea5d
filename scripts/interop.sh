#!/usr/bin/env bash
# The clients users run, against what this tool writes and reads: Docker (dockerd), podman and
# containerd's ctr, each started here with its state in a temporary folder, and a local
# registry. Every check compares image IDs (config digests), or manifest digests where a
# client keeps an index whole:
#   our save (one image, two, --gzip, -o - into a pipe, an index, one with referrers)
#     -> docker/podman load, ctr import
#   docker save, podman save (docker-archive, oci-archive, multi-image), ctr export
#     -> our extract and push -> skopeo inspect
#   our push (gzip, --compress none, a cached index, whole by default) -> docker pull,
#     podman pull (of the other platform), ctr pull
#   docker push, podman push, ctr push -> our pull -> save -> docker load
# What a client also fails on with an archive its own kind wrote is that client's limit,
# printed as "limit", not counted as a failure. Ends with "interop: N passed, M failed".
# DOCKER_IMAGE_PUSHER=path runs that binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/registry.sh

scripts/install-deps.sh interop
if [ -n "${DOCKER_IMAGE_PUSHER:-}" ]; then
  bin=$(cd "$(dirname "$DOCKER_IMAGE_PUSHER")" && pwd)/$(basename "$DOCKER_IMAGE_PUSHER")
else
  cargo build --locked --quiet
  bin=${CARGO_TARGET_DIR:-$PWD/target}/debug/docker-image-pusher
fi
# The Docker client of the Debian package, the daemon's own version.
docker_cli=/usr/bin/docker
[ -x "$docker_cli" ] || docker_cli=$(command -v docker)

work=$(mktemp -d)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0
limits=0
check() { # check DESCRIPTION COMMAND...: one check that must pass
  local what=$1
  shift
  if "$@" >>"$work/checks.log" 2>&1; then
    passed=$((passed + 1))
    echo "ok    $what"
  else
    failed=$((failed + 1))
    echo "FAIL  $what"
    tail -n 5 "$work/checks.log" | sed 's/^/      /'
  fi
}
limit() { # limit DESCRIPTION OURS THEIRS COMMAND...: COMMAND on our file, and on the one the
  # client's own kind wrote: failing on both is the client's limit, on ours alone a failure
  local what=$1 ours=$2 theirs=$3
  shift 3
  if "$@" "$ours" >>"$work/checks.log" 2>&1; then
    passed=$((passed + 1))
    echo "ok    $what"
  elif ! "$@" "$theirs" >>"$work/checks.log" 2>&1; then
    limits=$((limits + 1))
    echo "limit $what: it fails on its own kind's archive too"
  else
    failed=$((failed + 1))
    echo "FAIL  $what (its own kind's archive passes)"
  fi
}
same() { [ "$1" = "$2" ] || { echo "expected $2, got $1"; return 1; }; }

dip() { "$bin" --cache-dir "$work/cache" --quiet "$@"; }
docker_() { "$docker_cli" -H "unix://$work/docker/docker.sock" "$@"; }
podman_() {
  command podman --root "$work/podman/root" --runroot "$work/podman/run" --storage-driver vfs \
    --cgroup-manager cgroupfs --events-backend file "$@"
}
ctr_() { ctr --address "$work/containerd/containerd.sock" "$@"; }

# The value at a dotted path of JSON on standard input (lists by index).
json() {
  python3 -c 'import json,sys
v = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    v = v[int(key)] if isinstance(v, list) else v[key]
print(v if not isinstance(v, (dict, list)) else json.dumps(v))' "$1"
}

# Image IDs as each client reports them, all as sha256:<hex>.
our_id() { dip inspect "$1" --json | json config.digest; }
docker_id() { docker_ image inspect --format '{{.Id}}' "$1"; }
podman_id() { echo "sha256:$(podman_ image inspect --format '{{.Id}}' "$1")"; }
ctr_digest() { ctr_ images ls "name==$1" | awk 'NR == 2 { print $3 }'; }
ctr_id() { ctr_ content get "$(ctr_digest "$1")" | json config.digest; }

wait_for() { # wait_for WHAT COMMAND...: up to 30 s
  local what=$1
  shift
  for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "$what did not start" >&2
  return 1
}

echo "== starting a registry, dockerd, containerd"
start_registry "$work/registry"
pids+=("$REGISTRY_PID")
registry=$REGISTRY
mkdir -p "$work/docker" "$work/containerd"
dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
  --data-root "$work/docker/data" --exec-root "$work/docker/exec" \
  --pidfile "$work/docker/docker.pid" -H "unix://$work/docker/docker.sock" \
  >"$work/docker/log" 2>&1 &
pids+=($!)
cat >"$work/containerd/config.toml" <<TOML
version = 2
root = "$work/containerd/root"
state = "$work/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/containerd/containerd.sock"
[ttrpc]
  address = "$work/containerd/containerd.sock.ttrpc"
[debug]
  address = "$work/containerd/debug.sock"
TOML
containerd --config "$work/containerd/config.toml" >"$work/containerd/log" 2>&1 &
pids+=($!)
wait_for dockerd docker_ version
wait_for containerd ctr_ version

echo "== making images: two single-platform ones and a two-platform index (umoci, skopeo)"
layout=$work/oci
umoci init --layout "$layout"
umoci new --image "$layout:base"
add_layer() { # add_layer FROM TO FILE TEXT
  umoci unpack --image "$layout:$1" "$work/bundle" >/dev/null
  mkdir -p "$(dirname "$work/bundle/rootfs/$3")"
  echo "$4" >"$work/bundle/rootfs/$3"
  umoci repack --image "$layout:$2" "$work/bundle"
  rm -rf "$work/bundle"
}
add_layer base base etc/base "base layer"
add_layer base app srv/app "app"
add_layer base other srv/other "other"
for arch in amd64 arm64; do
  add_layer base "$arch" etc/arch "$arch"
  umoci config --image "$layout:$arch" --architecture="$arch"
done
python3 - "$layout" <<'PY'
import hashlib, json, os, sys
layout = sys.argv[1]
path = os.path.join(layout, "index.json")
index = json.load(open(path))
by_tag = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]}
entries = [{"mediaType": by_tag[a]["mediaType"], "digest": by_tag[a]["digest"],
            "size": by_tag[a]["size"], "platform": {"os": "linux", "architecture": a}}
           for a in ("amd64", "arm64")]
body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": entries}).encode()
digest = hashlib.sha256(body).hexdigest()
open(os.path.join(layout, "blobs", "sha256", digest), "wb").write(body)
index["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json",
                           "digest": "sha256:" + digest, "size": len(body),
                           "annotations": {"org.opencontainers.image.ref.name": "multi"}})
json.dump(index, open(path, "w"))
PY
skopeo() { command skopeo --insecure-policy "$@"; }
for name in app other; do
  skopeo copy --quiet "oci:$layout:$name" "docker-archive:$work/$name.tar:localhost/interop/$name:v1"
  dip extract "$work/$name.tar"
done
skopeo copy --quiet --all --dest-tls-verify=false "oci:$layout:multi" "docker://$registry/interop/multi:v1"
dip pull --all-platforms "$registry/interop/multi:v1"
app=localhost/interop/app:v1
other=localhost/interop/other:v1
multi=$registry/interop/multi:v1
app_id=$(our_id "$app")
other_id=$(our_id "$other")
multi_digest=$(dip inspect "$multi" --json | json digest)
host_arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)

echo "== our save -> docker load, podman load, ctr import"
loads() { # loads ARCHIVE NAME ID [NAME ID]: every client loads the archive and sees each ID
  local archive=$1
  shift
  docker_ load -i "$archive" && podman_ load -i "$archive" && ctr_ images import "$archive" || return 1
  while [ $# -gt 0 ]; do
    same "$(docker_id "$1")" "$2" && same "$(podman_id "$1")" "$2" && same "$(ctr_id "$1")" "$2" || return 1
    docker_ rmi -f "$1" && podman_ rmi -f "$1" && ctr_ images rm "$1" || return 1
    shift 2
  done
}
dip save "$app" -o "$work/one.tar"
check "save one image: docker load, podman load, ctr import" loads "$work/one.tar" "$app" "$app_id"
dip save "$app" "$other" -o "$work/two.tar"
check "save two images: each loads with its ID" loads "$work/two.tar" "$app" "$app_id" "$other" "$other_id"
dip save "$app" --gzip -o "$work/one.tar.gz"
gzip_loads() { docker_ load -i "$work/one.tar.gz" && same "$(docker_id "$app")" "$app_id" &&
  podman_ load -i "$work/one.tar.gz" && same "$(podman_id "$app")" "$app_id"; }
check "save --gzip: docker load, podman load" gzip_loads
docker_ save "$app" | gzip >"$work/docker-own.tar.gz"
limit "save --gzip: ctr import" "$work/one.tar.gz" "$work/docker-own.tar.gz" ctr_ images import
docker_ rmi -f "$app" >/dev/null; podman_ rmi -f "$app" >/dev/null
piped() { "$bin" --cache-dir "$work/cache" --quiet save "$app" -o - | docker_ load && same "$(docker_id "$app")" "$app_id"; }
check "save -o - into a pipe: docker load" piped
unnamed() { # docker save by ID -> our extract and save by ID -> loaded with no name
  local cache=$work/unnamed-cache
  docker_ save "${app_id#sha256:}" -o "$work/by-id.tar" && docker_ rmi -f "$app" &&
    "$bin" --cache-dir "$cache" --quiet extract "$work/by-id.tar" &&
    "$bin" --cache-dir "$cache" --quiet save "$app_id" -o "$work/unnamed.tar" &&
    docker_ load -i "$work/unnamed.tar" &&
    same "$(docker_ image inspect --format '{{len .RepoTags}}' "$app_id")" 0 &&
    podman_ load -i "$work/unnamed.tar" &&
    same "$(podman_ image inspect --format '{{len .RepoTags}}' "${app_id#sha256:}")" 0 &&
    docker_ rmi -f "$app_id" && podman_ rmi -f "${app_id#sha256:}"
}
check "an image saved by ID: saved again, docker and podman load it with no name" unnamed
dip save "$multi" -o "$work/multi.tar"
index_loads() {
  docker_ load -i "$work/multi.tar" && same "$(docker_ image inspect --format '{{.Architecture}}' "$multi")" "$host_arch" &&
    ctr_ images import --all-platforms "$work/multi.tar" && same "$(ctr_digest "$multi")" "$multi_digest"
}
check "save of an index: docker load takes this host's image, ctr import keeps the index" index_loads
check "save of an index: podman load" podman_ load -i "$work/multi.tar"

# An image with referrers at the registry, as syft/oras and cosign lay them out on one without
# the Referrers API: an SPDX SBOM naming it as its subject, the fallback index sha256-<hex>
# listing it, a cosign signature at sha256-<hex>.sig. Our pull and save carry them into the
# archive, listed apart from the images: every client still loads just the image.
signed=$registry/interop/signed:v1
dip push "$app" "$signed"
python3 - "$registry" interop/signed v1 <<'PY'
import hashlib, json, sys, urllib.request
registry, repository, tag = sys.argv[1:]
base = f"http://{registry}/v2/{repository}"
def put(url, body, media_type):
    urllib.request.urlopen(urllib.request.Request(url, body, {"Content-Type": media_type}, method="PUT"))
def blob(body):
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    started = urllib.request.urlopen(urllib.request.Request(f"{base}/blobs/uploads/", b"", method="POST"))
    location = started.headers["Location"]
    location = location if location.startswith("http") else f"http://{registry}{location}"
    put(f"{location}{'&' if '?' in location else '?'}digest={digest}", body, "application/octet-stream")
    return {"digest": digest, "size": len(body)}
def manifest(reference, body, media_type):
    put(f"{base}/manifests/{reference}", body, media_type)
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(body).hexdigest(), "size": len(body)}
oci = "application/vnd.oci.image.manifest.v1+json"
accept = {"Accept": oci + ",application/vnd.docker.distribution.manifest.v2+json"}
got = urllib.request.urlopen(urllib.request.Request(f"{base}/manifests/{tag}", headers=accept))
image = got.read()
subject = {"mediaType": got.headers["Content-Type"], "digest": "sha256:" + hashlib.sha256(image).hexdigest(), "size": len(image)}
spdx = "application/spdx+json"
sbom = json.dumps({"schemaVersion": 2, "mediaType": oci, "artifactType": spdx,
    "config": {"mediaType": "application/vnd.oci.empty.v1+json", **blob(b"{}")},
    "layers": [{"mediaType": spdx, **blob(b'{"spdxVersion":"SPDX-2.3"}')}],
    "subject": subject}).encode()
listed = manifest("sha256:" + hashlib.sha256(sbom).hexdigest(), sbom, oci)
fallback = "sha256-" + subject["digest"][len("sha256:"):]
manifest(fallback, json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [{**listed, "artifactType": spdx}]}).encode(), "application/vnd.oci.image.index.v1+json")
payload = json.dumps({"critical": {"image": {"docker-manifest-digest": subject["digest"]}}}).encode()
layer = blob(payload)
config = json.dumps({"architecture": "", "os": "", "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode()
manifest(fallback + ".sig", json.dumps({"schemaVersion": 2, "mediaType": oci,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(config)},
    "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", **layer}]}).encode(), oci)
PY
dip pull "$signed"
dip save "$signed" -o "$work/signed.tar"
config_id() { echo "sha256:$(skopeo inspect --config --raw "$1" | sha256sum | cut -d' ' -f1)"; }
signed_loads() {
  tar -xOf "$work/signed.tar" docker-image-pusher-referrers.json >"$work/signed.json" &&
    grep -q '"indexes":{"sha256:' "$work/signed.json" && grep -q ':sha256-[0-9a-f]*\.sig"' "$work/signed.json" &&
    same "$(config_id "oci-archive:$work/signed.tar")" "$app_id" &&
    same "$(config_id "docker-archive:$work/signed.tar")" "$app_id" &&
    loads "$work/signed.tar" "$signed" "$app_id"
}
check "save with referrers: docker load, podman load, ctr import, skopeo read just the image" signed_loads

# Each client holds app (and Docker and podman other too), loaded from our archives.
docker_ load -i "$work/two.tar" >/dev/null
dip save "$app" "$other" --gzip -o "$work/two.tar.gz"
docker_ save "$app" "$other" | gzip >"$work/docker-two.tar.gz"
limit "save two images --gzip: podman load" "$work/two.tar.gz" "$work/docker-two.tar.gz" \
  podman_ load -i

echo "== docker save, podman save, ctr export -> our extract and push -> skopeo inspect"
podman_ load -q -i "$work/two.tar" >/dev/null
ctr_ images import "$work/one.tar" >/dev/null
round_trip() { # round_trip ARCHIVE NAME ID: our extract sees ID, our push gives it to skopeo
  local cache=$work/rt-cache target=$registry/interop/round-trip:$RANDOM
  rm -rf "$cache"
  "$bin" --cache-dir "$cache" --quiet extract "$1" --image "$2" &&
    same "$("$bin" --cache-dir "$cache" inspect "$2" --json | json config.digest)" "$3" &&
    "$bin" --cache-dir "$cache" --quiet push "$1" "$target" --image "$2" &&
    same "$(skopeo inspect --tls-verify=false --raw "docker://$target" | json config.digest)" "$3"
}
docker_ save "$app" -o "$work/docker-save.tar"
check "docker save -> extract, push" round_trip "$work/docker-save.tar" "$app" "$app_id"
podman_ save -q --format docker-archive -o "$work/podman-docker.tar" "$app"
check "podman save docker-archive -> extract, push" round_trip "$work/podman-docker.tar" "$app" "$app_id"
podman_ save -q --format oci-archive -o "$work/podman-oci.tar" "$app"
# podman writes an OCI config here, so the image ID is that of the config it wrote.
oci_id=$(skopeo inspect --raw "oci-archive:$work/podman-oci.tar" | json config.digest)
check "podman save oci-archive -> extract, push" round_trip "$work/podman-oci.tar" "$app" "$oci_id"
podman_ save -q -m -o "$work/podman-multi.tar" "$app" "$other"
both_round_trip() { round_trip "$work/podman-multi.tar" "$app" "$app_id" &&
  round_trip "$work/podman-multi.tar" "$other" "$other_id"; }
check "podman save -m (two images) -> extract, push each" both_round_trip
ctr_ images export "$work/ctr-export.tar" "$app"
check "ctr export -> extract, push" round_trip "$work/ctr-export.tar" "$app" "$app_id"
ctr_ images export --all-platforms "$work/ctr-all.tar" "$multi"
ctr_whole() {
  rm -rf "$work/rt-cache"
  "$bin" --cache-dir "$work/rt-cache" --quiet extract --all-platforms "$work/ctr-all.tar" &&
    same "$("$bin" --cache-dir "$work/rt-cache" inspect "$multi" --json | json digest)" "$multi_digest"
}
check "ctr export --all-platforms -> extract --all-platforms keeps the index" ctr_whole

echo "== our push -> docker pull, podman pull, ctr pull"
pulls() { # pulls TARGET ID: every client pulls TARGET and sees ID
  docker_ pull "$1" && same "$(docker_id "$1")" "$2" &&
    podman_ pull --tls-verify=false "$1" && same "$(podman_id "$1")" "$2" &&
    ctr_ images pull --plain-http "$1" && same "$(ctr_id "$1")" "$2"
}
dip push "$app" "$registry/interop/pushed-gzip:v1"
check "push (gzip) -> docker, podman, ctr pull" pulls "$registry/interop/pushed-gzip:v1" "$app_id"
dip push "$work/app.tar" "$registry/interop/pushed-none:v1" --compress none
check "push --compress none -> docker, podman, ctr pull" pulls "$registry/interop/pushed-none:v1" "$app_id"
# A cached index is pushed whole by default, as a mirror: every platform can be pulled there.
dip push "$multi" "$registry/interop/pushed-index:v1"
other_arch=arm64
[ "$host_arch" != arm64 ] || other_arch=amd64
index_pulls() {
  local target=$registry/interop/pushed-index:v1
  docker_ pull "$target" && same "$(docker_ image inspect --format '{{.Architecture}}' "$target")" "$host_arch" &&
    podman_ pull --tls-verify=false --platform "linux/$other_arch" "$target" &&
    same "$(podman_ image inspect --format '{{.Architecture}}' "$target")" "$other_arch" &&
    ctr_ images pull --plain-http --all-platforms "$target" && same "$(ctr_digest "$target")" "$multi_digest"
}
check "push of a cached index (whole by default) -> docker, podman (the other platform), ctr pull" index_pulls

echo "== docker push, podman push, ctr push -> our pull -> save -> docker load"
back() { # back REFERENCE ID: our pull, save and docker load give ID
  local cache=$work/back-cache
  rm -rf "$cache" "$work/back.tar"
  "$bin" --cache-dir "$cache" --quiet pull "$1" && same "$("$bin" --cache-dir "$cache" inspect "$1" --json | json config.digest)" "$2" &&
    "$bin" --cache-dir "$cache" --quiet save "$1" -o "$work/back.tar" &&
    docker_ load -i "$work/back.tar" && same "$(docker_id "$1")" "$2"
}
docker_ tag "$app" "$registry/interop/by-docker:v1"
docker_ push "$registry/interop/by-docker:v1" >/dev/null
check "docker push -> pull, save, docker load" back "$registry/interop/by-docker:v1" "$app_id"
podman_ push --tls-verify=false "$app" "docker://$registry/interop/by-podman:v1" >/dev/null
check "podman push -> pull, save, docker load" back "$registry/interop/by-podman:v1" "$app_id"
ctr_ images tag "$app" "$registry/interop/by-ctr:v1" >/dev/null
ctr_ images push --plain-http "$registry/interop/by-ctr:v1" >/dev/null
check "ctr push -> pull, save, docker load" back "$registry/interop/by-ctr:v1" "$app_id"

echo "interop: $passed passed, $failed failed"
[ "$limits" -eq 0 ] || echo "($limits known limits of the clients, listed above)"
[ "$failed" -eq 0 ]
