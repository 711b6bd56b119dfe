#!/usr/bin/env bash
# coordd --config FILE: a one-member cluster started from a TOML file serves, a flag on the
# command line overrides the file, and a key that is not a flag (a typo) is refused with exit 2.
# Usage: e2e_coordd_config_test.sh BIN_DIR. Stops exactly the pid it started.
set -euo pipefail
bin="${1:?usage: $0 BIN_DIR}"
dir="$(mktemp -d /tmp/coord-e2e-config-XXXXXX)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -n 20 "$dir/coordd.log" >&2 2>/dev/null || true; exit 1; }

started=""
for attempt in 1 2 3 4 5; do
  base=$((20000 + RANDOM % 30000))
  cat > "$dir/n1.toml" <<TOML
# a member's settings, named like its flags
name = "n1"
data-dir = "$dir/n1"
listen-peer = "127.0.0.1:$base"
listen-client = "127.0.0.1:$((base + 1))"
initial-cluster = "n1=127.0.0.1:$base"
log-level = "info"
TOML
  # --log-level on the command line wins over the file's.
  "$bin/coordd" --config "$dir/n1.toml" --log-level warn >"$dir/coordd.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 50); do
    if "$bin/coordctl" --endpoints "127.0.0.1:$((base + 1))" --timeout 1s put /from-config yes >/dev/null 2>&1; then
      started=yes
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$started" ] && break
  kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""
  rm -rf "$dir/n1"
done
[ -n "$started" ] || fail "coordd started from --config never served"
out="$("$bin/coordctl" --endpoints "127.0.0.1:$((base + 1))" --json status)"
echo "$out" | grep -q '"name":"n1"' || fail "status does not show the name from the file: $out"
[ "$("$bin/coordctl" --endpoints "127.0.0.1:$((base + 1))" get /from-config)" = yes ] || fail "read back"
# The file said info; the command line said warn: no info lines.
if grep -q ' info ' "$dir/coordd.log"; then fail "--log-level on the command line did not override the file"; fi
kill -TERM "$pid"; wait "$pid" && status=0 || status=$?
pid=""
[ "$status" -eq 0 ] || fail "coordd exited with $status on SIGTERM"

# A misspelt key is refused, not ignored.
printf 'nmae = "n2"\n' >> "$dir/n1.toml"
set +e
"$bin/coordd" --config "$dir/n1.toml" >"$dir/typo.log" 2>&1
status=$?
set -e
[ "$status" -eq 2 ] || fail "a config file with an unknown key exited $status, not 2"
grep -q nmae "$dir/typo.log" || fail "the error does not name the unknown key: $(cat "$dir/typo.log")"
echo "PASS"
