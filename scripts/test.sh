#!/usr/bin/env bash
# Builds coord twice (Release with GCC, and ASan+UBSan with Clang, which also builds the libFuzzer
# targets), runs the unit tests in both, the simulation sweeps, and each fuzz target for
# COORD_FUZZ_SECONDS (default 60) from its checked-in corpus. Installs its own dependencies. Stops at the first failure and exits non-zero.
# The last line of output is a test summary: the sim's "N passed, M failed", or ctest's summary
# line when unit tests fail.
#   COORD_SIM_SEEDS          seeds for the Release sweep (default 300)
#   COORD_SIM_ASAN_SEEDS     seeds for the sanitizer sweep (default 40)
#   COORD_SIM_KV_SEEDS       seeds for each Release sweep of the kv and watch workloads (default 300)
#   COORD_SIM_KV_ASAN_SEEDS  seeds for each sanitizer sweep of the kv and watch workloads (default 16)
#   COORD_SIM_LOCKS_SEEDS       seeds for the Release sweep of the locks workload (default 200)
#   COORD_SIM_LOCKS_ASAN_SEEDS  seeds for its sanitizer sweep (default 16)
#   COORD_FUZZ_SECONDS          seconds per fuzz target, two targets at a time (default 60; 0 skips)
# The kv and watch sweeps run on two threads (about 0.3 CPU-s a seed in Release, 2.5 under the
# sanitizers): together about 2.5 minutes on two cores with the defaults. The locks sweep costs
# about 0.1 CPU-s a seed in Release; it is followed by a short --no-fencing run that must fail
# with invariant=mutual-exclusion (the simulator shows why the Guard is there).
set -euo pipefail
cd "$(dirname "$0")/.."

# Each section header carries the seconds since the start, so a slow CI run shows where it went.
started_at=$SECONDS
section() { printf '\n==== [%4ds] %s ====\n' "$((SECONDS - started_at))" "$*"; }

# Runs ctest in one build dir; on failure repeats ctest's summary line last so CI sees it.
unit_tests() {
  local dir="$1" log
  log="$(mktemp)"
  set +e
  ctest --test-dir "$dir" --output-on-failure --no-tests=error -j2 2>&1 | tee "$log"
  local status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -ne 0 ]; then
    section "FAILED: unit tests in $dir"
    grep -E 'tests passed, [0-9]+ tests? failed out of' "$log" | tail -n 1 || echo "ctest exited with $status"
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
}

# Sanitizer failures must stop the run and say where.
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="abort_on_error=0:detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

section "dependencies"
bash scripts/install-deps.sh

section "build: release"
bash scripts/build.sh release
section "unit tests: release"
unit_tests build/release

section "build: asan+ubsan"
bash scripts/build.sh asan
section "unit tests: asan+ubsan"
unit_tests build/asan

# The coord-sim summary ("N passed, M failed") is its last line, and the release sweep runs last,
# so it closes the output.
asan_seeds="${COORD_SIM_ASAN_SEEDS:-40}"
section "simulation: asan+ubsan, seeds 1..$asan_seeds"
build/asan/bin/coord-sim --seeds "1..$asan_seeds" --faults all --jobs 2

kv_asan_seeds="${COORD_SIM_KV_ASAN_SEEDS:-16}"
for workload in kv watch; do
  section "simulation: asan+ubsan, workload $workload, seeds 1..$kv_asan_seeds"
  build/asan/bin/coord-sim --workload "$workload" --seeds "1..$kv_asan_seeds" --faults all --jobs 2
done

locks_asan_seeds="${COORD_SIM_LOCKS_ASAN_SEEDS:-16}"
section "simulation: asan+ubsan, workload locks, seeds 1..$locks_asan_seeds"
build/asan/bin/coord-sim --workload locks --seeds "1..$locks_asan_seeds" --faults all --jobs 2

fuzz_seconds="${COORD_FUZZ_SECONDS:-60}"
if [ "$fuzz_seconds" -gt 0 ]; then
  section "fuzzing: each target $fuzz_seconds s from its corpus (build/asan)"
  COORD_FUZZ_BUILD_DIR=build/asan COORD_FUZZ_JOBS=2 bash scripts/fuzz.sh "$fuzz_seconds"
fi

kv_seeds="${COORD_SIM_KV_SEEDS:-300}"
for workload in kv watch; do
  section "simulation: release, workload $workload, seeds 1..$kv_seeds"
  build/release/bin/coord-sim --workload "$workload" --seeds "1..$kv_seeds" --faults all --jobs 2
done

locks_seeds="${COORD_SIM_LOCKS_SEEDS:-200}"
section "simulation: release, workload locks, seeds 1..$locks_seeds"
build/release/bin/coord-sim --workload locks --seeds "1..$locks_seeds" --faults all --jobs 2

# Without the Guard the same clients must break mutual exclusion: if they don't, the workload
# no longer produces the scenario fencing is for.
section "simulation: release, workload locks without fencing, seeds 1..20 (must fail)"
nofence_log="$(mktemp)"
set +e
build/release/bin/coord-sim --workload locks --no-fencing --seeds 1..20 --faults all --jobs 2 >"$nofence_log"
set -e
nofence_caught="$(grep -c '^VIOLATION seed=[0-9]* invariant=mutual-exclusion$' "$nofence_log" || true)"
rm -f "$nofence_log"
if [ "$nofence_caught" -eq 0 ]; then
  echo "FAILED: --no-fencing broke mutual exclusion on none of seeds 1..20"
  exit 1
fi
echo "--no-fencing: mutual exclusion broken on $nofence_caught of 20 seeds, as it must be"

release_seeds="${COORD_SIM_SEEDS:-300}"
section "simulation: release, seeds 1..$release_seeds"
build/release/bin/coord-sim --seeds "1..$release_seeds" --faults all --jobs 2
