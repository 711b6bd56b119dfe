#!/usr/bin/env bash
# Compares coord with etcd on this machine, workload by workload, and prints one table
# (README.md, "Performance").
#
#   scripts/compare.sh [--runs N]
#
# Installs what it needs (etcd, and gRPC and protobuf for coord-bench's etcd target; scripts/test.sh
# never installs these) and builds coordd, coord-bench and coord-fsync-probe in build/release.
# Then N times, for coord and then etcd: measures this disk's fdatasync latency (row 0), starts a
# 3-member cluster (coordd, or Debian's etcd-server; both with their default settings, fsync on)
# on free 127.0.0.1 ports with its data in a temporary folder, runs workloads 1-6 with the same
# coord-bench flags, stops it; starts a fresh one, loads 1,000,000 keys, runs workload 2 again,
# reads each member's resident memory and data size, restarts the members and times them back
# to serving (workload 7). Prints the medians over the runs: workload | coord | etcd |
# coord/etcd. Everything it started is stopped, and the temporary folder removed, when it ends
# (or is interrupted).
#
# Environment:
#   COORD_COMPARE_RUNS       repetitions, like --runs (default 1)
#   COORD_COMPARE_DURATION   seconds per workload run (default 5)
#   COORD_COMPARE_LOAD_KEYS  keys loaded for the memory, disk and restart rows (default 1000000)
#   COORD_COMPARE_LOAD_TIMEOUT  seconds the load of those keys may take (default 300)
#   COORD_COMPARE_WATCHERS   watchers in the watch fan-out row (default 10000)
#   COORD_COMPARE_SYSTEMS    which to run (default "coord etcd"; "coord" alone for a quick look)
#   COORD_COMPARE_COORDD_ARGS, COORD_COMPARE_ETCD_ARGS
#                            extra flags for every coordd / etcd (default: none; both run with
#                            their defaults)
#   COORD_COMPARE_BUILD_DIR  where to build (default build/release)
#   COORD_COMPARE_KEEP       set: keep the temporary folder (data and logs) for a look afterwards
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${COORD_COMPARE_RUNS:-1}"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="${2:?--runs needs a number}"; shift 2 ;;
    --runs=*) runs="${1#--runs=}"; shift ;;
    -h|--help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--runs N]" >&2; exit 2 ;;
  esac
done
case "$runs" in ''|*[!0-9]*|0) echo "--runs must be a positive number" >&2; exit 2 ;; esac
duration="${COORD_COMPARE_DURATION:-5}"
load_keys="${COORD_COMPARE_LOAD_KEYS:-1000000}"
watchers="${COORD_COMPARE_WATCHERS:-10000}"
load_timeout="${COORD_COMPARE_LOAD_TIMEOUT:-300}"
systems="${COORD_COMPARE_SYSTEMS:-coord etcd}"

section() { printf '\n==== %s ====\n' "$*" >&2; }
log() { printf '%s\n' "$*" >&2; }

# ---- packages and build ------------------------------------------------------------------------
section "dependencies"
bash scripts/install-deps.sh
compare_packages=(etcd-server etcd-client libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc jq)
missing=()
for p in "${compare_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >&2
fi
# Debian's etcd-server may start a system etcd on 2379/2380; ours use other ports and never touch it.

section "build: release (coordd, coord-bench with its etcd target, coord-fsync-probe)"
dir="${COORD_COMPARE_BUILD_DIR:-build/release}"
# The same configuration as scripts/build.sh release (Ninja, unless the folder was configured
# earlier with another generator); only the three programs are built.
generator=(-G Ninja)
if [ -f "$dir/CMakeCache.txt" ]; then generator=(); fi
cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCOORD_SANITIZE=OFF -DCOORD_BENCH_ETCD=ON >&2
cmake --build "$dir" --target coordd coord-bench coord-fsync-probe >&2
bin="$dir/bin"

