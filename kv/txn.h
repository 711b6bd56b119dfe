// Executing one transaction: a pure function of the current tree (read through `state`) and the
// request. It computes the whole effect in an overlay and changes nothing; the state machine
// then writes the effect in one place, or drops it when the request failed, which is what makes
// a transaction all-or-nothing.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kv/command.h"
#include "kv/layout.h"
#include "kv/limits.h"
#include "kv/storage.h"

namespace coord::kv {

// What one request does to one node.
struct NodeChange {
  std::optional<NodeRecord> before;  // nullopt: absent before the request
  std::optional<NodeRecord> after;   // nullopt: absent after it
  // Created, written or deleted by the request (a watch event), as opposed to a change to its
  // children only. At most once per node and request.
  bool value_changed = false;
};
using ChangeSet = std::map<std::string, NodeChange, std::less<>>;

struct TxnOutcome {
  Result result;      // everything but `revision`, which the caller knows
  ChangeSet changes;  // empty when the request failed or only read
};

// State-independent checks (paths, sizes, counts, flags): a request failing them fails the same
// way whatever the state, in either branch.
Status check_txn(const Txn& txn, const Limits& limits);

// Runs `txn` as the write that gets revision `revision` (current revision + 1).
TxnOutcome execute_txn(const ReadTxn& state, const Txn& txn, Revision revision,
                       const Limits& limits);

// The deletion of a revoked or expired lease's keys (`paths`, each an existing node with no
// children), as the write that gets revision `revision`.
ChangeSet delete_lease_keys(const ReadTxn& state, const std::vector<std::string>& paths,
                            Revision revision, const Limits& limits);

}  // namespace coord::kv
