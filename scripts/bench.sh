#!/usr/bin/env bash
# Measures docker-image-pusher against skopeo on the same image, registry and machine, and
# prints a Markdown table: each tool's median wall time, skopeo's time over ours, our MB/s,
# each tool's peak RSS (GNU time -v), and our time over the curl floor.
#
#   scripts/bench.sh           a ~2 GB image (1 GB of random bytes, ~500 MB of text, 20 000
#                              small files) made once under target/bench/full; 3 runs a case
#   scripts/bench.sh --quick   the same shapes, small: CI checks that the bench still runs
#   --runs N                   runs of each case, each tool (default 3)
#   --case NAME                only this case (push-gzip, push-none, pull, extract, repush,
#                              many); may be repeated
#   --max-concurrent N         our blobs moved at once (default 1, as the tool's default)
#   --dynamic                  ours with --concurrency dynamic (DOCKER_PUSHER_CONCURRENCY)
#   --wan RTT_MS,MBIT          instead: pull and push of a dozen-layer image through a delay
#                              line of that round trip and bandwidth (scripts/lib/wan.sh), for
#                              skopeo and ours at defaults, --concurrency dynamic and
#                              --max-concurrent 4, beside the link's floor; best of the runs
#   --mirror                   instead: mirroring 20 images of 5 layers between two registries
#                              (skopeo sync against our sync with --jobs 1 and --jobs 4), and
#                              one repository of 5000 tags (100 with --quick) synced whole with
#                              --jobs 16; first and second run (scripts/lib/mirror.sh)
#   --record FILE              also write the report into FILE (docs/benchmarks.md) as a
#                              section headed by this command line, the date and the commit,
#                              replacing the section an earlier run with the same options wrote
#                              (scripts/lib/record.py); the text around the sections is kept
#   DOCKER_IMAGE_PUSHER=path   measure that binary (the static build, say)
#
# Cases, each run against a fresh repository and (for us) a fresh cache, the two tools taking
# turns to go first: push a docker save archive (our default gzip, and --compress none, both
# against skopeo's default), pull into the cache (skopeo: into dir:), extract (skopeo:
# docker-archive: to dir:), push again a 10-layer image the registry has (HEADs only), push
# (gzip) an image of 127 small layers, Docker's most (peak RSS must not grow with the layers),
# and the floor: curl GET of the pushed blobs, curl PUT of the uncompressed layers. skopeo's blob info
# cache is deleted before each of its pushes (so it uploads rather than mounts, as we do).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/registry.sh

runs=3
size=full
cases=""
wan=""
mirror=""
record=""
# The options as given, less --record FILE: the section's name, and the run that records.
options=()
skip=0
for given in "$@"; do
  case $skip,$given in
    1,*) skip=0 ;;
    0,--record) skip=1 ;;
    *) options+=("$given") ;;
  esac
done
while [ $# -gt 0 ]; do
  case $1 in
    --quick) size=quick ;;
    --runs) runs=${2:?--runs needs a number}; shift ;;
    --case) cases="$cases ${2:?--case needs a name}"; shift ;;
    --max-concurrent) export DOCKER_PUSHER_MAX_CONCURRENT=${2:?--max-concurrent needs a number}; shift ;;
    --dynamic) export DOCKER_PUSHER_CONCURRENCY=dynamic ;;
    --wan) wan=${2:?--wan needs RTT_MS,MBIT}; shift ;;
    --mirror) mirror=1 ;;
    --record) record=${2:?--record needs a file}; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument '$1'; see --help" >&2; exit 2 ;;
  esac
  shift
done
# The report is what this script prints on stdout (progress goes to stderr): run again
# without --record, keep a copy, and write it into the file when the run succeeded.
if [ -n "$record" ]; then
  report=$(mktemp)
  status=0
  "$0" "${options[@]}" | tee "$report" || status=$?
  [ "$status" -ne 0 ] || python3 scripts/lib/record.py "$record" "${options[*]}" "$report" || status=$?
  rm -f "$report"
  exit "$status"
fi
case $size in
  full) random_mb=1024 text_mb=500 files=20000 small_kb=1024 ;;
  quick) random_mb=8 text_mb=4 files=500 small_kb=64 ;;
esac

scripts/install-deps.sh bench
for wanted in curl:curl time:time python3:python3; do
  if ! type -P "${wanted%%:*}" >/dev/null; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get install -y -qq "${wanted#*:}" >&2
  fi
done
# GNU time, not the shell's keyword: the first on PATH (scripts/many-cores.sh brings its own).
gnu_time=$(type -P time)
if [ -n "${DOCKER_IMAGE_PUSHER:-}" ]; then
  bin=$DOCKER_IMAGE_PUSHER
else
  cargo build --release --locked --quiet
  bin=${CARGO_TARGET_DIR:-$PWD/target}/release/docker-image-pusher
