// Built once per deliberately broken Raft core (tests/CMakeLists.txt compiles the core with a
// COORD_RAFT_BUG_* definition into this target only), and once per deliberately broken simulated
// kv host or client (COORD_SIM_BUG_KV_*, COORD_SIM_BUG_WATCH_*, COORD_SIM_BUG_LOCKS_*: then the kv,
// watch or locks workload runs). The simulator must catch the bug within
// kSeedsMax seeds: proof that its checkers can fail on real bugs, not only on fabricated input.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "sim/simulation.h"

namespace {

#ifdef COORD_SIM_BUG_KV_LOCAL_READS
constexpr std::uint64_t kSeedsMax = 100;
constexpr coord::sim::Workload kWorkload = coord::sim::Workload::Kv;
// Stale reads from a lagging follower: only the history can tell.
const std::string kExpectedInvariant = "kv-linearizable";
#elif defined(COORD_SIM_BUG_WATCH_RESUME_REPEATS)
constexpr std::uint64_t kSeedsMax = 100;
constexpr coord::sim::Workload kWorkload = coord::sim::Workload::Watch;
// A watch resumed at the revision it already delivered repeats that revision's events.
const std::string kExpectedInvariant = "watch-delivery";
#elif defined(COORD_SIM_BUG_LOCKS_LEASE_EARLY)
constexpr std::uint64_t kSeedsMax = 50;
constexpr coord::sim::Workload kWorkload = coord::sim::Workload::Locks;
// The leader's lease clock runs fast: leases expire before their TTL. The Guard keeps the
// storage safe, so only the lease check can tell.
const std::string kExpectedInvariant = "lease-never-early";
#else
constexpr std::uint64_t kSeedsMax = 1000;
constexpr coord::sim::Workload kWorkload = coord::sim::Workload::Raft;
const std::string kExpectedInvariant;
#endif

}  // namespace

TEST_CASE("the simulator catches the broken core within its seed budget") {
  coord::sim::Options options;
  options.nodes = 3;
  options.workload = kWorkload;
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
      if (!kExpectedInvariant.empty()) CHECK(result.invariant == kExpectedInvariant);
    }
  }
  CHECK(caught);
}
