# Sourced by bench.sh for --mirror: mirroring twenty images of five layers (two base layers
# they share, three of their own) from one loopback registry into another, first run and
# second run, for `skopeo sync` (a YAML list of the images) and ours (`sync --file`) with
# --jobs 1 and --jobs 4; best of the runs, with our peak RSS. The registry bench.sh started is
# the source; a second one is the destination. Uses bench.sh's bin, skopeo, run, runs, size,
# measure, layer, forget_skopeo_pushes, results, REGISTRY and start_registry.

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

mirror_bench() {
  local layout=$bench/mirror-oci source dest i run_n tool jobs
  mirror_images "$layout"
  source=$REGISTRY
  local source_pid=$REGISTRY_PID
  start_registry "$run/dest"
  dest=$REGISTRY
  trap 'kill '"$source_pid"' "$REGISTRY_PID" 2>/dev/null; rm -rf "$run"' EXIT
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