fi
bench=${CARGO_TARGET_DIR:-$PWD/target}/bench/$size
mkdir -p "$bench"
skopeo=(skopeo --insecure-policy copy --quiet --src-tls-verify=false --dest-tls-verify=false)

# layer LAYOUT FROM TO FUNCTION: adds a layer made by FUNCTION (given the rootfs) to image
# FROM of LAYOUT, as image TO.
layer() {
  local bundle=$1.bundle
  rm -rf "$bundle"
  umoci unpack --image "$1:$2" "$bundle" >/dev/null
  "$4" "$bundle/rootfs"
  umoci repack --image "$1:$3" "$bundle" >/dev/null
  rm -rf "$bundle"
}
small_files() {
  mkdir -p "$1/srv/files"
  (cd "$1/srv/files" && awk -v n="$files" 'BEGIN {
    for (i = 0; i < n; i++) {
      dir = sprintf("%03d", i / 100); if (!(dir in made)) { system("mkdir -p " dir); made[dir] }
      f = sprintf("%s/file-%05d.conf", dir, i)
      printf "# file %d\nname = item-%d\nvalue = %d\n", i, i, i * 7919 % 104729 > f; close(f)
    } }')
}
text() {
  mkdir -p "$1/srv"
  awk -v bytes=$((text_mb * 1024 * 1024)) 'BEGIN { srand(7)
    while (written < bytes) {
      line = sprintf("2026-11-23T10:%02d:%02d.%03dZ INFO request id=%08x path=/api/v1/items/%d status=%d took=%dms\n",
        int(rand() * 60), int(rand() * 60), int(rand() * 1000), int(rand() * 2147483647),
        int(rand() * 100000), rand() < 0.9 ? 200 : 404, int(rand() * 500))
      printf "%s", line; written += length(line)
    } }' >"$1/srv/access.log"
}
random_bytes() { mkdir -p "$1/srv"; head -c $((random_mb * 1024 * 1024)) /dev/urandom >"$1/srv/random.bin"; }
small_random() { mkdir -p "$1/srv"; head -c $((small_kb * 1024)) /dev/urandom >"$1/srv/part-$RANDOM$RANDOM.bin"; }

# many_layers LAYOUT: image many of LAYOUT, 127 layers of ~20 KB (text and random bytes),
# each added as a tar, so no layer is unpacked to make the next.
many_layers() {
  local i dir=$1.layers
  umoci new --image "$1:many"
  for i in $(seq 127); do
    rm -rf "$dir" && mkdir -p "$dir/srv"
    awk -v i="$i" 'BEGIN { for (n = 0; n < 300; n++) printf "layer %d line %d\n", i, n }' >"$dir/srv/layer-$i.txt"
    head -c 8192 /dev/urandom >"$dir/srv/layer-$i.bin"
    tar -cf "$dir.tar" -C "$dir" srv
    umoci raw add-layer --image "$1:many" "$dir.tar"
  done
  rm -rf "$dir" "$dir.tar"
}

if [ -z "$wan$mirror" ] && { [ ! -f "$bench/big.tar" ] || [ ! -f "$bench/ten.tar" ] || [ ! -f "$bench/many.tar" ]; }; then
  echo "making the bench images under $bench (once)" >&2
  layout=$bench/oci
  rm -rf "$layout"
  umoci init --layout "$layout"
  umoci new --image "$layout:empty"
  layer "$layout" empty big small_files
  layer "$layout" big big text
  layer "$layout" big big random_bytes
  layer "$layout" empty ten small_random
  for _ in $(seq 9); do layer "$layout" ten ten small_random; done
  many_layers "$layout"
  for image in big ten many; do
    "${skopeo[@]}" "oci:$layout:$image" "docker-archive:$bench/$image.tar.partial:bench/$image:v1"
    mv "$bench/$image.tar.partial" "$bench/$image.tar"
  done
  rm -rf "$layout"
fi

run=$bench/run
rm -rf "$run"
mkdir -p "$run"
REGISTRY_PID=""
trap '[ -n "$REGISTRY_PID" ] && kill "$REGISTRY_PID" 2>/dev/null; rm -rf "$run"' EXIT
start_registry "$run/registry"
results=$run/results

# measure CASE TOOL COMMAND...: runs COMMAND under GNU time -v and records its wall time
# (ms) and peak RSS (kB), unless this is a warm-up run; a failure stops the bench with the
# command's output.
warm_up=0
measure() {
  local case=$1 tool=$2 start end rss
  shift 2
  sync # no run pays for the writeback of the one before
  start=$(date +%s%N)
  if ! "$gnu_time" -v -o "$run/time.txt" "$@" >"$run/out.log" 2>&1; then
    echo "bench: $case ($tool) failed: $*" >&2
    tail -20 "$run/out.log" >&2
    exit 1
  fi
  end=$(date +%s%N)
  rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$run/time.txt")
  [ "$warm_up" = 1 ] || echo "$case $tool $(((end - start) / 1000000)) $rss" >>"$results"
}

