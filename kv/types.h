// Scalar types of the key-value state machine. It counts Raft log indices (to know what it has
// applied) but knows nothing else about Raft.
#pragma once

#include <cstdint>

namespace coord::kv {

using Revision = std::uint64_t;   // global write counter; 0 is the empty initial state
using Index = std::uint64_t;      // position of a command in the replicated log
using SessionId = std::uint64_t;  // 0: no de-duplication
using LeaseId = std::uint64_t;    // 0: no lease
using WatchId = std::uint64_t;

}  // namespace coord::kv