# ---- processes, ports, cleanup -----------------------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/coord-compare-XXXXXX")"
pids=()
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$bench_pid" ]; then stop_pids "$bench_pid"; fi
  stop_pids "${pids[@]}"
  if [ -n "${COORD_COMPARE_KEEP:-}" ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# SIGTERM to each, then SIGKILL to any still there after 10 s. Only our own pids.
stop_pids() {
  local pid waited=0
  [ $# -eq 0 ] && return 0
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 100 ]; do sleep 0.1; waited=$((waited + 1)); done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# A port nobody listens on, from a range the kernel does not hand out to outgoing connections.
used_ports=" "
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
    case "$used_ports" in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      used_ports+="$p "
      echo "$p"
      return
    fi
  done
}

# coord_bench ARGS...: runs coord-bench (for at most $bench_timeout seconds when set); sets `out`
# to its JSON and returns its status; its stderr goes to $tmp/bench.log. In the background and waited for (not in a command substitution), so
# that an interrupt stops it, and the script, at once.
bench_pid=""
out=""
coord_bench() {
  local status=0
  timeout "${bench_timeout:-0}" "$bin/coord-bench" "$@" >"$tmp/bench.out" 2>>"$tmp/bench.log" &
  bench_pid=$!
  wait "$bench_pid" || status=$?
  bench_pid=""
  out="$(<"$tmp/bench.out")"
  return "$status"
}

# Cluster state, set by start_coord/start_etcd and used by the runs below.
declare -A endpoints member_pids start_args
names=(1 2 3)

# start_coord NAME: three coordd on fresh ports, data in $tmp/NAME.
start_coord() {
  local name="$1" i peers=() clients=() cluster="" args
  mkdir -p "$tmp/$name"
  for i in "${names[@]}"; do peers+=("$(free_port)"); clients+=("$(free_port)"); done
  for i in 0 1 2; do cluster+="${cluster:+,}n$((i + 1))=127.0.0.1:${peers[$i]}"; done
  endpoints[$name]="127.0.0.1:${clients[0]},127.0.0.1:${clients[1]},127.0.0.1:${clients[2]}"
  for i in 0 1 2; do
    args="--name n$((i + 1)) --data-dir $tmp/$name/n$((i + 1)) --listen-peer 127.0.0.1:${peers[$i]}"
    args+=" --listen-client 127.0.0.1:${clients[$i]} --initial-cluster $cluster --log-level warn"
    args+=" ${COORD_COMPARE_COORDD_ARGS:-}"
    start_args[$name.$i]="$bin/coordd $args"
  done
  launch "$name"
}

# start_etcd NAME: three etcd members on fresh ports, data in $tmp/NAME.
start_etcd() {
  local name="$1" i peers=() clients=() cluster="" args
  mkdir -p "$tmp/$name"
  for i in "${names[@]}"; do peers+=("$(free_port)"); clients+=("$(free_port)"); done
  for i in 0 1 2; do cluster+="${cluster:+,}e$((i + 1))=http://127.0.0.1:${peers[$i]}"; done
  endpoints[$name]="127.0.0.1:${clients[0]},127.0.0.1:${clients[1]},127.0.0.1:${clients[2]}"
  for i in 0 1 2; do
    args="--name e$((i + 1)) --data-dir $tmp/$name/e$((i + 1))"
    args+=" --listen-peer-urls http://127.0.0.1:${peers[$i]} --initial-advertise-peer-urls http://127.0.0.1:${peers[$i]}"
    args+=" --listen-client-urls http://127.0.0.1:${clients[$i]} --advertise-client-urls http://127.0.0.1:${clients[$i]}"
    args+=" --initial-cluster $cluster --initial-cluster-state new --initial-cluster-token compare-$name-$$"
    args+=" --logger zap --log-level warn ${COORD_COMPARE_ETCD_ARGS:-}"
    start_args[$name.$i]="etcd $args"
  done
  launch "$name"
}

# launch NAME: starts (or restarts, on the same data) NAME's three members and waits until the
# cluster serves a linearizable read; sets serving_s to the seconds that took.
serving_s=""
launch() {
  local name="$1" i target=coord
  [[ "$name" == etcd* ]] && target=etcd
  member_pids[$name]=""
  for i in 0 1 2; do
    # shellcheck disable=SC2086  # the arguments are ours, without spaces
    ${start_args[$name.$i]} >>"$tmp/$name/member$i.log" 2>&1 &
    pids+=("$!")
    member_pids[$name]+="$! "
  done
  if ! coord_bench --target "$target" --endpoints "${endpoints[$name]}" --wait-serving 60 --json; then
    log "$name did not start serving within 60 s; the end of its logs:"
    for i in 0 1 2; do tail -n 5 "$tmp/$name/member$i.log" >&2; done
    exit 1
  fi
  serving_s="$(jq -r .serving_s <<<"$out")"
}

# stop NAME: stops NAME's members (SIGTERM, by pid).
stop() {
  local name="$1" pid keep=()
  # shellcheck disable=SC2086
  stop_pids ${member_pids[$name]}
  for pid in "${pids[@]}"; do
    case " ${member_pids[$name]} " in *" $pid "*) ;; *) keep+=("$pid") ;; esac
  done
  pids=("${keep[@]}")
}

