#!/usr/bin/env bash
# Builds the libFuzzer targets with Clang (build/fuzz, -DCOORD_FUZZ=ON) and runs each one for
# SECONDS (default 60), one at a time, from a copy of its checked-in corpus (fuzz/corpus/<target>)
# plus its regression inputs (fuzz/regressions/<target>). Prints, per target, the executions and
# whether it crashed, and exits non-zero if any did; a crash's input is kept under
# build/fuzz/artifacts/<target>/ (see fuzz/README.md for what to do with it).
#   scripts/fuzz.sh [SECONDS]
#   COORD_FUZZ_TARGETS="fuzz_path fuzz_txn_text" scripts/fuzz.sh 30   # a subset
#   COORD_FUZZ_JOBS=2        targets run two at a time (one core each)
#   COORD_FUZZ_BUILD_DIR=DIR use (and build the targets in) another Clang build configured with
#                            -DCOORD_FUZZ=ON, e.g. build/asan, which scripts/build.sh asan makes
#                            that way so CI compiles the fuzzers without a third build
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
case "$seconds" in
  ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
read -r -a targets <<< "${COORD_FUZZ_TARGETS:-fuzz_frame_client fuzz_frame_peer fuzz_path fuzz_raft_step fuzz_snapshot_restore fuzz_txn_text}"
dir="${COORD_FUZZ_BUILD_DIR:-build/fuzz}"
jobs="${COORD_FUZZ_JOBS:-1}"
started=$(date +%s)

bash scripts/install-deps.sh fuzz

# A directory configured earlier with another generator cannot be reused by Ninja.
if [ -f "$dir/CMakeCache.txt" ] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$dir/CMakeCache.txt"; then
  echo "removing $dir: configured with a different generator"
  rm -rf "$dir"
fi
if [ -z "${COORD_FUZZ_BUILD_DIR:-}" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOORD_FUZZ=ON
elif ! grep -q '^COORD_FUZZ:BOOL=ON$' "$dir/CMakeCache.txt" 2>/dev/null; then
  echo "$dir is not a build configured with -DCOORD_FUZZ=ON" >&2
  exit 2
fi
cmake --build "$dir" --target "${targets[@]}"

# Sanitizer reports must stop the run and say where; leaks count as crashes too.
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="abort_on_error=0:detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Runs one target; its summary line goes to $work/<target>.summary, its log to $work/<target>.log.
run_target() {
  local target="$1" corpus="$work/$1" log="$work/$1.log" status execs
  mkdir -p "$corpus" "$work/artifacts-$target"
  cp fuzz/corpus/"$target"/* "$corpus"/
  local inputs=("$corpus")
  if [ -d "fuzz/regressions/$target" ]; then inputs+=("fuzz/regressions/$target"); fi
  set +e
  "$dir/bin/$target" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2560 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts-$target/" "${inputs[@]}" > "$log" 2>&1
  status=$?
  set -e
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  execs="${execs:-?}"
  if [ "$status" -eq 0 ]; then
    printf '%-22s %12s executions  ok\n' "$target" "$execs" > "$work/$target.summary"
  else
    mkdir -p "$dir/artifacts/$target"
    cp "$work/artifacts-$target"/* "$dir/artifacts/$target/" 2>/dev/null || true
    printf '%-22s %12s executions  CRASHED (exit %d; inputs in %s/artifacts/%s/)\n' \
      "$target" "$execs" "$status" "$dir" "$target" > "$work/$target.summary"
  fi
}

# Batches of $jobs targets at a time; each batch's logs are printed in target order.
failed=0
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
  batch=("${targets[@]:i:jobs}")
  for target in "${batch[@]}"; do run_target "$target" & done
  wait
  for target in "${batch[@]}"; do
    printf '\n==== %s: %s s ====\n' "$target" "$seconds"
    grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|Done )' "$work/$target.log" || true
    if grep -q CRASHED "$work/$target.summary"; then
      failed=1
      tail -n 60 "$work/$target.log"
    fi
  done
done

printf '\n==== fuzz summary: %s s per target, %s s wall ====\n' "$seconds" "$(( $(date +%s) - started ))"
for target in "${targets[@]}"; do cat "$work/$target.summary"; done
exit "$failed"
