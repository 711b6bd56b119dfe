// One-line renderings of core values for the trace. Deterministic: fields in a fixed order, no
// addresses.
#pragma once

#include <string>

#include "raft/ready.h"
#include "raft/types.h"
#include "sim/client.h"

namespace coord::sim {

std::string describe(const raft::Message& m);
std::string describe(const raft::Ready& ready);
std::string describe(const raft::HardState& hs);
// A client request in a few words ("propose x17", "get /a", "watch poll"); at most about 60
// characters, bytes outside printable ASCII shown as '.'.
std::string describe(const ClientRequest& request);

}  // namespace coord::sim
