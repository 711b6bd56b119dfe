// Deterministic randomness. A run has one root seed; every consumer (the network, the fault
// planner, each node's Raft core, each client) draws from its own stream derived from the root
// seed and a purpose name, so adding a consumer or drawing more numbers in one place never
// shifts the numbers another consumer sees.
#pragma once

#include <cstdint>
#include <string_view>

#include "raft/random.h"

namespace coord::sim {

// SplitMix64 step: expands one 64-bit value into well-mixed output (also used to seed xoshiro).
std::uint64_t splitmix64(std::uint64_t& state);
// A stateless 64-bit finalizer, for hashing.
std::uint64_t mix64(std::uint64_t x);
// FNV-1a over bytes: stable across platforms and runs, unlike std::hash.
std::uint64_t fnv1a64(std::string_view bytes, std::uint64_t basis = 0xcbf29ce484222325ULL);

// xoshiro256** (Blackman and Vigna): small, fast, and good enough for simulation.
class Rng final : public raft::Random {
 public:
  explicit Rng(std::uint64_t seed);

  // An independent stream for `purpose` (and an index, e.g. a node id) under `root_seed`.
  static Rng stream(std::uint64_t root_seed, std::string_view purpose, std::uint64_t index = 0);

  std::uint64_t next();
  // Uniform in [0, bound); bound > 0. Unbiased (rejection sampling).
  std::uint64_t below(std::uint64_t bound) override;
  // Uniform in [lo, hi], inclusive; lo <= hi.
  std::uint64_t between(std::uint64_t lo, std::uint64_t hi);
  std::int64_t between_signed(std::int64_t lo, std::int64_t hi);
  // True with probability ppm / 1'000'000. Integer probabilities keep runs bit-identical.
  bool chance_ppm(std::uint32_t ppm);
  bool one_in(std::uint64_t n) { return below(n) == 0; }

 private:
  std::uint64_t s_[4];
};

}  // namespace coord::sim
