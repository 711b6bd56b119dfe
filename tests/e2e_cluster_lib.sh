# Sourced by the e2e shell tests: a 3-member coordd cluster on 127.0.0.1.
#   start_cluster_or_fail   needs $bin (coordd's directory), $dir (members' data and logs) and a
#                           fail function; sets $initial, $endpoints and $pids (n1..n3 first).
# Random ports; a member that exits at once (most likely a port taken meanwhile) makes the whole
# cluster start again on other ports, three times at most.

# Starts n1..n3; true once all three log "serving" within 10 s.
start_cluster_once() {
  local base=$((20000 + RANDOM % 30000))
  initial="n1=127.0.0.1:$base,n2=127.0.0.1:$((base + 1)),n3=127.0.0.1:$((base + 2))"
  endpoints="127.0.0.1:$((base + 10)),127.0.0.1:$((base + 11)),127.0.0.1:$((base + 12))"
  pids=()
  for i in 0 1 2; do
    "$bin/coordd" --name "n$((i + 1))" --data-dir "$dir/n$((i + 1))" \
      --listen-peer "127.0.0.1:$((base + i))" --listen-client "127.0.0.1:$((base + 10 + i))" \
      --initial-cluster "$initial" --tick-ms 50 >>"$dir/n$((i + 1)).log" 2>&1 &
    pids+=("$!")
  done
  for _ in $(seq 1 100); do
    local serving=0
    for i in 0 1 2; do
      kill -0 "${pids[$i]}" 2>/dev/null || return 1
      grep -q "serving member=" "$dir/n$((i + 1)).log" && serving=$((serving + 1))
    done
    [ "$serving" -eq 3 ] && return 0
    sleep 0.1
  done
  return 1
}

start_cluster_or_fail() {
  local attempt pid
  for attempt in 1 2 3; do
    start_cluster_once && return 0
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$dir"/n*
  done
  fail "cluster did not start"
}
