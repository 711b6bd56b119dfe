// The MVCC history: replaying it as watch events, and compacting it. (Reads at a past revision
// are in kv/reads.h.)
//
// Every revision that changes a node writes the node's new version to Changes at (revision,
// path), value included when the revision wrote it, and the version's kind to the version
// index at (path \0 revision) in Nodes. compact(R) keeps, for each node, every version at or above R plus
// the newest one below R (unless that is a tombstone), and that version's value row: enough to
// read any revision >= R and to rebuild every event >= R, previous node included.
#pragma once

#include <cstddef>

#include "kv/storage.h"
#include "kv/watch.h"

namespace coord::kv {

// Matching events from revision `from` to `head` (see EventSource::replay).
ReplayChunk replay_history(const ReadTxn& txn, const WatchFilter& filter, Revision from,
                           Revision head, std::size_t events_soft_max, std::size_t rows_max);

// Drops the history below `revision` as described above, from both tables; `previous` is the
// compaction point before it (0 for none). Returns the number of rows removed.
std::size_t compact_history(WriteTxn& txn, Revision previous, Revision revision);

}  // namespace coord::kv
