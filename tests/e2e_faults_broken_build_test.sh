#!/usr/bin/env bash
# The fault harness must catch a deliberately broken coordd (linearizable reads answered from
# the member's own state). Whether a 30 s run sees a stale read depends on timing (a client may
# settle on the leader, whose local state is current), so up to three seeded schedules are
# tried; the test passes at the first that reports a violation and fails if none does.
# Usage: e2e_faults_broken_build_test.sh COORD_FAULTS COORDD_BUG. Exit 77: no network namespaces.
set -uo pipefail
faults="${1:?usage: $0 COORD_FAULTS COORDD_BUG}"
coordd="${2:?}"
for seed in 1 3 4; do
  out="$("$faults" --members 3 --seed "$seed" --duration 30s --prefix cftb --coordd "$coordd" 2>&1)"
  status=$?
  echo "$out" | tail -n 12
  if [ "$status" -eq 77 ]; then echo "SKIP: cannot create network namespaces"; exit 77; fi
  if echo "$out" | grep -q '^VIOLATION kv-linearizable'; then
    echo "PASS: seed $seed caught the broken build"
    exit 0
  fi
  echo "seed $seed did not catch it; next seed"
done
echo "FAIL: no schedule caught the broken build"
exit 1
