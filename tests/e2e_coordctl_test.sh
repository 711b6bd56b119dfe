#!/usr/bin/env bash
# End-to-end test of coordctl against a real 3-member cluster: output, --json, exit codes and
# error codes on stderr. Usage: e2e_coordctl_test.sh BIN_DIR (holding coordd and coordctl).
# Starts its own members on random free-looking ports (retrying on a clash), in a temporary
# directory, and stops exactly the pids it started on exit.
set -euo pipefail

bin="${1:?usage: $0 BIN_DIR}"
dir="$(mktemp -d /tmp/coord-e2e-ctl-XXXXXX)"
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; kill -CONT "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for n in n1 n2 n3; do
    echo "---- $n ----" >&2
    tail -n 20 "$dir/$n.log" >&2 2>/dev/null || true
  done
  exit 1
}

# Waits for PID to exit, at most SECONDS, and returns its status; one still running then is
# killed and the test fails naming WHAT (a bare `wait` would hang the test until ctest's timeout).
reap() {
  local pid="$1" seconds="$2" what="$3"
  for _ in $(seq 1 $((seconds * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null
    fail "$what did not exit within $seconds s"
  fi
  wait "$pid"
}

# shellcheck source=e2e_cluster_lib.sh
source "$(dirname "$0")/e2e_cluster_lib.sh"
start_cluster_or_fail

ctl() { "$bin/coordctl" --endpoints "$endpoints" --timeout 10s "$@"; }

# Runs coordctl, expecting exit status $1 and stdout exactly $2.
expect() {
  local want_rc="$1" want_out="$2"
  shift 2
  local out rc=0
  out="$(ctl "$@" 2>"$dir/stderr")" || rc=$?
  [ "$rc" -eq "$want_rc" ] || fail "coordctl $*: exit $rc, wanted $want_rc (stderr: $(cat "$dir/stderr"))"
  [ "$out" = "$want_out" ] || fail "coordctl $*: printed '$out', wanted '$want_out'"
}
# Like expect, but checks that stderr contains $2.
expect_error() {
  local want_rc="$1" want_err="$2"
  shift 2
  local rc=0
  ctl "$@" >/dev/null 2>"$dir/stderr" || rc=$?
  [ "$rc" -eq "$want_rc" ] || fail "coordctl $*: exit $rc, wanted $want_rc"
  grep -qF -- "$want_err" "$dir/stderr" || fail "coordctl $*: stderr '$(cat "$dir/stderr")' lacks '$want_err'"
}

# A leader, as every member sees it.
for _ in $(seq 1 150); do
  if ctl status >"$dir/status" 2>&1 && grep -q " leader " "$dir/status"; then break; fi
  sleep 0.1
done
grep -q " leader " "$dir/status" || fail "no leader: $(cat "$dir/status")"

expect 0 "OK revision=1" put /a one
expect 0 "one" get /a
expect 0 "one" get /a --serializable
expect_error 1 "not-found (2)" get /missing
expect_error 1 "already-exists (3)" create /a again
expect 0 "/q/item-0000000000 revision=2" create --sequential --parents /q/item- first
expect 0 "/q/item-0000000001 revision=3" create --sequential /q/item- second
expect 0 $'item-0000000000\nitem-0000000001' ls /q
expect 0 "OK revision=4" cas /a two --expect-version 0
expect_error 1 "compare-failed (5)" cas /a three --expect-version 0
expect 0 "OK revision=5" cas /a three --expect-value two
expect_error 1 "not-empty (4)" delete /q
expect 0 "deleted 3 node(s) revision=6" delete --recursive /q

txn=$'# take the lock if it is free\ncompare missing /lock\nthen\ncreate /lock me\nelse\nget /lock\n'
out="$(printf '%s' "$txn" | ctl txn)" || fail "txn failed"
[ "$out" = $'then revision=7\ncreate /lock' ] || fail "txn printed '$out'"
out="$(printf '%s' "$txn" | ctl txn)" || fail "second txn failed"
[ "$out" = $'else revision=7\nget /lock = me' ] || fail "second txn printed '$out'"
rc=0
printf 'compare nonsense /x\n' | ctl txn >/dev/null 2>"$dir/stderr" || rc=$?
[ "$rc" -eq 2 ] && grep -q "line 1" "$dir/stderr" || fail "bad txn text: exit $rc"

json="$(ctl --json get /a)" || fail "--json get"
echo "$json" | grep -q '"value":"three"' || fail "--json get printed $json"
echo "$json" | grep -q '"version":2' || fail "--json get printed $json"
json="$(ctl stat /a --json)" || fail "stat --json"
echo "$json" | grep -q '"mod_revision":5' || fail "stat --json printed $json"
rc=0
ctl --json get /missing >/dev/null 2>"$dir/stderr" || rc=$?
[ "$rc" -eq 1 ] && grep -q '"code":2' "$dir/stderr" || fail "--json error: exit $rc, $(cat "$dir/stderr")"

# Leases. An unrenewed lease expires (no sooner than its TTL) and takes its key with it.
expect 0 "lease 1 granted ttl_ms=1500" lease grant 1.5s
expect 0 "/e1 revision=8" create /e1 x --lease 1
for _ in $(seq 1 100); do
  ctl get /e1 >/dev/null 2>&1 || break
  sleep 0.1
done
expect_error 1 "not-found (2)" get /e1
expect_error 1 "lease-not-found (15)" lease keepalive 1 --once
expect 0 '{"id":2,"ttl_ms":60000}' --json lease grant 60s
expect 0 "/e/a revision=10" create --parents /e/a x --lease 2
expect 0 "OK revision=11" put /e/b y --lease 2
expect_error 1 "lease-not-found (15)" put /e/c z --lease 99
expect_error 1 "no-children-for-ephemerals (17)" create /e/a/child z
expect 0 "lease 2 kept alive ttl_ms=60000 keepalives=1" lease keepalive 2 --once
expect 0 '{"id":2,"keepalives":2,"ttl_ms":60000}' --json lease keepalive 2 --once
out="$(ctl lease ttl 2)" || fail "lease ttl"
[[ "$(echo "$out" | head -1)" =~ ^lease\ 2\ ttl_ms=60000\ remaining_ms=[0-9]+\ keepalives=2\ keys=2$ ]] || fail "lease ttl printed '$out'"
[ "$(echo "$out" | tail -n +2)" = $'/e/a\n/e/b' ] || fail "lease ttl keys: '$out'"
json="$(ctl --json lease ttl 2)" || fail "--json lease ttl"
echo "$json" | grep -qF '"keys":["/e/a","/e/b"]' || fail "--json lease ttl printed $json"
echo "$json" | grep -qF '"keepalives":2' || fail "--json lease ttl printed $json"
# Followers answer lease ttl too (forwarded to the leader, whose clock counts down).
for ep in ${endpoints//,/ }; do
  "$bin/coordctl" --endpoints "$ep" lease ttl 2 >/dev/null || fail "lease ttl via $ep"
done
expect 0 '{"deleted":["/e/a","/e/b"],"id":2,"revision":12}' --json lease revoke 2
expect_error 1 "lease-not-found (15)" lease ttl 2
expect 0 "lease 3 granted ttl_ms=5000" lease grant 5
expect 0 "lease 3 revoked, deleted 0 key(s) revision=12" lease revoke 3

# Watches replay history from --rev, and stream live writes.
expect 0 $'created /e/a revision=10 value=x\ncreated /e/b revision=11 value=y\ndeleted /e/a revision=12\ndeleted /e/b revision=12' \
  watch /e --children --rev 10 --max-events 4
expect 0 $'created /e/a revision=10 value=x\ndeleted /e/a revision=12 prev=x' watch /e/a --rev 10 --prev --max-events 2
expect 0 $'created /e revision=10 value=\ncreated /e/a revision=10 value=x' watch /e --subtree --rev 10 --max-events 2
e1_created='{"node":{"children_version":0,"create_revision":8,"lease":1,"mod_revision":8,"num_children":0,"path":"/e1","value":"x","value_bytes":1,"version":0},"path":"/e1","revision":8,"type":"created"}'
expect 0 "$e1_created"$'\n''{"path":"/e1","revision":9,"type":"deleted"}' --json watch /e1 --rev 8 --max-events 2

# Started directly, not through the ctl function: $! must be coordctl's own pid.
"$bin/coordctl" --endpoints "$endpoints" watch /live --rev 13 --prev --max-events 2 >"$dir/watch.out" 2>&1 &
watch_pid=$!
pids+=("$watch_pid")
expect 0 "OK revision=13" put /live a
expect 0 "OK revision=14" put /live b
for _ in $(seq 1 100); do
  kill -0 "$watch_pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$watch_pid" 2>/dev/null && fail "watch did not end after 2 events: $(cat "$dir/watch.out")"
rc=0
reap "$watch_pid" 20 "the watch" || rc=$?
[ "$rc" -eq 0 ] || fail "watch exited $rc: $(cat "$dir/watch.out")"
[ "$(cat "$dir/watch.out")" = $'created /live revision=13 value=a\nupdated /live revision=14 value=b prev=a' ] ||
  fail "live watch printed '$(cat "$dir/watch.out")'"
# Interrupted, a watch exits 0.
"$bin/coordctl" --endpoints "$endpoints" watch /never >/dev/null 2>&1 &
watch_pid=$!
pids+=("$watch_pid")
sleep 0.5
kill -INT "$watch_pid"
rc=0
for _ in $(seq 1 50); do
  kill -0 "$watch_pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$watch_pid" 2>/dev/null; then
  kill -KILL "$watch_pid"
  fail "an interrupted watch did not exit"
fi
reap "$watch_pid" 20 "the watch" || rc=$?
[ "$rc" -eq 0 ] || fail "interrupted watch exited $rc"

# Reads at a past revision, then compaction.
expect 0 "a" get /live --rev 13
expect 0 "b" get /live --rev 14 --serializable
expect 0 "compacted to 10 revision=14" compact 10
expect_error 1 "compacted (7)" watch /e --children --rev 5
expect_error 1 "compacted (7)" get /live --rev 9
rc=0
ctl --json get /live --rev 9 >/dev/null 2>"$dir/stderr" || rc=$?
[ "$rc" -eq 1 ] && grep -qF '"compact_revision":10' "$dir/stderr" || fail "--json compacted: exit $rc, $(cat "$dir/stderr")"
expect 0 '{"compact_revision":12,"revision":14}' --json compact 12
expect_error 1 "compacted (7)" compact 11
expect_error 1 "future-revision (10)" compact 99

# A snapshot of the whole state, saved from the first member that answers.
out="$(ctl snapshot save "$dir/state.snap")" || fail "snapshot save"
[[ "$out" =~ ^snapshot\ saved\ $dir/state\.snap\ bytes=[0-9]+\ revision=14\ index=[0-9]+$ ]] || fail "snapshot save printed '$out'"
bytes="${out#*bytes=}"
bytes="${bytes%% *}"
[ "$(stat -c %s "$dir/state.snap")" -eq "$bytes" ] || fail "snapshot file is not $bytes bytes"
[ ! -e "$dir/state.snap.part" ] || fail "snapshot save left its .part file"
json="$(ctl --json snapshot save "$dir/state2.snap")" || fail "--json snapshot save"
echo "$json" | grep -qF '"revision":14' || fail "--json snapshot save printed $json"

members="$(ctl member list)" || fail "member list"
[ "$(echo "$members" | grep -c voter)" -eq 3 ] || fail "member list printed $members"
[ "$(echo "$members" | grep -c '\*')" -eq 1 ] || fail "member list shows no single leader: $members"

# Every member, asked on its own, serves linearizable reads.
for ep in ${endpoints//,/ }; do
  out="$("$bin/coordctl" --endpoints "$ep" get /lock)" || fail "get via $ep"
  [ "$out" = "me" ] || fail "get via $ep printed $out"
done

# Locks: the command runs holding the lock, with its fencing token; the lock is released when
# it exits, and coordctl exits with its status.
expect 0 "token=15 path=/locks/l1" lock l1 -- sh -c 'echo token=$COORD_FENCING_TOKEN path=$COORD_LOCK_PATH'
expect 7 "" lock l1 -- sh -c 'exit 7'
out="$(ctl lock /custom/l1 -- sh -c 'echo $COORD_LOCK_KEY $COORD_FENCING_TOKEN' 2>"$dir/stderr")" || fail "lock /custom/l1"
[[ "$out" =~ ^/custom/l1/[0-9]+_1_1_0000000000\ 19$ ]] || fail "lock /custom/l1 printed '$out'"
grep -qF "holding /custom/l1 token=19" "$dir/stderr" || fail "lock stderr: $(cat "$dir/stderr")"
expect 0 "" ls /locks/l1
expect_error 2 "command" lock l1
expect_error 2 "take durations" lock l1 --ttl nonsense -- true
rc=0
ctl lock l1 -- /nonexistent/command >/dev/null 2>"$dir/stderr" || rc=$?
[ "$rc" -eq 127 ] && grep -q "cannot run /nonexistent/command" "$dir/stderr" || fail "lock of a missing command: exit $rc"

# Contention: a second locker waits for the first; SIGTERM to the first reaches its command,
# which exits, releasing the lock; the second runs with a higher token.
wait_for_line() {  # FILE TEXT: true once FILE contains TEXT (within 10 s)
  for _ in $(seq 1 100); do
    grep -qF -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
"$bin/coordctl" --endpoints "$endpoints" lock l2 -- sleep 30 >"$dir/first.out" 2>&1 &
first_pid=$!
pids+=("$first_pid")
wait_for_line "$dir/first.out" "holding /locks/l2 token=" || fail "first locker: $(cat "$dir/first.out")"
first_token="$(sed -n 's/.*holding \/locks\/l2 token=\([0-9]*\).*/\1/p' "$dir/first.out")"
"$bin/coordctl" --endpoints "$endpoints" lock l2 -- sh -c 'echo second=$COORD_FENCING_TOKEN' >"$dir/second.out" 2>&1 &
second_pid=$!
pids+=("$second_pid")
sleep 0.5
grep -q "second=" "$dir/second.out" && fail "the second locker ran while the first held the lock"
kill -TERM "$first_pid"
rc=0
reap "$first_pid" 20 "the first locker: $(cat "$dir/first.out")" || rc=$?
[ "$rc" -eq 143 ] || fail "first locker exited $rc, wanted 143 (its command got SIGTERM): $(cat "$dir/first.out")"
wait_for_line "$dir/second.out" "second=" || fail "second locker: $(cat "$dir/second.out")"
reap "$second_pid" 20 "the second locker: $(cat "$dir/second.out")" || fail "second locker exited non-zero: $(cat "$dir/second.out")"
second_token="$(sed -n 's/^second=//p' "$dir/second.out")"
[ "$second_token" -gt "$first_token" ] || fail "tokens: first $first_token, second $second_token"

# A lost lock stops the command: coordctl paused past its lease (SIGSTOP) finds its session gone
# when it wakes, sends SIGTERM to the command, and exits 4.
"$bin/coordctl" --endpoints "$endpoints" lock l3 --ttl 1s --kill-after 2s -- \
  sh -c 'trap "echo stopped; exit 0" TERM; while :; do sleep 0.1; done' >"$dir/lost.out" 2>&1 &
lost_pid=$!
pids+=("$lost_pid")
wait_for_line "$dir/lost.out" "holding /locks/l3" || fail "l3 locker: $(cat "$dir/lost.out")"
kill -STOP "$lost_pid"
sleep 3
expect 0 "" ls /locks/l3  # its key went with the lease
kill -CONT "$lost_pid"
rc=0
for _ in $(seq 1 100); do
  kill -0 "$lost_pid" 2>/dev/null || break
  sleep 0.1
done
reap "$lost_pid" 20 "the locker that lost its lock: $(cat "$dir/lost.out")" || rc=$?
[ "$rc" -eq 4 ] || fail "a lost lock: exit $rc, wanted 4: $(cat "$dir/lost.out")"
grep -qF "lost the lock /locks/l3" "$dir/lost.out" || fail "lost lock not reported: $(cat "$dir/lost.out")"
grep -qx "stopped" "$dir/lost.out" || fail "the command was not stopped: $(cat "$dir/lost.out")"

# Elections: a candidate leads until interrupted, then resigns; the next one leads with a higher
# token; observers see who leads.
expect 0 "no leader /elections/e1" elect --observe e1 --max-events 1
"$bin/coordctl" --endpoints "$endpoints" elect e1 alpha >"$dir/alpha.out" 2>&1 &
alpha_pid=$!
pids+=("$alpha_pid")
wait_for_line "$dir/alpha.out" "elected /elections/e1 value=alpha" || fail "alpha: $(cat "$dir/alpha.out")"
alpha_line="$(head -n 1 "$dir/alpha.out")"
[[ "$alpha_line" =~ ^elected\ /elections/e1\ value=alpha\ token=([0-9]+)\ key=(/elections/e1/[0-9_]+)$ ]] ||
  fail "alpha printed '$alpha_line'"
alpha_token="${BASH_REMATCH[1]}"
alpha_key="${BASH_REMATCH[2]}"
expect 0 "leader /elections/e1 value=alpha token=$alpha_token key=$alpha_key" elect --observe e1 --max-events 1
json="$(ctl --json elect --observe e1 --max-events 1)" || fail "--json elect --observe"
echo "$json" | grep -qF "\"token\":$alpha_token" && echo "$json" | grep -qF '"value":"alpha"' ||
  fail "--json elect --observe printed $json"
"$bin/coordctl" --endpoints "$endpoints" elect e1 beta >"$dir/beta.out" 2>&1 &
beta_pid=$!
pids+=("$beta_pid")
"$bin/coordctl" --endpoints "$endpoints" elect --observe e1 --max-events 2 >"$dir/observe.out" 2>&1 &
observe_pid=$!
pids+=("$observe_pid")
wait_for_line "$dir/observe.out" "value=alpha" || fail "observer: $(cat "$dir/observe.out")"
sleep 0.3
grep -q "elected" "$dir/beta.out" && fail "beta was elected while alpha led"
kill -INT "$alpha_pid"
rc=0
reap "$alpha_pid" 20 "alpha: $(cat "$dir/alpha.out")" || rc=$?
[ "$rc" -eq 0 ] || fail "alpha exited $rc: $(cat "$dir/alpha.out")"
[ "$(tail -n 1 "$dir/alpha.out")" = "resigned /elections/e1" ] || fail "alpha printed '$(cat "$dir/alpha.out")'"
wait_for_line "$dir/beta.out" "elected /elections/e1 value=beta" || fail "beta: $(cat "$dir/beta.out")"
beta_token="$(sed -n 's/^elected .* token=\([0-9]*\) .*/\1/p' "$dir/beta.out")"
[ "$beta_token" -gt "$alpha_token" ] || fail "tokens: alpha $alpha_token, beta $beta_token"
rc=0
reap "$observe_pid" 20 "the observer: $(cat "$dir/observe.out")" || rc=$?
[ "$rc" -eq 0 ] || fail "observer exited $rc"
[ "$(sed -n 2p "$dir/observe.out")" = "$(sed -n 's/^elected/leader/p' "$dir/beta.out")" ] ||
  fail "observer printed '$(cat "$dir/observe.out")'"
kill -TERM "$beta_pid"
rc=0
reap "$beta_pid" 20 "beta: $(cat "$dir/beta.out")" || rc=$?
[ "$rc" -eq 0 ] && [ "$(tail -n 1 "$dir/beta.out")" = "resigned /elections/e1" ] || fail "beta: exit $rc, $(cat "$dir/beta.out")"
expect 0 "no leader /elections/e1" elect --observe e1 --max-events 1
expect_error 2 "elect needs NAME VALUE" elect e1

# Membership: add a learner (never started here: the cluster keeps its quorum of three), promote
# it, remove it; goldens of the human and --json output, and the stable error codes.
token="$(ctl --json status | grep -o '"cluster":"[^"]*"' | head -n 1 | sed 's/"cluster":"\(.*\)"/\1/')"
[ -n "$token" ] || fail "no cluster token in status --json"
first_port="${endpoints%%,*}"
first_port="${first_port##*:}"
n4_peer="127.0.0.1:$((first_port + 40))"
n5_peer="127.0.0.1:$((first_port + 41))"
# net::member_id_for_name: FNV-1a 64 of "coord-member/NAME" with the top bit set. Recomputed
# here with bash's wrapping 64-bit arithmetic, so the ids are checked against a second
# implementation.
member_id() {
  local text="coord-member/$1" h=-3750763034362895579 k c  # 0xcbf29ce484222325 as signed
  for ((k = 0; k < ${#text}; k++)); do
    printf -v c '%d' "'${text:k:1}"
    h=$(((h ^ c) * 1099511628211))
  done
  printf '%u' $((h | (1 << 63)))
}
n4_id="$(member_id n4)"
[ "$n4_id" = 10530330170123407794 ] || fail "member_id n4 = $n4_id"
peers="$(ctl --json member list | grep -o '"name":"n[0-9]","peer_address":"[^"]*"' |
  sed 's/"name":"\(n[0-9]\)","peer_address":"\(.*\)"/\1=\2/' | paste -sd, -)"
expect 0 "added member n4 id=$n4_id as learner to cluster $token
start it with: coordd --name n4 --listen-peer $n4_peer --initial-cluster-state existing --cluster-token $token --initial-cluster $peers,n4=$n4_peer --data-dir DIR --listen-client HOST:PORT" \
  member add n4 --peer-url "$n4_peer" --learner
expect_error 1 "member-exists (104)" member add n4 --peer-url "$n5_peer"
n1_peer="${peers%%,*}"
expect_error 1 "member-exists (104)" member add n5 --peer-url "${n1_peer#n1=}"
expect_error 1 "invalid-request (8)" member add 'bad/name' --peer-url "$n5_peer"
expect_error 1 "unknown-member (103)" member promote nobody
expect_error 1 "unknown-member (103)" member remove nobody
expect_error 1 "not-learner (105)" member promote n1
rc=0
ctl --json member promote nobody >/dev/null 2>"$dir/stderr" || rc=$?
[ "$rc" -eq 1 ] && grep -qF '"code":103' "$dir/stderr" && grep -qF '"error":"unknown-member"' "$dir/stderr" ||
  fail "--json member error: exit $rc, $(cat "$dir/stderr")"
# member list, human and --json, with the learner.
leader_name="$(ctl --json member list | grep -o '"leader":true,"learner":false,"name":"n[0-9]"' | sed 's/.*"name":"\(n[0-9]\)"/\1/')"
[ -n "$leader_name" ] || fail "member list --json shows no leader"
want="$(printf '%20s %-10s %-22s %-22s %-8s %s\n' ID NAME PEER CLIENT ROLE LEADER)"
want_json="["
i=0
for ep in ${endpoints//,/ }; do
  i=$((i + 1))
  peer="$(echo "$peers" | tr , '\n' | sed -n "s/^n$i=//p")"
  star=""
  is_leader=false
  if [ "n$i" = "$leader_name" ]; then star="*"; is_leader=true; fi
  want+=$'\n'"$(printf '%20s %-10s %-22s %-22s %-8s %s' "$i" "n$i" "$peer" "$ep" voter "$star")"
  want_json+="{\"client_address\":\"$ep\",\"id\":$i,\"leader\":$is_leader,\"learner\":false,\"name\":\"n$i\",\"peer_address\":\"$peer\",\"voter\":true},"
done
want+=$'\n'"$(printf '%20s %-10s %-22s %-22s %-8s %s' "$n4_id" n4 "$n4_peer" "?" learner "")"
want_json+="{\"client_address\":\"\",\"id\":$n4_id,\"leader\":false,\"learner\":true,\"name\":\"n4\",\"peer_address\":\"$n4_peer\",\"voter\":false}]"
expect 0 "$want" member list
expect 0 "$want_json" --json member list
expect 0 "promoted member n4 id=$n4_id" member promote n4
expect 0 "removed member n4 id=$n4_id" member remove n4
n5_id="$(member_id n5)"
expect 0 "{\"client_address\":\"\",\"cluster\":\"$token\",\"coordd_flags\":\"--name n5 --listen-peer $n5_peer --initial-cluster-state existing --cluster-token $token --initial-cluster $peers,n5=$n5_peer\",\"id\":$n5_id,\"initial_cluster\":\"$peers,n5=$n5_peer\",\"leader\":false,\"learner\":true,\"name\":\"n5\",\"peer_address\":\"$n5_peer\",\"voter\":false}" \
  --json member add n5 --peer-url "$n5_peer" --learner
expect 0 "{\"client_address\":\"\",\"cluster\":\"$token\",\"id\":$n5_id,\"leader\":false,\"learner\":false,\"name\":\"n5\",\"peer_address\":\"$n5_peer\",\"removed\":true,\"voter\":false}" \
  --json member remove n5
[ "$(ctl member list | grep -c voter)" -eq 3 ] || fail "after the changes, member list printed $(ctl member list)"

# Usage errors and an unreachable cluster.
expect_error 2 "expect" cas /a x
rc=0
ctl frobnicate >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "unknown command: exit $rc"
rc=0
"$bin/coordctl" --endpoints 127.0.0.1:1 --timeout 300ms get /a >/dev/null 2>"$dir/stderr" || rc=$?
[ "$rc" -eq 3 ] && grep -q "unavailable (101)" "$dir/stderr" || fail "unreachable: exit $rc, $(cat "$dir/stderr")"
rc=0
COORD_ENDPOINTS="${endpoints}" "$bin/coordctl" get /a >/dev/null || rc=$?
[ "$rc" -eq 0 ] || fail "COORD_ENDPOINTS not used: exit $rc"

echo "coordctl e2e: all checks passed"
