// One seed, one run: the same options must give a byte-identical trace, or a failing seed could
// not be replayed.
#include <doctest/doctest.h>

#include <sstream>
#include <string>

#include "sim/simulation.h"

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