# ---- results -----------------------------------------------------------------------------------
# One line per measurement: "row<TAB>system<TAB>value", every run appended; medians at the end.
results="$tmp/results.tsv"
: >"$results"
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$results"; }

# bench NAME ROW-PREFIX coord-bench-flags...: one workload run; records throughput, p50 and p99.
bench() {
  local name="$1" row="$2" target=coord
  shift 2
  [[ "$name" == etcd* ]] && target=etcd
  coord_bench --target "$target" --endpoints "${endpoints[$name]}" --duration "$duration" --json "$@" || {
    log "coord-bench $target $* reported errors: $(jq -c .error_kinds <<<"$out" 2>/dev/null || echo "$out")"
    record "$row errors" "$target" "$(jq -r .errors <<<"$out" 2>/dev/null || echo failed)"
  }
  [ -n "$out" ] || return 0
  log "  $target $row: $(jq -r '"\(.throughput|floor) ops/s, p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, client cpu \(.client_cpu_s) s"' <<<"$out")"
  record "$row ops/s" "$target" "$(jq -r .throughput <<<"$out")"
  record "$row p50 ms" "$target" "$(jq -r .latency_ms.p50 <<<"$out")"
  record "$row p99 ms" "$target" "$(jq -r .latency_ms.p99 <<<"$out")"
}

# fanout NAME: the watch fan-out run; records the time until every watcher has a write, and one
# watcher's p99.
fanout() {
  local name="$1" target=coord row="6. watch, $watchers watchers"
  [[ "$name" == etcd* ]] && target=etcd
  coord_bench --target "$target" --endpoints "${endpoints[$name]}" --duration "$duration" --json \
    --op watch --watchers "$watchers" --clients 12 || {
    log "coord-bench $target --op watch reported errors: $(jq -c '[.missed, .error_messages]' <<<"$out" 2>/dev/null || echo "$out")"
    record "$row: errors" "$target" "$(jq -r '.errors + .missed' <<<"$out" 2>/dev/null || echo failed)"
  }
  [ -n "$out" ] || return 0
  log "  $target $row: $(jq -r '"\(.rounds) rounds, all have it p50 \(.all_ms.p50) ms, each p99 \(.delivery_ms.p99) ms"' <<<"$out")"
  record "$row: all have it p50 ms" "$target" "$(jq -r .all_ms.p50 <<<"$out")"
  record "$row: each p99 ms" "$target" "$(jq -r .delivery_ms.p99 <<<"$out")"
}

