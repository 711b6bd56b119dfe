#include "kv/txn.h"

#include <fmt/format.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kv/path.h"
#include "kv/reads.h"
#include "raft/assert.h"

namespace coord::kv {

namespace {

const std::string zero_sequence(sequence_digits, '0');

std::string sequence_name(std::string_view prefix, std::uint64_t counter) {
  std::string digits = std::to_string(counter);
  COORD_ASSERT(digits.size() <= sequence_digits, "sequence counter beyond its digits");
  std::string name(prefix);
  name.append(sequence_digits - digits.size(), '0');
  name += digits;
  return name;
}

Status at(std::string_view where, Status status) {
  status.message = fmt::format("{}: {}", where, status.message);
  return status;
}

Status check_op(const Op& op, const Limits& limits) {
  const bool has_value_fields = !op.value.empty() || op.lease != 0 || op.parents;
  switch (op.type) {
    case OpType::Get:
      if (has_value_fields || op.sequential || op.recursive) {
        return make_status(Error::InvalidRequest, "get takes only a path");
      }
      break;
    case OpType::Put:
      if (op.sequential || op.recursive) {
        return make_status(Error::InvalidRequest, "put takes neither sequential nor recursive");
      }
      break;
    case OpType::Create:
      if (op.recursive) return make_status(Error::InvalidRequest, "create takes no recursive");
      break;
    case OpType::Delete:
      if (has_value_fields || op.sequential) {
        return make_status(Error::InvalidRequest, "delete takes only a path and recursive");
      }
      break;
  }
  // A sequential create names a prefix ("/locks/lock-", or "/locks/" for bare numbers); the
  // node it creates must be a valid path.
  const bool sequential = op.type == OpType::Create && op.sequential;
  if (Status s = check_path(sequential ? op.path + zero_sequence : op.path); !s.ok()) return s;
  if (op.type == OpType::Delete && is_root(op.path)) {
    return make_status(Error::InvalidRequest, "the root cannot be deleted");
  }
  if (op.lease != 0 && !sequential && is_root(op.path)) {
    return make_status(Error::InvalidRequest, "the root cannot take a lease");
  }
  if (op.value.size() > limits.value_bytes_max) {
    return make_status(Error::TooLarge,
                       fmt::format("value of {} bytes exceeds value_bytes_max ({})",
                                   op.value.size(), limits.value_bytes_max));
  }
  return {};
}

Status check_ops(const std::vector<Op>& ops, const char* branch, const Limits& limits) {
  if (ops.size() > limits.txn_ops_max) {
    return make_status(Error::TooLarge, fmt::format("{} has {} operations; txn_ops_max is {}",
                                                    branch, ops.size(), limits.txn_ops_max));
  }
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (Status s = check_op(ops[i], limits); !s.ok()) {
      return at(fmt::format("{}[{}]", branch, i), std::move(s));
    }
  }
  return {};
}

bool holds(CompareOp op, int three_way) {
  switch (op) {
    case CompareOp::Equal: return three_way == 0;
    case CompareOp::NotEqual: return three_way != 0;
    case CompareOp::Less: return three_way < 0;
    case CompareOp::Greater: return three_way > 0;
  }
  return false;
}

int three_way(std::uint64_t a, std::uint64_t b) { return a < b ? -1 : (a > b ? 1 : 0); }

class Executor {
 public:
  Executor(const ReadTxn& state, Revision revision, const Limits& limits)
      : state_(state), revision_(revision), limits_(limits) {}

  bool compare(const Compare& c) {
    const std::optional<NodeRecord> record = lookup(c.path);
    if (c.target == CompareTarget::Exists) return holds(c.op, three_way(record ? 1 : 0, c.number));
    if (!record) return false;
    const Node& n = record->node;
    switch (c.target) {
      case CompareTarget::Exists: break;
      case CompareTarget::Version: return holds(c.op, three_way(n.version, c.number));
      case CompareTarget::CreateRevision:
        return holds(c.op, three_way(n.create_revision, c.number));
      case CompareTarget::ModRevision: return holds(c.op, three_way(n.mod_revision, c.number));
      case CompareTarget::Value: {
        const int cmp = n.value.compare(c.value);
        return holds(c.op, cmp < 0 ? -1 : (cmp > 0 ? 1 : 0));
      }
    }
    return false;
  }

