// The only source of randomness the Raft core may use. Hosts pass a seeded generator (sim/) or
// an OS-seeded one (net/); the core never reads a global generator.
#pragma once

#include <cstdint>

namespace coord::raft {

class Random {
 public:
  virtual ~Random() = default;
  // Uniform in [0, bound); bound > 0.
  virtual std::uint64_t below(std::uint64_t bound) = 0;
};

}  // namespace coord::raft
