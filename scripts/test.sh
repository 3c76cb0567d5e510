#!/usr/bin/env bash
# Gantry's whole test command: the one README gives and CI runs.
#   1. installs the external programs the tests drive (scripts/install-tools.sh)
#   2. checks formatting and lints
#   3. runs unit and integration tests of every crate (cargo nextest)
#   4. runs every end-to-end suite once (./e2e/run all)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*"; }

step "install test tools"
scripts/install-tools.sh

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "unit and integration tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --exclude gantry-e2e --no-fail-fast
else
    cargo test --workspace --locked --exclude gantry-e2e --no-fail-fast
fi

step "CRDs in the chart match 'gantry crd'"
scripts/check-crds.sh

step "end-to-end suites"
e2e/run all
