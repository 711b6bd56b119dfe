// What the core asks its host to do. The host handles a Ready in this order:
//   1. if `snapshot` is set, replace the stored log with it (the log restarts after its index)
//      and restore the state machine from it;
//   2. write `entries` (when entries[0].index is at or below the stored last index, first drop
//      the stored entries from that index on) and `hard_state`, and fsync;
//   3. only then send `messages`: they promise what step 2 made durable;
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
  std::vector<Entry> committed;
  std::vector<ReadState> reads;

  bool empty() const {
    return !hard_state && !snapshot && entries.empty() && messages.empty() && committed.empty() &&
           reads.empty();
  }
};

}  // namespace coord::raft
