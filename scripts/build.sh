#!/usr/bin/env bash
# Configures and builds one flavour of coord with Ninja, installing dependencies first.
#   scripts/build.sh release   -> build/release  (Release)
#   scripts/build.sh asan      -> build/asan     (RelWithDebInfo, AddressSanitizer + UBSan)
# Binaries land in build/<flavour>/bin/.
set -euo pipefail
cd "$(dirname "$0")/.."

flavour="${1:-release}"
case "$flavour" in
  release) cmake_args=(-DCMAKE_BUILD_TYPE=Release -DCOORD_SANITIZE=OFF) ;;
  asan) cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOORD_SANITIZE=ON) ;;
  *) echo "usage: $0 release|asan" >&2; exit 2 ;;
esac
dir="build/$flavour"

bash scripts/install-deps.sh

# A directory configured earlier with another generator cannot be reused by Ninja.
if [ -f "$dir/CMakeCache.txt" ] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$dir/CMakeCache.txt"; then
  echo "removing $dir: configured with a different generator"
  rm -rf "$dir"
fi
cmake -S . -B "$dir" -G Ninja "${cmake_args[@]}"
cmake --build "$dir"
