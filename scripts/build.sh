#!/usr/bin/env bash
# Configures and builds one flavour of coord with Ninja, installing dependencies first.
#   scripts/build.sh release   -> build/release  (Release)
#   scripts/build.sh asan      -> build/asan     (RelWithDebInfo, Clang, AddressSanitizer + UBSan,
#                                                 with the libFuzzer targets: -DCOORD_FUZZ=ON)
# The sanitizer build is Clang's so that it also builds fuzz/'s libFuzzer targets (CI runs them
# from it, scripts/fuzz.sh): one instrumented build instead of two. GCC builds the release.
# Binaries land in build/<flavour>/bin/.
set -euo pipefail
cd "$(dirname "$0")/.."

flavour="${1:-release}"
case "$flavour" in
  release) cmake_args=(-DCMAKE_BUILD_TYPE=Release -DCOORD_SANITIZE=OFF) ;;
  asan)
    cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOORD_FUZZ=ON -DCMAKE_C_COMPILER=clang
                -DCMAKE_CXX_COMPILER=clang++) ;;
  *) echo "usage: $0 release|asan" >&2; exit 2 ;;
esac
dir="build/$flavour"

if [ "$flavour" = asan ]; then bash scripts/install-deps.sh fuzz; else bash scripts/install-deps.sh; fi

# A directory configured earlier with another generator or compiler cannot be reused.
if [ -f "$dir/CMakeCache.txt" ]; then
  if ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$dir/CMakeCache.txt" ||
     { [ "$flavour" = asan ] && ! grep -q '^COORD_FUZZ:BOOL=ON$' "$dir/CMakeCache.txt"; }; then
    echo "removing $dir: configured with a different generator or compiler"
    rm -rf "$dir"
  fi
fi
cmake -S . -B "$dir" -G Ninja "${cmake_args[@]}"
cmake --build "$dir"
