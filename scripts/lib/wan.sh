# Sourced by bench.sh for --wan RTT_MS,MBIT: pull and push of a dozen-layer image through a
# delay line (scripts/lib/delay_line.py) in front of the loopback registry, for skopeo, ours
# at defaults, ours with --concurrency dynamic and ours with --max-concurrent 4; best of the
# runs, beside the link's floors (the bytes over the bandwidth; and with the round trips one blob
# most any tool could gain on skopeo, were it to send at the floor with no round trip. Uses
# bench.sh's bin, skopeo, run, runs, size, measure and REGISTRY.

# wan_image DIR: the bench's WAN image, DIR/wan.tar: twelve layers of 0.7 to 7.7 MB of random
# bytes and a little text, about 50 MB in all (a tenth with --quick), made once with umoci.
wan_image() {
  local dir=$1 layout=$1/wan-oci i kb
  [ -f "$dir/wan.tar" ] && return 0
  rm -rf "$layout"
  umoci init --layout "$layout"
  umoci new --image "$layout:wan"
  for i in $(seq 12); do
    kb=$(((i * 613) % 7000 + 700))
    [ "$size" = quick ] && kb=$((kb / 10))
    rm -rf "$layout.layer" && mkdir -p "$layout.layer/srv"
    head -c "$((kb * 1024))" /dev/urandom >"$layout.layer/srv/data-$i.bin"
    awk -v i="$i" -v n="$((kb * 5))" 'BEGIN { for (k = 0; k < n; k++) printf "layer %d line %d\n", i, k }' \
      >"$layout.layer/srv/text-$i.txt"
    tar -cf "$layout.layer.tar" -C "$layout.layer" srv
    umoci raw add-layer --image "$layout:wan" "$layout.layer.tar"
  done
  "${skopeo[@]}" "oci:$layout:wan" "docker-archive:$dir/wan.tar.partial:bench/wan:v1"
  mv "$dir/wan.tar.partial" "$dir/wan.tar"
  rm -rf "$layout" "$layout.layer" "$layout.layer.tar"
}

# blobs REPOSITORY: the number and the bytes of the config and layers of REPOSITORY:v1 in the
# registry.
blobs() {
  curl -sSf -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REGISTRY/v2/$1/manifests/v1" |
    grep -o '"size": *[0-9]*' | awk -F: '{ sum += $2; n++ } END { printf "%d %d", n, sum }'
}