# skopeo remembers where it pushed compressed blobs (its blob info cache) and mounts them from
# there; for a fair push it must forget, as our fresh cache has.
forget_skopeo_pushes() {
  rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb \
    "${XDG_DATA_HOME:-$HOME/.local/share}/containers/cache/blob-info-cache-v1.boltdb"
}
if [ -n "$mirror" ]; then
  source scripts/lib/mirror.sh
  mirror_bench
  exit 0
fi
if [ -n "$wan" ]; then
  source scripts/lib/wan.sh
  [ "$runs" = 3 ] && [ "$size" = full ] && runs=2
  wan_bench "$wan"
  exit 0
fi
image_bytes=$(stat -c %s "$bench/big.tar")

# Each tool pushes the 10-layer image once, so the re-push case finds it there and both tools
# know its compressed digests.
prime_repush() {
  "$bin" --cache-dir "$run/ten-cache" -q push "$bench/ten.tar" "$REGISTRY/bench/ten-ours:v1"
  "${skopeo[@]}" "docker-archive:$bench/ten.tar" "docker://$REGISTRY/bench/ten-skopeo:v1"
}

# pushed_mb REPOSITORY: the megabytes of the layers of REPOSITORY:v1, as the registry holds them.
pushed_mb() {
  curl -sSf -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REGISTRY/v2/$1/manifests/v1" |
    grep -o '"size": *[0-9]*' | tail -n +2 | awk -F: '{ sum += $2 } END { printf "%.0f", sum / 1e6 }'
}

# The image the pull case starts from, and the pushed blobs the floor fetches.
"${skopeo[@]}" "docker-archive:$bench/big.tar" "docker://$REGISTRY/bench/source:v1"
manifest=$(curl -sSf -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  "http://$REGISTRY/v2/bench/source/manifests/v1")
blobs=$(grep -o 'sha256:[0-9a-f]\{64\}' <<<"$manifest" | sort -u)
mkdir -p "$run/layers"
tar -xf "$bench/big.tar" -C "$run/layers" --wildcards '*.tar'