  Status run(const Op& op, OpResult& out) {
    out.type = op.type;
    out.path = op.path;
    switch (op.type) {
      case OpType::Get: return get(op, out);
      case OpType::Put: return put(op, out);
      case OpType::Create: return create(op, out);
      case OpType::Delete: return remove(op, out);
    }
    return make_status(Error::InvalidRequest, "unknown operation");
  }

  ChangeSet take_changes() {
    // Reads leave entries that changed nothing; the caller only wants changes.
    for (auto it = changes_.begin(); it != changes_.end();) {
      if (!it->second.value_changed && it->second.before == it->second.after) {
        it = changes_.erase(it);
      } else {
        ++it;
      }
    }
    return std::move(changes_);
  }

 private:
  // Through the overlay, which keeps what it read: a put looks its node up and then claims it,
  // and each stored read costs a Nodes and a Changes lookup (take_changes drops the entries of
  // nodes only read).
  std::optional<NodeRecord> lookup(std::string_view path) { return touch(path).after; }

  // The overlay entry of `path`, loaded on first use.
  NodeChange& touch(std::string_view path) {
    auto it = changes_.find(path);
    if (it == changes_.end()) {
      NodeChange change;
      change.before = read_record(state_, path);
      change.after = change.before;
      it = changes_.emplace(std::string(path), std::move(change)).first;
    }
    return it->second;
  }

  // The one value change `path` may get in this request.
  Status claim(std::string_view path, NodeChange*& change) {
    change = &touch(path);
    if (change->value_changed) {
      return make_status(Error::InvalidRequest,
                         fmt::format("\"{}\" changed twice in one transaction", path));
    }
    change->value_changed = true;
    return {};
  }

  // Counts a key joining `lease` (0: none), which must exist and have room.
  Status attach(LeaseId lease) {
    if (lease == 0) return {};
    const std::optional<LeaseRecord> record = read_lease(state_, lease);
    if (!record) {
      return make_status(Error::LeaseNotFound, fmt::format("lease {} does not exist", lease));
    }
    std::int64_t& delta = lease_delta_[lease];
    if (static_cast<std::int64_t>(record->keys) + delta >=
        static_cast<std::int64_t>(limits_.lease_keys_max)) {
      return make_status(Error::TooLarge, fmt::format("lease {} has lease_keys_max ({}) keys",
                                                      lease, limits_.lease_keys_max));
    }
    delta += 1;
    return {};
  }

  // Counts a key leaving `lease` (0: none).
  void detach(LeaseId lease) {
    if (lease != 0) lease_delta_[lease] -= 1;
  }

  // Creates `path`, whose parent exists and which does not.
  Status create_node(std::string_view path, const std::string& value, LeaseId lease) {
    NodeChange& parent = touch(parent_of(path));
    COORD_ASSERT(parent.after.has_value(), "creating a node under a missing parent");
    if (parent.after->node.lease != 0) {
      return make_status(Error::NoChildrenForEphemerals,
                         fmt::format("\"{}\" has a lease: it cannot have children",
                                     parent_of(path)));
    }
    parent.after->node.num_children += 1;
    parent.after->node.children_version += 1;
    NodeChange* change = nullptr;
    if (Status s = claim(path, change); !s.ok()) return s;
    COORD_ASSERT(!change->after.has_value(), "creating a node that exists");
    if (Status s = attach(lease); !s.ok()) return s;
    NodeRecord record;
    record.node.value = value;
    record.node.create_revision = revision_;
    record.node.mod_revision = revision_;
    record.node.lease = lease;
    change->after = std::move(record);
    return {};
  }

  // Makes sure the parent of `path` exists, creating missing ancestors when `parents`.
  Status ensure_parent(std::string_view path, bool parents) {
    std::vector<std::string_view> missing;  // deepest first
    for (std::string_view p = parent_of(path); !lookup(p); p = parent_of(p)) {
      if (!parents) {
        return make_status(Error::NotFound, fmt::format("parent \"{}\" does not exist", p));
      }
      missing.push_back(p);  // the root always exists, so this stops
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
      if (Status s = create_node(*it, std::string(), 0); !s.ok()) return s;
    }
    return {};
  }

