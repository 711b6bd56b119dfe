// Invariants of a single node's state, checked from outside after every step (in the manner of
// LogCabin's RaftConsensusInvariants): the simulator and tests call this, the core never does,
// so a violation is reported with the step that caused it instead of corrupting later state.
#pragma once

#include <string>
#include <vector>

#include "raft/node.h"

namespace coord::raft {

// Empty when every invariant holds; otherwise one line per broken invariant.
std::vector<std::string> check_invariants(const Node& node);

}  // namespace coord::raft
