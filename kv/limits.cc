#include "kv/limits.h"

namespace coord::kv {

bool valid(const Limits& limits) {
  return limits.value_bytes_max > 0 && limits.value_bytes_max <= value_bytes_limit_max &&
         limits.command_bytes_max > limits.value_bytes_max &&
         limits.txn_read_bytes_max >= limits.value_bytes_max && limits.txn_ops_max > 0 &&
         limits.txn_compares_max > 0 && limits.delete_nodes_max > 0 && limits.list_page_max > 0 &&
         limits.range_page_max > 0 && limits.range_page_bytes_max > 0 && limits.sessions_max > 0 &&
         limits.watch_buffer_events_max > 0 && limits.watchers_max > 0 &&
         limits.watch_replay_rows_max > 0 && limits.leases_max > 0 && limits.lease_keys_max > 0 &&
         limits.lease_ttl_ms_max > 0;
}

}  // namespace coord::kv
