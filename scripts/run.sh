#!/usr/bin/env bash
# Runs a local 3-replica coord cluster in the foreground.
#
#   scripts/run.sh
#
# Builds the Release flavour (incrementally; installs dependencies first), then starts n1..n3 on
# 127.0.0.1 with peer ports 7001-7003 and client ports 7101-7103, data under ./data/n1..n3 and
# logs in ./data/n1.log..n3.log. Ctrl-C (or SIGTERM) stops all three cleanly. Running it again
# resumes from the same data; delete ./data to start over.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/build.sh release

bin="build/release/bin"
data="data"
names=(n1 n2 n3)
initial_cluster="n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003"
endpoints="127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103"
mkdir -p "$data"

pids=()
stop_all() {
  trap - INT TERM
  echo
  echo "stopping ${pids[*]:-}"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "stopped; data kept in $data/ (run again to resume)"
}
trap 'stop_all; exit 0' INT TERM

for i in 1 2 3; do
  name="${names[$((i - 1))]}"
  "$bin/coordd" --name "$name" --data-dir "$data/$name" \
    --listen-peer "127.0.0.1:700$i" --listen-client "127.0.0.1:710$i" \
    --initial-cluster "$initial_cluster" >>"$data/$name.log" 2>&1 &
  pids+=("$!")
done

# A member that could not start (port in use, a data dir of another cluster) exits at once.
sleep 1
for i in 0 1 2; do
  if ! kill -0 "${pids[$i]}" 2>/dev/null; then
    echo "${names[$i]} failed to start; the end of $data/${names[$i]}.log:" >&2
    tail -n 5 "$data/${names[$i]}.log" >&2
    stop_all
    exit 1
  fi
done

cat <<EOF

coord cluster running (pids ${pids[*]}); logs in $data/n1.log .. $data/n3.log
  client endpoints: $endpoints
  peer addresses:   127.0.0.1:7001, 127.0.0.1:7002, 127.0.0.1:7003

Try, in another terminal (coordctl defaults to these endpoints; or set COORD_ENDPOINTS):
  $bin/coordctl status
  $bin/coordctl member list
  $bin/coordctl put /hello world
  $bin/coordctl get /hello
  $bin/coordctl create --sequential --parents /jobs/job- payload
  $bin/coordctl ls /jobs
  $bin/coordctl cas /hello again --expect-value world
  printf 'compare missing /lock\nthen\ncreate /lock me\nelse\nget /lock\n' | $bin/coordctl txn
  $bin/coordctl --json stat /hello

Ctrl-C stops all three.
EOF

# Stay in the foreground until Ctrl-C; report a replica that exits on its own (see its log).
# Ctrl-C reaches the replicas too (they are in the terminal's process group) and each stops
# cleanly with status 0, often before this shell runs its trap: a replica gone with status 0
# was stopped, not failed.
reported=("" "" "")
failed=0
while true; do
  alive=0
  for i in 0 1 2; do
    if kill -0 "${pids[$i]}" 2>/dev/null; then
      alive=1
    elif [ -z "${reported[$i]}" ]; then
      reported[$i]=1
      status=0
      wait "${pids[$i]}" 2>/dev/null || status=$?
      if [ "$status" -ne 0 ]; then
        failed=1
        echo "${names[$i]} exited with status $status; see $data/${names[$i]}.log (the others keep running)" >&2
      fi
    fi
  done
  if [ "$alive" -eq 0 ]; then
    if [ "$failed" -eq 0 ]; then
      echo
      echo "stopped; data kept in $data/ (run again to resume)"
      exit 0
    fi
    echo "all replicas exited" >&2
    exit 1
  fi
  # `wait` on a short sleep returns as soon as a signal arrives, so the trap runs at once.
  sleep 1 &
  wait "$!" || true
done
