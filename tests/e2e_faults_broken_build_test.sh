#!/usr/bin/env bash
# The fault harness must fail when the product is broken. Two deliberate breaks:
#   local-reads  a coordd built with COORD_NET_BUG_LOCAL_READS (linearizable reads answered from
#                the member's own state), with every client worker pinned to one member, so the
#                member a partition cuts off keeps being read from: `VIOLATION kv-linearizable`;
#   no-fencing   the lock clients' resource accepting every write, tokens unchecked (holders
#                stop themselves past their lease): `VIOLATION mutual-exclusion`.
# Whether one run shows the break depends on its schedule and timing, so up to three seeds are
# tried; the check passes at the first run that reports the violation and fails if none does.
# Usage: e2e_faults_broken_build_test.sh local-reads|no-fencing COORD_FAULTS [COORDD_BUG]
# Exit 77: this machine cannot create network namespaces.
set -uo pipefail
mode="${1:?usage: $0 local-reads|no-fencing COORD_FAULTS [COORDD_BUG]}"
faults="${2:?}"
case "$mode" in
  local-reads)
    args=(--coordd "${3:?local-reads needs the broken coordd}" --pin-workers --lockers 0 --watchers 0 --duration 30s --prefix cftb)
    expect='^VIOLATION kv-linearizable' ;;
  no-fencing)
    args=(--no-fencing --duration 40s --prefix cftf)
    expect='^VIOLATION mutual-exclusion' ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
for seed in 1 2 3; do
  out="$("$faults" --members 3 --seed "$seed" "${args[@]}" 2>&1)"
  status=$?
  grep -v '^VIOLATION' <<<"$out" | tail -n 12
  grep '^VIOLATION' <<<"$out" | head -n 3 || true
  if [ "$status" -eq 77 ]; then echo "SKIP: cannot create network namespaces"; exit 77; fi
  if grep -q "$expect" <<<"$out"; then
    echo "PASS: seed $seed caught the break ($mode)"
    exit 0
  fi
  echo "seed $seed did not catch it (exit $status); next seed"
done
echo "FAIL: no schedule caught the break ($mode)"
exit 1
