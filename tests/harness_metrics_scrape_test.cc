// The soak's memory line: Prometheus text parsed into names and values, and per-minute peaks.
#include <doctest/doctest.h>

#include "harness/metrics_scrape.h"

namespace {

using coord::harness::MemoryPeaks;
using coord::harness::parse_prometheus_text;

TEST_CASE("parse_prometheus_text reads names and values and skips comments and bad lines") {
  const auto m = parse_prometheus_text(
      "# HELP coord_heap_in_use_bytes Bytes in live heap allocations (malloc)\n"
      "# TYPE coord_heap_in_use_bytes gauge\n"
      "coord_heap_in_use_bytes{member=\"m2\"} 1.5e+07\n"
      "coord_client_connections{member=\"m2\"} 11\n"
      "coord_raft_leader 1\n"
      "garbage\n"
      "novalue{member=\"m2\"} x\n");
  REQUIRE(m.size() == 3);
  CHECK(m.at("coord_heap_in_use_bytes") == doctest::Approx(1.5e7));
  CHECK(m.at("coord_client_connections") == doctest::Approx(11));
  CHECK(m.at("coord_raft_leader") == doctest::Approx(1));
}

TEST_CASE("MemoryPeaks keeps each gauge's largest value over the samples") {
  MemoryPeaks peaks;
  CHECK(peaks.line() == "no sample");
  const double mib = 1024.0 * 1024.0;
  peaks.add({{"coord_heap_in_use_bytes", 10 * mib}, {"coord_client_queued_bytes", 0},
             {"coord_raft_log_last_index", 1500}, {"coord_raft_snapshot_index", 1000}},
            20 * 1024);
  peaks.add({{"coord_heap_in_use_bytes", 4 * mib}, {"coord_client_queued_bytes", 3 * mib},
             {"coord_raft_log_last_index", 1600}, {"coord_raft_snapshot_index", 1550}},
            12 * 1024);
  peaks.add({}, 999 * 1024);  // a failed scrape counts for nothing
  const std::string line = peaks.line();
  CHECK(line.find("max rss 20.0 heap 10.0 ") != std::string::npos);
  CHECK(line.find("client 3.0/0.0") != std::string::npos);
  CHECK(line.find("log 500 entries (2 samples)") != std::string::npos);
}

}  // namespace
