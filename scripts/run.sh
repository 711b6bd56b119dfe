#!/usr/bin/env bash
# Runs the product as far as it exists: builds Release (installing dependencies first) and runs
# the deterministic simulator on a default scenario, three replicas under every fault family,
# printing the last events of the run and its verdict. Extra arguments go to coord-sim.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh release
trace="$(mktemp)"
trap 'rm -f "$trace"' EXIT
build/release/bin/coord-sim --seed 1 --faults all --trace "$trace" "$@" || status=$?
echo "---- the last 15 of $(wc -l <"$trace") trace lines (virtual time, node, event) ----"
tail -n 15 "$trace"
exit "${status:-0}"
