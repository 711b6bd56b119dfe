// The durable log summarised (hard state, snapshot, range of stored entries) and the storage
// rules every write must keep, as pure functions from one shape to the next. The LMDB store
// plans each transaction here first, so a write that would break a rule is refused before it
// touches the disk, and checks what it reads back against the same rules at load.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "raft/ready.h"
#include "raft/types.h"
#include "storage/log_records.h"

namespace coord::storage {

struct LogShape {
  raft::HardState hard_state;
  SnapshotRecord snapshot;
  // Stored entries are exactly [first, last]; both 0 when there are none. Entries at or below
  // the snapshot's index remain between save_snapshot and drop_prefix.
  raft::Index first = 0;
  raft::Index last = 0;
  raft::Term last_term = 0;

  raft::Index last_index() const { return last > snapshot.meta.index ? last : snapshot.meta.index; }
  std::uint64_t entry_count() const { return last == 0 ? 0 : last - first + 1; }

  bool operator==(const LogShape&) const = default;
};

// Term of a stored entry strictly inside [first, last) (the shape knows the last one's), read
// from the disk by the caller; nullopt when it is not there.
using StoredTermLookup = std::function<std::optional<raft::Term>(raft::Index)>;

// Each apply_* updates `shape` to what the write leaves on disk and returns nullopt, or returns
// the rule the write breaks (and `shape` must then be discarded). `snapshot`: the record the
// Ready's snapshot is stored as (its file), when the caller stored its bytes already.
std::optional<std::string> apply_ready(LogShape& shape, const raft::Ready& ready,
                                       const StoredTermLookup& stored_term,
                                       const SnapshotRecord* snapshot = nullptr);
// The two parts of apply_ready a replay of a write-ahead log applies record by record (they
// check only their own rules; check_shape is for the end of the replay).
std::optional<std::string> apply_entries(LogShape& shape, const std::vector<raft::Entry>& entries,
                                         const StoredTermLookup& stored_term);
std::optional<std::string> apply_hard_state(LogShape& shape, const raft::HardState& hs);
std::optional<std::string> apply_save_snapshot(LogShape& shape, const SnapshotRecord& snapshot,
                                               const StoredTermLookup& stored_term);
std::optional<std::string> apply_drop_prefix(LogShape& shape, raft::Index through);

// The invariants any durable shape satisfies; a violation found at load means damage.
std::optional<std::string> check_shape(const LogShape& shape);

}  // namespace coord::storage
