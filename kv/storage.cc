#include "kv/storage.h"

namespace coord::kv {

const char* table_name(Table table) {
  switch (table) {
    case Table::Meta: return "meta";
    case Table::Nodes: return "nodes";
    case Table::Changes: return "changes";
    case Table::Sessions: return "sessions";
    case Table::SessionLru: return "session_lru";
    case Table::Leases: return "leases";
    case Table::LeaseKeys: return "lease_keys";
  }
  return "?";
}

}  // namespace coord::kv
