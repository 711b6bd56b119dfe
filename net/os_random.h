// The Raft core's randomness in the real server: a 64-bit Mersenne Twister seeded from the OS
// (std::random_device), so that replicas started at the same moment still pick different
// election timeouts. The simulator passes a seeded generator instead (sim/rng.h).
#pragma once

#include <cstdint>
#include <random>

#include "raft/random.h"

namespace coord::net {

class OsRandom final : public raft::Random {
 public:
  OsRandom() : engine_(std::random_device{}()) {}
  std::uint64_t below(std::uint64_t bound) override {
    return std::uniform_int_distribution<std::uint64_t>(0, bound - 1)(engine_);
  }
  std::uint64_t next() { return engine_(); }

 private:
  std::mt19937_64 engine_;
};

}  // namespace coord::net
