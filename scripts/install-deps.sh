#!/usr/bin/env bash
# Installs, when missing, the Debian packages the tests and the demo use: skopeo and umoci
# (independent tools that make and read images), docker-registry (the real CNCF Distribution
# registry) and htpasswd (its bcrypt password files), openssl (test certificates and token
# signatures). With the argument `interop`, also the clients scripts/interop.sh checks against:
# Docker (docker.io), podman, containerd (ctr), and python3 for its JSON. Needs root or sudo;
# asks nothing.
set -euo pipefail

wanted=(skopeo:skopeo umoci:umoci docker-registry:docker-registry htpasswd:apache2-utils
  openssl:openssl)
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
echo "installing ${missing[*]} with apt-get" >&2
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
