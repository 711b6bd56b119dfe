// The run's trace: one text line per event, "<virtual seconds> n<node> <what>". Byte-identical
// for the same seed: lines carry no pointers, no wall-clock time and nothing iterated out of an
// unordered container. The last lines are always kept in a ring, so a violation can show what led
// to it even when no trace file is written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "raft/types.h"
#include "sim/time.h"

namespace coord::sim {

inline constexpr std::size_t kRecentLinesMax = 30;

class Trace {
 public:
  // `sink` may be null: then only the recent lines are kept.
  explicit Trace(std::ostream* sink, std::size_t recent_lines_max = kRecentLinesMax);

  // node 0 means the simulator itself (faults, checks).
  void event(Micros at, raft::NodeId node, std::string_view what);
  // The last lines, oldest first.
  std::vector<std::string> recent() const;
  std::uint64_t lines() const { return lines_; }

 private:
  std::ostream* sink_;
  std::vector<std::string> ring_;
  std::size_t ring_next_ = 0;
  std::uint64_t lines_ = 0;
  std::string line_;  // reused buffer
};

}  // namespace coord::sim
