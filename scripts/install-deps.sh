#!/usr/bin/env bash
# Installs the Debian packages coord builds and tests with; does nothing when all are present.
#   scripts/install-deps.sh [fuzz]    fuzz: also Clang and libFuzzer (scripts/fuzz.sh)
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config
  libuv1-dev libflatbuffers-dev flatbuffers-compiler liblmdb-dev
  libfmt-dev doctest-dev libcli11-dev libspdlog-dev nlohmann-json3-dev
  prometheus-cpp-dev
  chromium  # renders coord-sim --timeline pages in tests/sim_timeline_chromium_test.sh
)
if [ "${1:-}" = fuzz ]; then packages+=(clang libclang-rt-dev); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