  Status get(const Op& op, OpResult& out) {
    std::optional<NodeRecord> record = lookup(op.path);
    if (!record) return {};
    read_bytes_ += record->node.value.size();
    if (read_bytes_ > limits_.txn_read_bytes_max) {
      return make_status(Error::TooLarge,
                         fmt::format("gets return more than txn_read_bytes_max ({}) bytes",
                                     limits_.txn_read_bytes_max));
    }
    out.node = std::move(record->node);
    return {};
  }

  Status put(const Op& op, OpResult& out) {
    if (!lookup(op.path)) {
      if (Status s = ensure_parent(op.path, op.parents); !s.ok()) return s;
      out.created = true;
      return create_node(op.path, op.value, op.lease);
    }
    NodeChange* change = nullptr;
    if (Status s = claim(op.path, change); !s.ok()) return s;
    Node& n = change->after->node;
    if (op.lease != 0 && n.num_children > 0) {
      return make_status(Error::NoChildrenForEphemerals,
                         fmt::format("\"{}\" has children: it cannot take a lease", op.path));
    }
    if (op.lease != n.lease) {
      if (Status s = attach(op.lease); !s.ok()) return s;
      detach(n.lease);
    }
    n.value = op.value;
    n.mod_revision = revision_;
    n.version += 1;
    n.lease = op.lease;
    return {};
  }

  Status create(const Op& op, OpResult& out) {
    std::string path = op.path;
    if (op.sequential) {
      const std::string probe = op.path + zero_sequence;
      if (Status s = ensure_parent(probe, op.parents); !s.ok()) return s;
      NodeChange& parent = touch(parent_of(probe));
      const std::uint64_t counter = parent.after->sequence_next;
      if (counter > sequence_max) {
        return make_status(Error::TooLarge, fmt::format("sequence counter of \"{}\" exhausted",
                                                        parent_of(probe)));
      }
      parent.after->sequence_next = counter + 1;
      path = sequence_name(op.path, counter);
      out.path = path;
    }
    if (lookup(path)) {
      return make_status(Error::AlreadyExists, fmt::format("\"{}\" already exists", path));
    }
    if (Status s = ensure_parent(path, op.parents); !s.ok()) return s;
    return create_node(path, op.value, op.lease);
  }

  Status remove(const Op& op, OpResult& out) {
    const std::optional<NodeRecord> record = lookup(op.path);
    if (!record) {
      return make_status(Error::NotFound, fmt::format("\"{}\" does not exist", op.path));
    }
    std::vector<std::string> doomed{op.path};
    if (record->node.num_children > 0) {
      if (!op.recursive) {
        return make_status(Error::NotEmpty, fmt::format("\"{}\" has {} children", op.path,
                                                        record->node.num_children));
      }
      if (Status s = descendants(op.path, doomed); !s.ok()) return s;
    }
    for (const std::string& path : doomed) {
      NodeChange* change = nullptr;
      if (Status s = claim(path, change); !s.ok()) return s;
      detach(change->after->node.lease);
      change->after.reset();
    }
    NodeChange& parent = touch(parent_of(op.path));
    parent.after->node.num_children -= 1;
    parent.after->node.children_version += 1;
    out.deleted = doomed.size();
    return {};
  }

  // Appends every node below `path` (as this request sees the tree) to `out`.
  Status descendants(std::string_view path, std::vector<std::string>& out) {
    const std::string prefix = child_prefix(path);
    // The overlay can hide at most changes_.size() stored rows, so scanning that many beyond
    // the limit proves the limit is exceeded.
    const std::size_t scan_max = limits_.delete_nodes_max + changes_.size() + 1;
    std::set<std::string> found;
    bool truncated = false;
    {
      // Live rows only: each step seeks past the path's versions (kv/layout.h).
      const auto rows = state_.cursor(Table::Nodes);
      std::string at;
      for (bool ok = rows->seek(prefix); ok && rows->key().starts_with(prefix);
           ok = rows->seek(history_key_end(at))) {
        const auto version = parse_history_key(rows->key());
        at.assign(version ? version->path : rows->key());
        if (version) continue;  // versions of a node that is gone
        if (found.size() == scan_max) {
          truncated = true;
          break;
        }
        found.emplace(at);
      }
    }
    for (auto it = changes_.lower_bound(prefix);
         it != changes_.end() && it->first.starts_with(prefix); ++it) {
      if (it->second.after) {
        found.insert(it->first);
      } else {
        found.erase(it->first);
      }
    }
    if (truncated || found.size() + out.size() > limits_.delete_nodes_max) {
      return make_status(Error::TooLarge,
                         fmt::format("recursive delete of \"{}\" exceeds delete_nodes_max ({})",
                                     path, limits_.delete_nodes_max));
    }
    out.insert(out.end(), found.begin(), found.end());
    return {};
  }