wan_bench() {
  local rtt=${1%,*} mbit=${1#*,} port delay_pid tool i link
  case "$rtt,$mbit" in
    *[!0-9,.]* | ,* | *,) echo "bench.sh: --wan takes RTT_MS,MBIT (40,200), not '$1'" >&2; exit 2 ;;
  esac
  wan_image "$bench"
  port=$((20000 + RANDOM % 20000))
  while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  python3 scripts/lib/delay_line.py "$port" "${REGISTRY#*:}" "$rtt" "$mbit" >"$run/delay.log" 2>&1 &
  delay_pid=$!
  trap '[ -n "$REGISTRY_PID" ] && kill "$REGISTRY_PID" 2>/dev/null; kill '"$delay_pid"' 2>/dev/null; rm -rf "$run"' EXIT
  for _ in $(seq 50); do grep -q ready "$run/delay.log" 2>/dev/null && break; sleep 0.1; done
  link=127.0.0.1:$port
  # The pull source, pushed straight to the registry (not through the link).
  "${skopeo[@]}" "docker-archive:$bench/wan.tar" "docker://$REGISTRY/wan/source:v1"
  local ours=("$bin" -q) dynamic=(--concurrency dynamic) four=(--max-concurrent 4)
  for i in $(seq "$runs"); do
    for tool in skopeo ours dynamic four; do
      echo "bench: wan, run $i, $tool" >&2
      forget_skopeo_pushes
      rm -rf "$run/cache" "$run/dir"
      case $tool in
        skopeo)
          measure wan-push skopeo "${skopeo[@]}" "docker-archive:$bench/wan.tar" "docker://$link/wan/skopeo-$i:v1"
          measure wan-pull skopeo "${skopeo[@]}" "docker://$link/wan/source:v1" "dir:$run/dir" ;;
        ours)
          measure wan-push ours "${ours[@]}" --cache-dir "$run/cache" push "$bench/wan.tar" "http://$link/wan/ours-$i:v1"
          rm -rf "$run/cache"
          measure wan-pull ours "${ours[@]}" --cache-dir "$run/cache" pull "http://$link/wan/source:v1" ;;
        *)
          local extra=("${dynamic[@]}")
          [ "$tool" = four ] && extra=("${four[@]}")
          measure wan-push "$tool" "${ours[@]}" --cache-dir "$run/cache" push "${extra[@]}" "$bench/wan.tar" "http://$link/wan/$tool-$i:v1"
          rm -rf "$run/cache"
          measure wan-pull "$tool" "${ours[@]}" --cache-dir "$run/cache" pull "${extra[@]}" "http://$link/wan/source:v1" ;;
      esac
    done
  done
  local pull_blobs pull_bytes push_blobs push_bytes
  read -r pull_blobs pull_bytes <<<"$(blobs wan/source)"
  read -r push_blobs push_bytes <<<"$(blobs wan/ours-1)"
  echo
  echo "docker-image-pusher $("$bin" --version | cut -d' ' -f2) and $(skopeo --version), $(nproc) cores,"
  echo "through a delay line of ${rtt} ms round trip and ${mbit} Mbit/s; the $size WAN image" \
    "($((pull_bytes / 1000000)) MB pulled, $((push_bytes / 1000000)) MB pushed, $((pull_blobs - 1)) layers), best of $runs."
  echo "Byte floor: the bytes over the bandwidth (+ 2 round trips for a pull: ping, manifest)."
  echo "Sequential floor: the bytes, and the round trips one blob at a time must add: a pull's"
  echo "ping, manifest and one GET per blob; a push's ping and manifest, HEAD, POST and PUT for"
  echo "the config, POST, PATCH and PUT per layer (its gzip digest is known only at its end)."
  echo "Goals (issue 29): ours at defaults within 1.05x of the sequential floor; dynamic within"
  echo "1.08x (pull) and 1.10x (push) of the byte floor."
  echo
  awk -v mbit="$mbit" -v rtt="$rtt" -v pull="$pull_bytes" -v push="$push_bytes" \
    -v pull_blobs="$pull_blobs" -v push_blobs="$push_blobs" '
    { key = $1 SUBSEP $2; if (!(key in best) || $3 < best[key]) best[key] = $3
      if ($4 > rss[$1, $2]) rss[$1, $2] = $4 }
    function verdict(ratio, goal) { return sprintf("%.2fx %s", ratio, ratio <= goal ? "(holds)" : sprintf("(goal %.2fx)", goal)) }
    END {
      print "| case | byte floor (s) | sequential floor (s) | skopeo (s) | ours (s) | ours / sequential floor | dynamic (s) | dynamic / byte floor | --max-concurrent 4 (s) | skopeo / byte floor | ours peak RSS (max) |"
      print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
      for (c = 1; c <= 2; c++) {
        k = c == 1 ? "wan-pull" : "wan-push"
        trip = rtt / 1000
        if (c == 1) {
          bytes = pull * 8 / (mbit * 1e6); floor = bytes + 2 * trip; sequential = bytes + (2 + pull_blobs) * trip; goal = 1.08
        } else {
          layers = push_blobs - 1
          bytes = push * 8 / (mbit * 1e6); floor = bytes; sequential = bytes + (2 + 3 + 3 * layers) * trip; goal = 1.10
        }
        s = best[k, "skopeo"] / 1000; o = best[k, "ours"] / 1000
        d = best[k, "dynamic"] / 1000; f = best[k, "four"] / 1000
        m = rss[k, "ours"]; if (rss[k, "dynamic"] > m) m = rss[k, "dynamic"]; if (rss[k, "four"] > m) m = rss[k, "four"]
        printf "| %s | %.2f | %.2f | %.2f | %.2f | %s | %.2f | %s | %.2f | %.2fx | %.1f MB |\n", k, floor, sequential, s, o,
          verdict(o / sequential, 1.05), d, verdict(d / floor, goal), f, s / floor, m / 1024
      }
    }' "$results"
}
