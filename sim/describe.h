// One-line renderings of core values for the trace. Deterministic: fields in a fixed order, no
// addresses.
#pragma once

#include <string>

#include "raft/ready.h"
#include "raft/types.h"

namespace coord::sim {

std::string describe(const raft::Message& m);
std::string describe(const raft::Ready& ready);
std::string describe(const raft::HardState& hs);

}  // namespace coord::sim