# Resident memory (MiB) and data directory size (MiB) of NAME's members: their mean.
footprint() {
  local name="$1" target="$2" pid rss=0 n=0 disk
  for pid in ${member_pids[$name]}; do
    rss=$((rss + $(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")))
    n=$((n + 1))
  done
  disk=$(du -sk "$tmp/$name" | awk '{ print $1 }')
  record "7. $load_keys keys: RSS per member MiB" "$target" "$(awk -v k="$rss" -v n="$n" 'BEGIN { printf "%.1f", k / n / 1024 }')"
  record "7. $load_keys keys: data dir per member MiB" "$target" "$(awk -v k="$disk" 'BEGIN { printf "%.1f", k / 3 / 1024 }')"
}

# ---- the runs ----------------------------------------------------------------------------------
# This disk's fdatasync latency, measured before each system's workloads: on a shared or
# throttled disk it changes from minute to minute, and it is the floor under every write.
probe_fsync() {
  local target="$1" json
  json="$("$bin/coord-fsync-probe" "$tmp" --count 300 --json)"
  log "  fdatasync of 4 KiB: $(jq -r '"p50 \(.p50_ms) ms, p99 \(.p99_ms) ms"' <<<"$json")"
  record "0. disk: fdatasync 4 KiB p50 ms" "$target" "$(jq -r .p50_ms <<<"$json")"
  record "0. disk: fdatasync 4 KiB p99 ms" "$target" "$(jq -r .p99_ms <<<"$json")"
}

for run in $(seq 1 "$runs"); do
  for system in $systems; do
    target=$system
    section "run $run/$runs: $system, workloads 1-6"
    log "  load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    probe_fsync "$target"
    name="$system$run"
    "start_$system" "$name"
    bench "$name" "1. put 256 B, 1 client x 1" --op put --value-size 256 --keys 1000 --clients 1 --inflight 1
    bench "$name" "2. put 256 B, 4 x 64 in flight" --op put --value-size 256 --keys 1000 --clients 4 --inflight 64
    bench "$name" "3. get, 4 x 64 in flight" --op get --value-size 256 --keys 1000 --clients 4 --inflight 64
    bench "$name" "4. get-serializable, 4 x 64" --op get-serializable --value-size 256 --keys 1000 --clients 4 --inflight 64
    bench "$name" "5. cas on 1000 keys, 4 x 16" --op cas --value-size 256 --keys 1000 --clients 4 --inflight 16
    fanout "$name"
    stop "$name"
    rm -rf "${tmp:?}/$name"

    section "run $run/$runs: $system, $load_keys keys"
    name="$system$run-load"
    "start_$system" "$name"
    if bench_timeout="$load_timeout" coord_bench --target "$target" --endpoints "${endpoints[$name]}" --op put \
         --keys "$load_keys" --value-size 256 --preload-only --json; then
      log "  loaded in $(jq -r .preload_s <<<"$out") s"
      record "7. load $load_keys keys, s" "$target" "$(jq -r .preload_s <<<"$out")"
      bench "$name" "2b. put as 2, $load_keys keys" --op put --value-size 256 --keys "$load_keys" --clients 4 --inflight 64
      footprint "$name" "$target"
      stop "$name"
      launch "$name"
      log "  restarted: serving after $serving_s s"
      record "7. restart to serving, s" "$target" "$serving_s"
    else
      log "  the load failed or took over $load_timeout s ($(tail -n 1 "$tmp/bench.log")); no workload 7 figures for $system in this run"
      record "7. load $load_keys keys: failed runs" "$target" 1
    fi
    stop "$name"
    rm -rf "${tmp:?}/$name"
  done
done

# ---- the table ---------------------------------------------------------------------------------
section "results: medians of $runs run(s), $duration s per workload run; $(date -u +%Y-%m-%dT%H:%MZ)"
awk -F '\t' -v runs="$runs" '
  function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
    if (n == 0) return ""
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function fmt(v) { if (v == "") return "-"; return v + 0 >= 100 ? sprintf("%.0f", v) : sprintf("%.3g", v) }
  {
    if (!($1 in seen)) { seen[$1] = 1; order[++rows] = $1 }
    values[$1, $2] = values[$1, $2] " " $3
  }
  END {
    printf "| %-46s | %12s | %12s | %10s |\n", "workload", "coord", "etcd", "coord/etcd"
    printf "| %-46s | %12s | %12s | %10s |\n", "---", "---", "---", "---"
    for (r = 1; r <= rows; r++) {
      row = order[r]
      if (row ~ /failed runs$/) {  # a count, not a measurement: how many of the runs
        nc = split(values[row, "coord"], xc, " "); ne = split(values[row, "etcd"], xe, " ")
        printf "| %-46s | %12s | %12s | %10s |\n", row, nc " of " runs, ne " of " runs, "-"
        continue
      }
      c = median(values[row, "coord"]); e = median(values[row, "etcd"])
      ratio = (c != "" && e != "" && e + 0 != 0 && row !~ /^0\./) ? sprintf("%.2f", c / e) : "-"
      printf "| %-46s | %12s | %12s | %10s |\n", row, fmt(c), fmt(e), ratio
      if (row ~ /^2\. .* ops\/s$/) put_row = row
      if (row ~ /^2b\. .* ops\/s$/) loaded_row = row
    }
    # Put throughput with every key loaded, relative to the same workload on 1000 keys.
    if (put_row != "" && loaded_row != "") {
      c2 = median(values[put_row, "coord"]); c2b = median(values[loaded_row, "coord"])
      e2 = median(values[put_row, "etcd"]); e2b = median(values[loaded_row, "etcd"])
      printf "| %-46s | %12s | %12s | %10s |\n", "2b / 2 put ops/s (loaded / 1000 keys)",
             (c2 > 0 && c2b != "" ? sprintf("%.2f", c2b / c2) : "-"), (e2 > 0 && e2b != "" ? sprintf("%.2f", e2b / e2) : "-"), "-"
    }
  }' "$results"
