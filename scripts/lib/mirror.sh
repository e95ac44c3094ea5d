# Sourced by bench.sh for --mirror, two cases, first run and second run of each, best of the
# runs, with our peak RSS:
# - twenty images of five layers (two base layers they share, three of their own) from one
#   loopback registry into another, for `skopeo sync` (a YAML list of the images) and ours
#   (`sync --file`) with --jobs 1 and --jobs 4. The registry bench.sh started is the source; a
#   second one is the destination.
# - one repository of 5000 tags (100 with --quick), distinct manifests over one image's blobs,
#   synced whole between two paths of one loopback registry: `skopeo sync` of the repository
#   and ours (`sync REPOSITORY --to`) with --jobs 16; and ours on the tags v1* alone, for how
#   memory grows with the tags.
# Uses bench.sh's bin, skopeo, bench, run, runs, size, measure, layer, forget_skopeo_pushes,
# results, REGISTRY, REGISTRY_PID and start_registry.

# mirror_images LAYOUT: twenty images app-1 … app-20 of five layers in an OCI layout, made
# once: two base layers (1 MB of random bytes, 1 MB of text; a tenth with --quick) and three
# of their own (300 kB of random bytes each).
mirror_images() {
  local layout=$1 i j
  [ -f "$layout/done" ] && return 0
  rm -rf "$layout"
  umoci init --layout "$layout"
  umoci new --image "$layout:empty"
  local kb=1024 own=300
  [ "$size" = quick ] && kb=100 own=30
  base_random() { head -c "$((kb * 1024))" /dev/urandom >"$1/base.bin"; }
  base_text() { seq "$((kb * 150))" | sed 's/^/base line /' >"$1/base.txt"; }
  layer "$layout" empty base base_random
  layer "$layout" base base base_text
  for i in $(seq 20); do
    umoci tag --image "$layout:base" "app-$i"
    for j in 1 2 3; do
      own_bytes() { head -c "$((own * 1024))" /dev/urandom >"$1/own-$j.bin"; }
      layer "$layout" "app-$i" "app-$i" own_bytes
    done
  done
  touch "$layout/done"
}

# The registries the mirror cases started, stopped at the end (bench.sh's trap stops the last).
mirror_pids=()

mirror_bench() {
  trap 'kill "${mirror_pids[@]}" "$REGISTRY_PID" 2>/dev/null; rm -rf "$run"' EXIT
  mirror_images_bench
  kill "${mirror_pids[@]}" "$REGISTRY_PID" 2>/dev/null
  mirror_pids=() REGISTRY_PID=""
  mirror_tags_bench
}

# mirror_images_bench: the twenty images, between two registries.
mirror_images_bench() {
  local layout=$bench/mirror-oci source dest i run_n tool jobs
  mirror_images "$layout"
  source=$REGISTRY
  mirror_pids+=("$REGISTRY_PID")
  start_registry "$run/dest"
  dest=$REGISTRY
  local yaml=$run/images.yaml list=$run/images.txt
  printf '%s:\n  tls-verify: false\n  images:\n' "$source" >"$yaml"
  : >"$list"
  for i in $(seq 20); do
    "${skopeo[@]}" "oci:$layout:app-$i" "docker://$source/src/app-$i:v1"
    printf '    src/app-%d: [v1]\n' "$i" >>"$yaml"
    echo "$source/src/app-$i:v1" >>"$list"
  done
  for i in $(seq "$runs"); do
    for tool in skopeo jobs1 jobs4; do
      forget_skopeo_pushes
      for run_n in first second; do
        echo "bench: mirror, run $i, $tool, $run_n run" >&2
        case $tool in
          skopeo)
            measure "mirror-$run_n" skopeo skopeo --insecure-policy sync --src yaml \
              --dest docker --dest-tls-verify=false "$yaml" "$dest/skopeo-$i" ;;
          *)
            jobs=${tool#jobs}
            rm -rf "$run/cache"
            measure "mirror-$run_n" "$tool" "$bin" -q --cache-dir "$run/cache" sync \
              --file "$list" --to "http://$dest/$tool-$i" --jobs "$jobs" ;;
        esac
      done
    done
  done
  echo
  echo "docker-image-pusher $("$bin" --version | cut -d' ' -f2) and $(skopeo --version), $(nproc) cores;"
  echo "mirroring 20 images of 5 layers (2 shared) between two loopback registries ($size), best of $runs:"
  echo
  awk '
    { key = $1 SUBSEP $2; if (!(key in best) || $3 < best[key]) best[key] = $3
      if ($2 != "skopeo" && $4 > rss[$1]) rss[$1] = $4 }
    END {
      print "| case | skopeo sync (s) | ours --jobs 1 (s) | ours --jobs 4 (s) | skopeo / jobs 1 | skopeo / jobs 4 | ours peak RSS (max) |"
      print "|---|---:|---:|---:|---:|---:|---:|"
      for (c = 1; c <= 2; c++) {
        k = c == 1 ? "mirror-first" : "mirror-second"
        s = best[k, "skopeo"] / 1000; a = best[k, "jobs1"] / 1000; b = best[k, "jobs4"] / 1000
        printf "| %s | %.2f | %.2f | %.2f | %.2fx | %.2fx | %.1f MB |\n", k, s, a, b, s / a, s / b, rss[k] / 1024
      }
    }' "$results"
}

