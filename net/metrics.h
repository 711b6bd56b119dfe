// Prometheus metrics of one replica, served as text on http://ADDRESS/metrics when coordd runs
// with --listen-metrics ADDRESS (prometheus-cpp's pull exposer, on threads of its own). Without
// the flag nothing listens; a build without prometheus-cpp refuses the flag at startup.
//
// The loop thread hands over a MetricsSample now and then (every tick); the exposer's threads
// only read the registry, whose metrics are atomic. Counters are monotonic totals since start.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace coord::net {

struct MetricsSample {
  // Gauges: the replica's view now.
  bool leader = false;
  std::uint64_t term = 0;
  std::uint64_t commit_index = 0;
  std::uint64_t applied_index = 0;
  std::uint64_t log_last_index = 0;
  std::uint64_t snapshot_index = 0;
  std::uint64_t revision = 0;
  std::uint64_t compact_revision = 0;
  std::uint64_t leases = 0;
  std::uint64_t watchers = 0;
  std::uint64_t forwards_in_flight = 0;
  // Memory held by queues and buffers, in bytes: queued is what waits to go out, reserved what
  // the connections' buffers hold allocated (it stays after a queue drains).
  std::uint64_t client_connections = 0;
  std::uint64_t client_queued_bytes = 0;
  std::uint64_t client_reserved_bytes = 0;
  std::uint64_t peer_queued_bytes = 0;
  std::uint64_t peer_reserved_bytes = 0;
  std::uint64_t forward_queued_bytes = 0;
  std::uint64_t forward_reserved_bytes = 0;
  std::uint64_t inbox_bytes = 0;
  // The largest Ready of the last second: Raft messages handed out, and their entry bytes.
  std::uint64_t ready_messages_peak = 0;
  std::uint64_t ready_message_bytes_peak = 0;
  // malloc's view (net/heap_stats.h): live allocations, and free memory it keeps.
  std::uint64_t heap_in_use_bytes = 0;
  std::uint64_t heap_free_held_bytes = 0;
  std::uint64_t heap_trims = 0;
  // Counters.
  std::uint64_t client_requests = 0;
  std::uint64_t client_malformed = 0;
  std::uint64_t client_refused_connections = 0;
  std::uint64_t client_slow_closed = 0;
  std::uint64_t peer_sent = 0;
  std::uint64_t peer_received = 0;
  std::uint64_t peer_dropped = 0;
  std::uint64_t inbox_drops = 0;
  std::uint64_t forwarded = 0;
  std::uint64_t forward_failures = 0;  // timed out or lost
};

class MetricsExporter {
 public:
  // Starts serving /metrics on `address` (host:port; port 0 picks one). Throws
  // std::runtime_error when it cannot bind, or when this build has no prometheus-cpp.
  static std::unique_ptr<MetricsExporter> start(const std::string& address, const std::string& member);
  // True when this build can serve metrics at all.
  static bool available();

  virtual ~MetricsExporter() = default;
  virtual void update(const MetricsSample& sample) = 0;
  // host:port actually bound.
  virtual std::string address() const = 0;
};

}  // namespace coord::net
