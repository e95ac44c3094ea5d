#!/usr/bin/env bash
# Installs the test dependencies if missing, then runs the whole test suite (unit tests beside
# the code, end-to-end tests in tests/ that run the built binary). Extra arguments go to
# `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo test --locked "$@"
