#!/usr/bin/env bash
# The installed client package, end to end: `cmake --install` of the build into a temporary
# prefix, examples/election_lock configured and built against it alone (find_package(coord),
# target_link_libraries(... coord::client)), then run against a real 3-member cluster: three
# instances contend for leadership and a fenced lock and take turns with increasing tokens.
# Usage: e2e_install_test.sh BUILD_DIR SOURCE_DIR BIN_DIR [BUILD_TYPE [CXX_COMPILER]]
# The example is compiled with the build's own compiler: a sanitizer-built archive needs the
# same compiler's sanitizer runtime.
# Starts its own members on free-looking ports (retrying on a clash), in a temporary directory,
# and stops exactly the pids it started on exit.
set -euo pipefail

build="${1:?usage: $0 BUILD_DIR SOURCE_DIR BIN_DIR [BUILD_TYPE]}"
src="${2:?}"
bin="${3:?}"
build_type="${4:-Release}"
cxx_args=()
if [ -n "${5:-}" ]; then cxx_args=(-DCMAKE_CXX_COMPILER="$5"); fi
dir="$(mktemp -d /tmp/coord-e2e-install-XXXXXX)"
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for f in "$dir"/*.log "$dir"/*.out; do
    [ -f "$f" ] || continue
    echo "---- $(basename "$f") ----" >&2
    tail -n 30 "$f" >&2 || true
  done
  exit 1
}

# 1. Install, and build the example against the prefix only.
cmake --install "$build" --prefix "$dir/prefix" >"$dir/install.log" 2>&1 || fail "cmake --install"
[ -f "$dir/prefix/lib/cmake/coord/coordConfig.cmake" ] || fail "no coordConfig.cmake installed"
[ -f "$dir/prefix/include/coord/client/client.h" ] || fail "no client headers installed"
[ -x "$dir/prefix/bin/coordctl" ] || fail "no coordctl installed"
[ -x "$dir/prefix/bin/coordd" ] || fail "no coordd installed"
cmake -S "$src/examples/election_lock" -B "$dir/example" -DCMAKE_PREFIX_PATH="$dir/prefix" \
  -DCMAKE_BUILD_TYPE="$build_type" "${cxx_args[@]}" >"$dir/configure.log" 2>&1 || fail "configuring the example"
cmake --build "$dir/example" >"$dir/build.log" 2>&1 || fail "building the example"
example="$dir/example/election_lock"
[ -x "$example" ] || fail "the example was not built"

# 2. A cluster.
# shellcheck source=e2e_cluster_lib.sh
source "$(dirname "$0")/e2e_cluster_lib.sh"
start_cluster_or_fail

# 3. Two instances at once, then a third: each is elected, locks, passes the Guard and writes
# fenced, in turn.
mkdir -p "$dir/shared"
"$example" "$endpoints" alpha "$dir/shared" >"$dir/alpha.out" 2>&1 &
alpha=$!
pids+=("$alpha")
"$example" "$endpoints" beta "$dir/shared" >"$dir/beta.out" 2>&1 &
beta=$!
pids+=("$beta")
for pid in "$alpha" "$beta"; do
  for _ in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq 0 ] || fail "an example instance exited $rc"
done
"$example" "$endpoints" gamma "$dir/shared" >"$dir/gamma.out" 2>&1 || fail "the third instance failed"
for name in alpha beta gamma; do
  for line in "elected token=" "locked token=" "guard accepted" "fenced write revision=" "done"; do
    grep -q "^$name: $line" "$dir/$name.out" || fail "$name did not print '$line'"
  done
done
[ "$(wc -l <"$dir/shared/shared.txt")" -eq 3 ] || fail "shared.txt: $(cat "$dir/shared/shared.txt")"
tokens="$(sed 's/.*token=//' "$dir/shared/shared.txt" | tr '\n' ' ')"
read -r t1 t2 t3 <<<"$tokens"
[ "$t1" -lt "$t2" ] && [ "$t2" -lt "$t3" ] || fail "tokens do not increase: $tokens"
[ "$(tail -n 1 "$dir/shared/shared.txt")" = "gamma token=$t3" ] || fail "gamma was not last: $(cat "$dir/shared/shared.txt")"
out="$("$dir/prefix/bin/coordctl" --endpoints "$endpoints" get /example/last-writer)" || fail "installed coordctl get"
[ "$out" = "gamma" ] || fail "last writer is '$out'"

echo "install e2e: all checks passed"
