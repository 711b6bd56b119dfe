// One seed, one run: the same options must give a byte-identical trace, or a failing seed could
// not be replayed.
#include <doctest/doctest.h>

#include <sstream>
#include <string>

#include "sim/simulation.h"
#include "sim/timeline.h"

namespace {

std::string trace_of(std::uint64_t seed) {
  std::ostringstream out;
  coord::sim::Options options;
  options.seed = seed;
  options.time_s = 10;
  options.trace = &out;
  coord::sim::Result result = coord::sim::run(options);
  CHECK(result.passed);
  return out.str();
}

}  // namespace

TEST_CASE("the same seed gives a byte-identical trace") {
  std::string first = trace_of(42);
  std::string second = trace_of(42);
  CHECK(first.size() > 10'000);
  CHECK(first == second);
}

TEST_CASE("different seeds give different runs") {
  CHECK(trace_of(1) != trace_of(2));
}

namespace {

std::string workload_trace_of(coord::sim::Workload workload, std::uint64_t seed) {
  std::ostringstream out;
  coord::sim::Options options;
  options.seed = seed;
  options.workload = workload;
  options.time_s = 10;
  options.trace = &out;
  coord::sim::Result result = coord::sim::run(options);
  CHECK(result.passed);
  return out.str();
}

}  // namespace

TEST_CASE("the kv and watch workloads are deterministic too") {
  for (coord::sim::Workload workload : {coord::sim::Workload::Kv, coord::sim::Workload::Watch}) {
    INFO("workload " << coord::sim::to_string(workload));
    const std::string first = workload_trace_of(workload, 42);
    CHECK(first.size() > 10'000);
    CHECK(first == workload_trace_of(workload, 42));
    CHECK(first != workload_trace_of(workload, 43));
  }
}

namespace {

struct Recorded {
  std::string trace;
  coord::sim::Result result;
};

Recorded run_recorded(coord::sim::Options options, coord::sim::Timeline* timeline) {
  std::ostringstream out;
  options.trace = &out;
  options.timeline = timeline;
  Recorded r;
  r.result = coord::sim::run(options);
  r.trace = out.str();
  return r;
}

}  // namespace

// coord-sim --timeline must draw the very run that coord-sim without it reports: the recorder
// only reads (it draws no random numbers and schedules nothing).
TEST_CASE("recording a timeline does not change the run") {
  coord::sim::Options raft;
  raft.seed = 42;
  raft.time_s = 10;
  coord::sim::Options locks;
  locks.seed = 18;  // fails: mutual exclusion breaks without fencing
  locks.workload = coord::sim::Workload::Locks;
  locks.fencing = false;
  coord::sim::Options kv;
  kv.seed = 7;
  kv.workload = coord::sim::Workload::Kv;
  kv.nodes = 5;
  kv.time_s = 10;
  for (const coord::sim::Options& options : {raft, locks, kv}) {
    INFO("workload " << coord::sim::to_string(options.workload) << " seed " << options.seed);
    const Recorded plain = run_recorded(options, nullptr);
    coord::sim::Timeline timeline;
    const Recorded drawn = run_recorded(options, &timeline);
    CHECK(plain.trace.size() > 10'000);
    CHECK(plain.trace == drawn.trace);
    CHECK(plain.result.passed == drawn.result.passed);
    CHECK(plain.result.invariant == drawn.result.invariant);
    CHECK(plain.result.stats.events == drawn.result.stats.events);
    // ...and the recorder did record this run.
    CHECK(timeline.states().size() >= static_cast<std::size_t>(options.nodes));
    CHECK(timeline.end() == drawn.result.stats.virtual_us);
  }
}
