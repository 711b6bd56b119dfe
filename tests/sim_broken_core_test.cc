// Built once per deliberately broken Raft core (tests/CMakeLists.txt compiles the core with a
// COORD_RAFT_BUG_* definition into this target only). The simulator must catch the bug within
// kSeedsMax seeds: proof that its checkers can fail on real consensus bugs, not only on
// fabricated input.
#include <doctest/doctest.h>

#include <cstdint>

#include "sim/simulation.h"

namespace {

constexpr std::uint64_t kSeedsMax = 1000;

}  // namespace

TEST_CASE("the simulator catches the broken core within 1000 seeds") {
  coord::sim::Options options;
  options.nodes = 3;
  bool caught = false;
  for (std::uint64_t seed = 1; seed <= kSeedsMax && !caught; ++seed) {
    options.seed = seed;
    coord::sim::Result result = coord::sim::run(options);
    if (!result.passed) {
      caught = true;
      MESSAGE("caught by seed " << seed << ": invariant=" << result.invariant << ": "
                                << result.message);
      // A broken core must be caught by a safety checker, not by the simulator's own limits.
      CHECK(result.invariant != "simulator-limit");
      CHECK(result.invariant != "liveness");
    }
  }
  CHECK(caught);
}
