// Reads a member's Prometheus text (coordd --listen-metrics) over plain HTTP, so the soak can
// print what holds a member's memory (queues, buffers, malloc's free memory) next to its RSS.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace coord::harness {

// name (labels dropped) -> value, from the Prometheus text format; comments and bad lines skipped.
std::map<std::string, double> parse_prometheus_text(std::string_view text);

// GET http://host:port/metrics with `timeout` for the whole exchange; empty on any failure
// (a member paused, killed or behind a lossy link is simply not sampled).
std::map<std::string, double> scrape_metrics(const std::string& host, int port, std::chrono::milliseconds timeout);

// The largest value of each memory gauge over several samples of one member (a soak minute).
class MemoryPeaks {
 public:
  // One sample: the scraped metrics (empty when the scrape failed) and the RSS then.
  void add(const std::map<std::string, double>& metrics, std::uint64_t rss_kib);
  // "rss 14.2 heap 6.1 free 3.0 client 0.0/1.2 (11) peer 0.0/2.3 fwd 0.0/0.0 inbox 0.0 MiB, log 900 entries (12 samples)",
  // where a/b is queued/reserved; "no sample" when none succeeded.
  std::string line() const;

 private:
  int samples_ = 0;
  std::map<std::string, double> max_;
};

}  // namespace coord::harness