  const ReadTxn& state_;
  Revision revision_;
  const Limits& limits_;
  ChangeSet changes_;
  std::size_t read_bytes_ = 0;
  // Keys joining (+) and leaving (-) each lease in this request, for lease_keys_max.
  std::map<LeaseId, std::int64_t> lease_delta_;
};

}  // namespace

Status check_txn(const Txn& txn, const Limits& limits) {
  if (txn.compares.size() > limits.txn_compares_max) {
    return make_status(Error::TooLarge,
                       fmt::format("transaction has {} comparisons; txn_compares_max is {}",
                                   txn.compares.size(), limits.txn_compares_max));
  }
  for (std::size_t i = 0; i < txn.compares.size(); ++i) {
    const Compare& c = txn.compares[i];
    const std::string where = fmt::format("compares[{}]", i);
    if (Status s = check_path(c.path); !s.ok()) return at(where, std::move(s));
    if (c.value.size() > limits.value_bytes_max) {
      return at(where, make_status(Error::TooLarge, "value exceeds value_bytes_max"));
    }
    if (c.target != CompareTarget::Value && !c.value.empty()) {
      return at(where, make_status(Error::InvalidRequest, "a value on a numeric comparison"));
    }
    if (c.target == CompareTarget::Value && c.number != 0) {
      return at(where, make_status(Error::InvalidRequest, "a number on a value comparison"));
    }
    if (c.target == CompareTarget::Exists && c.number > 1) {
      return at(where, make_status(Error::InvalidRequest, "exists compares with 0 or 1"));
    }
  }
  if (Status s = check_ops(txn.success, "success", limits); !s.ok()) return s;
  return check_ops(txn.failure, "failure", limits);
}

TxnOutcome execute_txn(const ReadTxn& state, const Txn& txn, Revision revision,
                       const Limits& limits) {
  TxnOutcome out;
  Result& result = out.result;
  if (Status s = check_txn(txn, limits); !s.ok()) {
    result.status = std::move(s);
    return out;
  }
  Executor executor(state, revision, limits);
  for (std::size_t i = 0; i < txn.compares.size(); ++i) {
    if (!executor.compare(txn.compares[i])) {
      result.succeeded = false;
      result.failed_compare = static_cast<std::int32_t>(i);
      break;
    }
  }
  const std::vector<Op>& branch = result.succeeded ? txn.success : txn.failure;
  if (!result.succeeded && branch.empty()) {
    result.status = make_status(Error::CompareFailed,
                                fmt::format("compares[{}] on \"{}\" does not hold",
                                            result.failed_compare,
                                            txn.compares[result.failed_compare].path));
    return out;
  }
  result.ops.resize(branch.size());
  for (std::size_t i = 0; i < branch.size(); ++i) {
    if (Status s = executor.run(branch[i], result.ops[i]); !s.ok()) {
      result.status = std::move(s);
      result.failed_op = static_cast<std::int32_t>(i);
      result.ops.clear();
      return out;
    }
  }
  out.changes = executor.take_changes();
  return out;
}

ChangeSet delete_lease_keys(const ReadTxn& state, const std::vector<std::string>& paths,
                            Revision revision, const Limits& limits) {
  Executor executor(state, revision, limits);
  for (const std::string& path : paths) {
    OpResult ignored;
    const Status s = executor.run(Op::remove(path), ignored);
    // Ephemeral nodes have no children and each key is listed once, so this cannot fail.
    COORD_ASSERT(s.ok(), "deleting a lease's key failed");
  }
  return executor.take_changes();
}

}  // namespace coord::kv
