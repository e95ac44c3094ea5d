#!/usr/bin/env bash
# Builds the static binary: x86_64-unknown-linux-musl, release profile (LTO, one codegen unit,
# stripped). Adds the Rust target with rustup and musl-tools with apt-get when missing, then
# checks the result: static, under 5 MB, and `--help` quick. Prints the binary's path last.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
if ! rustup target list --installed | grep -qx "$target"; then
  echo "adding the $target target with rustup" >&2
  rustup target add "$target" >&2
fi
if ! command -v musl-gcc >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing musl-tools with apt-get" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq musl-tools >&2
fi
cargo build --release --locked --target "$target" >&2
bin=${CARGO_TARGET_DIR:-$PWD/target}/$target/release/docker-image-pusher

size=$(stat -c %s "$bin")
echo "$bin: $size bytes" >&2
file "$bin" | grep -q "static" || { echo "not a static binary: $(file "$bin")" >&2; exit 1; }
[ "$size" -lt $((5 * 1024 * 1024)) ] || { echo "larger than 5 MB" >&2; exit 1; }
start=$(date +%s%N)
for _ in $(seq 100); do "$bin" --help >/dev/null; done
echo "--help: $(( ($(date +%s%N) - start) / 100000 )) µs on average over 100 runs" >&2
echo "$bin"
