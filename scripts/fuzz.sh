#!/usr/bin/env bash
# Builds the libFuzzer targets with Clang (build/fuzz, -DCOORD_FUZZ=ON) and runs each one for
# SECONDS (default 60), one at a time, from a copy of its checked-in corpus (fuzz/corpus/<target>)
# plus its regression inputs (fuzz/regressions/<target>). Prints, per target, the executions and
# whether it crashed, and exits non-zero if any did; a crash's input is kept under
# build/fuzz/artifacts/<target>/ (see fuzz/README.md for what to do with it).
#   scripts/fuzz.sh [SECONDS]
#   COORD_FUZZ_TARGETS="fuzz_path fuzz_txn_text" scripts/fuzz.sh 30   # a subset
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
case "$seconds" in
  ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
read -r -a targets <<< "${COORD_FUZZ_TARGETS:-fuzz_frame_client fuzz_frame_peer fuzz_path fuzz_raft_step fuzz_snapshot_restore fuzz_txn_text}"
dir=build/fuzz
started=$(date +%s)

bash scripts/install-deps.sh fuzz

# A directory configured earlier with another generator cannot be reused by Ninja.
if [ -f "$dir/CMakeCache.txt" ] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$dir/CMakeCache.txt"; then
  echo "removing $dir: configured with a different generator"
  rm -rf "$dir"
fi
CC=clang CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOORD_FUZZ=ON
cmake --build "$dir" --target "${targets[@]}"

# Sanitizer reports must stop the run and say where; leaks count as crashes too.
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="abort_on_error=0:detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
summary=()
failed=0
for target in "${targets[@]}"; do
  printf '\n==== %s: %s s ====\n' "$target" "$seconds"
  corpus="$work/$target"
  mkdir -p "$corpus" "$work/artifacts-$target"
  cp fuzz/corpus/"$target"/* "$corpus"/
  inputs=("$corpus")
  if [ -d "fuzz/regressions/$target" ]; then inputs+=("fuzz/regressions/$target"); fi
  log="$work/$target.log"
  set +e
  "$dir/bin/$target" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2560 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts-$target/" "${inputs[@]}" > "$log" 2>&1
  status=$?
  set -e
  grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|Done )' "$log" || true
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  execs="${execs:-?}"
  if [ "$status" -eq 0 ]; then
    summary+=("$(printf '%-22s %12s executions  ok' "$target" "$execs")")
  else
    failed=1
    mkdir -p "$dir/artifacts/$target"
    cp "$work/artifacts-$target"/* "$dir/artifacts/$target/" 2>/dev/null || true
    tail -n 60 "$log"
    summary+=("$(printf '%-22s %12s executions  CRASHED (exit %d; inputs in %s/artifacts/%s/)' \
      "$target" "$execs" "$status" "$dir" "$target")")
  fi
done

printf '\n==== fuzz summary: %s s per target, %s s wall ====\n' "$seconds" "$(( $(date +%s) - started ))"
printf '%s\n' "${summary[@]}"
exit "$failed"
