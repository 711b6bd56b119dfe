// What the core asks its host to do. The host handles a Ready in this order:
//   1. if `snapshot` is set, replace the stored log with it (the log restarts after its index)
//      and restore the state machine from it;
//   2. write `entries` (when entries[0].index is at or below the stored last index, first drop
//      the stored entries from that index on) and `hard_state`, and fsync. `hard_state` is set
//      when the term or vote changed, with entries or a snapshot, and when `committed` holds a
//      configuration change (a restart rebuilds the configuration up to the stored commit only,
//      and an applied change must not come back undone); otherwise a commit index
//      that moved alone waits in memory for the next of those (no fsync for it, as etcd's
//      MustSync), so a restart may find an older commit and learns the rest from the leader;
//   3. only then send `messages`: they promise what step 2 made durable;
// `early_messages` may be sent at any point of the cycle, before step 2 completes (in parallel
// with the fsync, Raft thesis 10.2.1) or together with `messages`: they are a leader's Appends,
// Heartbeats and Snapshot chunks, which promise nothing about this node's disk (the leader
// counts its own entries towards commitment only after advance()), and the core hands them out
// only when the term and vote they rest on were made durable by an earlier Ready.
//   4. apply `committed` in order, and serve `reads` once the state machine has applied their
//      index;
//   5. call Node::advance(ready).
#pragma once

#include <optional>
#include <vector>

#include "raft/types.h"

namespace coord::raft {

struct Ready {
  std::optional<HardState> hard_state;
  std::optional<Snapshot> snapshot;
  std::vector<Entry> entries;
  std::vector<Message> messages;
  std::vector<Message> early_messages;
  std::vector<Entry> committed;
  std::vector<ReadState> reads;

  bool empty() const {
    return !hard_state && !snapshot && entries.empty() && messages.empty() &&
           early_messages.empty() && committed.empty() &&
           reads.empty();
  }
};

}  // namespace coord::raft