# One run of each case by one tool.
case_push_gzip() {
  case $1 in
    ours) measure push-gzip ours "$bin" --cache-dir "$run/cache" -q push "$bench/big.tar" "$REGISTRY/gzip/ours-$2:v1" ;;
    skopeo) forget_skopeo_pushes; measure push-gzip skopeo "${skopeo[@]}" "docker-archive:$bench/big.tar" "docker://$REGISTRY/gzip/skopeo-$2:v1" ;;
  esac
}
case_push_none() {
  case $1 in
    ours) measure push-none ours "$bin" --cache-dir "$run/cache" -q push --compress none "$bench/big.tar" "$REGISTRY/none/ours-$2:v1" ;;
    skopeo) forget_skopeo_pushes; measure push-none skopeo "${skopeo[@]}" "docker-archive:$bench/big.tar" "docker://$REGISTRY/none/skopeo-$2:v1" ;;
    floor) floor_push "$2" ;;
  esac
}
case_pull() {
  case $1 in
    ours) measure pull ours "$bin" --cache-dir "$run/cache" -q pull "$REGISTRY/bench/source:v1" ;;
    skopeo) measure pull skopeo "${skopeo[@]}" "docker://$REGISTRY/bench/source:v1" "dir:$run/dir" ;;
    floor) floor_pull ;;
  esac
}
case_extract() {
  case $1 in
    ours) measure extract ours "$bin" --cache-dir "$run/cache" -q extract "$bench/big.tar" ;;
    skopeo) measure extract skopeo "${skopeo[@]}" "docker-archive:$bench/big.tar" "dir:$run/dir" ;;
  esac
}
case_repush() {
  case $1 in
    ours) measure repush ours "$bin" --cache-dir "$run/ten-cache" -q push "$bench/ten.tar" "$REGISTRY/bench/ten-ours:v1" ;;
    skopeo) measure repush skopeo "${skopeo[@]}" "docker-archive:$bench/ten.tar" "docker://$REGISTRY/bench/ten-skopeo:v1" ;;
  esac
}
case_many() {
  case $1 in
    ours) measure many ours "$bin" --cache-dir "$run/cache" -q push "$bench/many.tar" "$REGISTRY/many/ours-$2:v1" ;;
    skopeo) forget_skopeo_pushes; measure many skopeo "${skopeo[@]}" "docker-archive:$bench/many.tar" "docker://$REGISTRY/many/skopeo-$2:v1" ;;
  esac
}
# The floor: curl GET of the pushed blobs to files, curl PUT of the uncompressed layers.
floor_pull() {
  local start blob
  start=$(date +%s%N)
  for blob in $blobs; do
    curl -sSf -o "$run/floor.blob" "http://$REGISTRY/v2/bench/source/blobs/$blob"
  done
  echo "pull floor $((($(date +%s%N) - start) / 1000000)) 0" >>"$results"
}
floor_push() {
  local start file location
  start=$(date +%s%N)
  for file in "$run"/layers/*.tar; do
    location=$(curl -sSf -X POST -D - -o /dev/null "http://$REGISTRY/v2/floor/push-$1/blobs/uploads/" |
      awk 'tolower($1) == "location:" { print $2 }' | tr -d '\r')
    curl -sSf -T "$file" -H 'Content-Type: application/octet-stream' \
      "$location&digest=sha256:$(basename "$file" .tar)" -o /dev/null
  done
  echo "push-none floor $((($(date +%s%N) - start) / 1000000)) 0" >>"$results"
}

for case in ${cases:-push-gzip push-none pull extract repush many}; do
  case=${case//-/_}
  [ "$case" = repush ] && prime_repush
  # One unrecorded run of each tool first: the first run after a change of case pays for
  # whatever the disk is still doing.
  warm_up=1
  for tool in ours skopeo; do
    echo "bench: $case, warm-up, $tool" >&2
    "case_$case" "$tool" 0
    rm -rf "$run/cache" "$run/dir"
  done
  warm_up=0
  for i in $(seq "$runs"); do
    order="ours skopeo"
    [ $((i % 2)) -eq 0 ] && order="skopeo ours"
    [ "$case" = pull ] || [ "$case" = push_none ] && order="$order floor"
    for tool in $order; do
      echo "bench: $case, run $i, $tool" >&2
      "case_$case" "$tool" "$i"
      rm -rf "$run/cache" "$run/dir" "$run/floor.blob"
    done
  done
done

sizes=""
if grep -q '^push-gzip ' "$results"; then
  sizes="push-gzip sends $(pushed_mb gzip/ours-1) MB (ours) and $(pushed_mb gzip/skopeo-1) MB (skopeo)."
fi
echo
echo "docker-image-pusher $("$bin" --version | cut -d' ' -f2) and $(skopeo --version), $(nproc) cores,"
echo "$size image of $((image_bytes / 1000000)) MB, $runs runs each (medians), ours with" \
  "--concurrency ${DOCKER_PUSHER_CONCURRENCY:-fixed} and --max-concurrent ${DOCKER_PUSHER_MAX_CONCURRENT:-default}:"
echo
awk -v bytes="$image_bytes" '
  function median(list,    n, values, i, j, t) {
    n = split(list, values, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && values[j - 1] + 0 > values[j] + 0; j--) {
      t = values[j]; values[j] = values[j - 1]; values[j - 1] = t
    }
    return n % 2 ? values[(n + 1) / 2] : (values[n / 2] + values[n / 2 + 1]) / 2
  }
  function max(list,    n, values, i, m) {
    n = split(list, values, " "); m = 0
    for (i = 1; i <= n; i++) if (values[i] + 0 > m) m = values[i] + 0
    return m
  }
  { time[$1, $2] = time[$1, $2] " " $3; rss[$1, $2] = rss[$1, $2] " " $4 }
  END {
    print "| case | ours (s) | skopeo (s) | skopeo / ours | ours MB/s | ours peak RSS | skopeo peak RSS | ours / floor |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|"
    split("push-gzip push-none pull extract repush many", cases, " ")
    for (c = 1; c <= 6; c++) {
      k = cases[c]
      if (!((k, "ours") in time)) continue
      ours = median(time[k, "ours"]); theirs = median(time[k, "skopeo"])
      floor = ((k, "floor") in time) ? sprintf("%.2f", ours / median(time[k, "floor"])) : "-"
      rate = k == "repush" || k == "many" ? "-" : sprintf("%.0f", bytes / 1e6 / (ours / 1000))
      printf "| %s | %.2f | %.2f | %.2f | %s | %.1f MB | %.1f MB | %s |\n", k, ours / 1000, theirs / 1000,
        theirs / ours, rate, max(rss[k, "ours"]) / 1024, max(rss[k, "skopeo"]) / 1024, floor
    }
  }' "$results"
[ -z "$sizes" ] || printf '\n%s\n' "$sizes"
# Peak memory must not grow with the layers (invariant 2): the many-layer push is held to it.
many_rss=$(awk '$1 == "many" && $2 == "ours" && $4 > max { max = $4 } END { print max + 0 }' "$results")
if [ "$many_rss" -gt $((16 * 1024)) ]; then
  echo "bench: the 127-layer push peaked at $((many_rss / 1024)) MB, over the 16 MB bound" >&2
  exit 1
fi
