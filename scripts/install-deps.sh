#!/usr/bin/env bash
# Installs, when missing, the Debian packages the tests and the demo use: skopeo and umoci
# (independent tools that make and read images), docker-registry (the real CNCF Distribution
# registry) and htpasswd (its bcrypt password files), openssl (test certificates and token
# signatures). Needs root or sudo; asks nothing.
set -euo pipefail

missing=()
for wanted in skopeo:skopeo umoci:umoci docker-registry:docker-registry \
  htpasswd:apache2-utils openssl:openssl; do
  command -v "${wanted%%:*}" >/dev/null 2>&1 || missing+=("${wanted#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing ${missing[*]} with apt-get" >&2
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
