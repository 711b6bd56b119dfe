// What the simulated pieces (replicas, clients) need from the world around them: the virtual
// clock, the agenda and the trace. The simulation implements it; a unit test can implement it
// with a bare event queue.
#pragma once

#include <functional>
#include <string_view>

#include "raft/types.h"
#include "sim/time.h"

namespace coord::sim {

class Env {
 public:
  virtual ~Env() = default;
  virtual Micros now() const = 0;
  // Runs `action` at virtual time `at` (>= now()).
  virtual void schedule(Micros at, std::function<void()> action) = 0;
  virtual void trace(raft::NodeId node, std::string_view what) = 0;
  // A violation was found: everything stops taking inputs so the trace ends at the culprit.
  virtual bool halted() const = 0;
};

}  // namespace coord::sim
