#!/usr/bin/env bash
# Installs, when missing, the Debian packages the tests and the demo use: skopeo and umoci
# (independent tools that make and read images) and docker-registry (the real CNCF
# Distribution registry, for the registry tests). Needs root or sudo; asks nothing.
set -euo pipefail

missing=()
for package in skopeo umoci docker-registry; do
  command -v "$package" >/dev/null 2>&1 || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing ${missing[*]} with apt-get" >&2
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
