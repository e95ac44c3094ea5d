#!/usr/bin/env bash
# The many-core bench (issue 29), made to run as one command on a lent machine that has no
# network and no packages of ours: push (gzip) of the full bench image against skopeo, at
# --max-concurrent 1, 4 and 8, each case's report written into docs/benchmarks.md.
#
#   scripts/many-cores.sh pack   here: the static binary, skopeo (with the libraries it links
#                                beyond glibc), umoci, docker-registry and GNU time, copied
#                                into target/many-cores/ (about 50 MB: carry that path)
#   scripts/many-cores.sh run [BENCH OPTIONS]
#                                there: puts target/many-cores/ first on PATH and runs
#                                scripts/bench.sh --case push-gzip with each width (and the
#                                options given, as --quick to try it here); needs only bash,
#                                curl, python3 and coreutils on the machine
set -euo pipefail
cd "$(dirname "$0")/.."
pack=${CARGO_TARGET_DIR:-$PWD/target}/many-cores

case ${1:-} in
  pack)
    bin=$(scripts/build-static.sh)
    scripts/install-deps.sh
    for wanted in /usr/bin/time:time; do
      [ -x "${wanted%%:*}" ] || { echo "many-cores.sh: install ${wanted#*:} first" >&2; exit 1; }
    done
    rm -rf "$pack" && mkdir -p "$pack/bin" "$pack/lib"
    cp "$bin" "$(command -v skopeo)" "$(command -v umoci)" "$(command -v docker-registry)" \
      /usr/bin/time "$pack/bin/"
    # skopeo links a few libraries a bare machine may lack; glibc itself is the machine's.
    ldd "$(command -v skopeo)" | awk '/=>/ { print $3 }' | grep -v -e '/libc\.so' -e '/libm\.so' |
      xargs -r -I{} cp -L {} "$pack/lib/"
    echo "many-cores.sh: $(du -sh "$pack" | cut -f1) in $pack; carry target/many-cores and run: scripts/many-cores.sh run" >&2
    ;;
  run)
    shift
    [ -x "$pack/bin/docker-image-pusher" ] || { echo "many-cores.sh: no $pack: run 'scripts/many-cores.sh pack' where the tools are, and carry it" >&2; exit 1; }
    export PATH=$pack/bin:$PATH LD_LIBRARY_PATH=$pack/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export DOCKER_IMAGE_PUSHER=$pack/bin/docker-image-pusher
    echo "many-cores.sh: $(nproc) cores, $(skopeo --version)" >&2
    for width in 1 4 8; do
      scripts/bench.sh --case push-gzip --max-concurrent "$width" --runs 3 "$@" --record docs/benchmarks.md
    done
    ;;
  *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 2 ;;
esac