# mirror_tags STORAGE COUNT: a registry storage folder holding src/tags with COUNT tags v1 …
# vCOUNT, made once with manifest PUTs: one config and three small layers shared by every
# manifest, each manifest told apart by an annotation naming its tag.
mirror_tags() {
  local storage=$1 count=$2
  [ -f "$storage.done" ] && return 0
  rm -rf "$storage" "$storage.done"
  echo "making a repository of $count tags under $storage (once)" >&2
  start_registry "$storage.registry"
  local pid=$REGISTRY_PID
  mirror_pids+=("$pid")
  python3 - "$REGISTRY" src/tags "$count" <<'PY'
import gzip, hashlib, http.client, io, json, os, sys, tarfile, threading
host, repo, count = sys.argv[1], sys.argv[2], int(sys.argv[3])

def blob(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    c = http.client.HTTPConnection(host)
    c.request("POST", f"/v2/{repo}/blobs/uploads/")
    r = c.getresponse(); r.read()
    location = r.getheader("Location")
    c.request("PUT", location + ("&" if "?" in location else "?") + "digest=" + digest, body=data,
              headers={"Content-Type": "application/octet-stream"})
    r = c.getresponse(); r.read()
    assert r.status == 201, (r.status, digest)
    return {"digest": digest, "size": len(data)}

def layer(i):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        data = os.urandom(4096)
        info = tarfile.TarInfo(f"srv/part-{i}.bin"); info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(out.getvalue(), mtime=0)

layers = [layer(i) for i in range(3)]
diff_ids = ["sha256:" + hashlib.sha256(gzip.decompress(l)).hexdigest() for l in layers]
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
descriptors = [dict(blob(config), mediaType="application/vnd.oci.image.config.v1+json")]
descriptors += [dict(blob(l), mediaType="application/vnd.oci.image.layer.v1.tar+gzip") for l in layers]

def put(first):
    c = http.client.HTTPConnection(host)
    for i in range(first, count + 1, 4):
        tag = f"v{i}"
        manifest = json.dumps({"schemaVersion": 2,
                               "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": descriptors[0], "layers": descriptors[1:],
                               "annotations": {"org.example.bench.tag": tag}}).encode()
        c.request("PUT", f"/v2/{repo}/manifests/{tag}", body=manifest,
                  headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        r = c.getresponse(); r.read()
        assert r.status == 201, (r.status, tag)

threads = [threading.Thread(target=put, args=(first,)) for first in range(1, 5)]
for t in threads: t.start()
for t in threads: t.join()
PY
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  mv "$storage.registry/storage" "$storage"
  rm -rf "$storage.registry"
  touch "$storage.done"
}

# mirror_tags_bench: the repository of many tags, synced whole within one registry started on
# a copy of the kept storage.
mirror_tags_bench() {
  local count=5000 i run_n tool
  [ "$size" = quick ] && count=100
  local storage=$bench/mirror-tags-$count
  mirror_tags "$storage" "$count"
  mkdir -p "$run/tags"
  cp -r "$storage" "$run/tags/storage"
  start_registry "$run/tags"
  mirror_pids+=("$REGISTRY_PID")
  local registry=$REGISTRY
  for i in $(seq "$runs"); do
    for tool in skopeo jobs16; do
      forget_skopeo_pushes
      for run_n in first second; do
        echo "bench: mirror of $count tags, run $i, $tool, $run_n run" >&2
        case $tool in
          skopeo)
            measure "tags-$run_n" skopeo skopeo --insecure-policy sync --src docker \
              --dest docker --src-tls-verify=false --dest-tls-verify=false --preserve-digests \
              "$registry/src/tags" "$registry/skopeo-$i" ;;
          jobs16)
            rm -rf "$run/cache"
            measure "tags-$run_n" "$tool" "$bin" -q --cache-dir "$run/cache" sync \
              "http://$registry/src/tags" --to "http://$registry/$tool-$i" --jobs 16 ;;
        esac
      done
    done
  done
  # Memory against the number of tags: the first run of a part of the repository, the tags
  # v1* (1111 of 5000, 12 of 100), beside the whole one's.
  local part
  part=$(seq "$count" | grep -c '^1')
  rm -rf "$run/cache"
  measure tags-part-first jobs16 "$bin" -q --cache-dir "$run/cache" sync \
    "http://$registry/src/tags" --to "http://$registry/part" --jobs 16 --tags 'v1*'
  echo
  echo "one repository of $count tags (distinct manifests over 4 shared blobs) synced whole"
  echo "between two paths of one loopback registry ($size), best of $runs:"
  echo
  awk '
    $1 ~ /^tags-/ { key = $1 SUBSEP $2; if (!(key in best) || $3 < best[key]) best[key] = $3
      if ($2 != "skopeo" && $4 > rss[$1]) rss[$1] = $4 }
    END {
      print "| case | skopeo sync (s) | ours --jobs 16 (s) | skopeo / ours | ours peak RSS (max) |"
      print "|---|---:|---:|---:|---:|"
      for (c = 1; c <= 2; c++) {
        k = c == 1 ? "tags-first" : "tags-second"
        s = best[k, "skopeo"] / 1000; o = best[k, "jobs16"] / 1000
        printf "| %s | %.2f | %.2f | %.2fx | %.1f MB |\n", k, s, o, s / o, rss[k] / 1024
      }
      printf "\nOur peak RSS against the tags, first run: %.1f MB at %d tags, %.1f MB at %d (%+.0f bytes a tag).\n",
        rss["tags-part-first"] / 1024, part, rss["tags-first"] / 1024, count,
        (rss["tags-first"] - rss["tags-part-first"]) * 1024 / (count - part)
    }' part="$part" count="$count" "$results"
}
