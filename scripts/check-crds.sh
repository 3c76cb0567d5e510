#!/usr/bin/env bash
# The chart ships the CRDs that `gantry crd` prints; fail when they drift.
# With --write, regenerate the chart's copy instead.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CHART_CRDS="charts/gantry/crds/gantry.dev.yaml"
generated="$(mktemp)"
trap 'rm -f "$generated"' EXIT
cargo run --quiet --locked -p gantry -- crd >"$generated"
if [[ "${1:-}" == "--write" ]]; then
    mkdir -p "$(dirname "$CHART_CRDS")"
    cp "$generated" "$CHART_CRDS"
    echo "wrote $CHART_CRDS"
    exit 0
fi
if ! diff -u "$CHART_CRDS" "$generated"; then
    echo "check-crds: $CHART_CRDS differs from 'gantry crd'; run scripts/check-crds.sh --write" >&2
    exit 1
fi
echo "check-crds: $CHART_CRDS matches 'gantry crd'"
