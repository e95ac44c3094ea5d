#!/usr/bin/env bash
# Installs, when missing, the Debian packages the tests and the demo use: skopeo and umoci
# (independent tools that make and read images), docker-registry (the real CNCF Distribution
# registry) and htpasswd (its bcrypt password files), openssl (test certificates and token
# signatures), strip (binutils: a split bundle's test carries the program stripped), zsh and
# fish (the completion scripts' tests run each in its shell; bash is there) and groff (the
# manual page's test formats it). With the argument `bench`, only the first three (what
# scripts/bench.sh needs besides curl, GNU time and python3). With `interop`, also the clients
# scripts/interop.sh checks against: Docker (docker.io), podman, containerd (ctr), and python3
# for its JSON. Needs root or sudo; asks nothing.
set -euo pipefail

wanted=(skopeo:skopeo umoci:umoci docker-registry:docker-registry htpasswd:apache2-utils
  openssl:openssl strip:binutils zsh:zsh fish:fish groff:groff-base)
if [ "${1:-}" = bench ]; then
  wanted=(skopeo:skopeo umoci:umoci docker-registry:docker-registry)
fi
if [ "${1:-}" = interop ]; then
  wanted+=(dockerd:docker.io podman:podman containerd:containerd ctr:containerd
    python3:python3)
fi
missing=()
for want in "${wanted[@]}"; do
  command -v "${want%%:*}" >/dev/null 2>&1 || missing+=("${want#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
# apt's progress, debconf and invoke-rc.d lines go to a log, shown only when it fails.
log=$(mktemp "${TMPDIR:-/tmp}/install-deps.XXXXXX.log")
echo "installing ${missing[*]} with apt-get (log: $log)" >&2
if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
  -o Dpkg::Use-Pty=0 "${missing[@]}"; } >"$log" 2>&1; then
  tail -20 "$log" >&2
  echo "install-deps.sh: apt-get failed; the whole log is $log" >&2
  exit 1
fi
# The docker-registry package starts a registry on port 5000 as a system service; the tests
# and the demo start their own, so it is stopped and disabled (say so: it is the host's).
if [[ " ${missing[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null 2>&1 &&
  systemctl is-enabled docker-registry >/dev/null 2>&1; then
  $sudo systemctl disable --now docker-registry >>"$log" 2>&1 || true
  echo "disabled the docker-registry system service the package enabled (the tests start their own)" >&2
fi
rm -f "$log"
