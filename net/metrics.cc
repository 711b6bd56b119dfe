#include "net/metrics.h"

#include <stdexcept>

#ifdef COORD_HAVE_PROMETHEUS
#include <fmt/format.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <exception>
#include <functional>
#include <utility>
#include <vector>
#endif

namespace coord::net {

#ifdef COORD_HAVE_PROMETHEUS

namespace {

class PrometheusExporter final : public MetricsExporter {
 public:
  PrometheusExporter(const std::string& address, const std::string& member)
      : registry_(std::make_shared<prometheus::Registry>()) {
    const prometheus::Labels labels{{"member", member}};
    auto gauge = [&](const char* name, const char* help, std::function<double(const MetricsSample&)> read) {
      auto& g = prometheus::BuildGauge().Name(name).Help(help).Register(*registry_).Add(labels);
      gauges_.push_back({&g, std::move(read)});
    };
    auto counter = [&](const char* name, const char* help, std::function<std::uint64_t(const MetricsSample&)> read) {
      auto& c = prometheus::BuildCounter().Name(name).Help(help).Register(*registry_).Add(labels);
      counters_.push_back({&c, std::move(read), 0});
    };
    auto d = [](std::uint64_t v) { return static_cast<double>(v); };
    gauge("coord_raft_leader", "1 when this member leads", [](const MetricsSample& s) { return s.leader ? 1.0 : 0.0; });
    gauge("coord_raft_term", "Current Raft term", [d](const MetricsSample& s) { return d(s.term); });
    gauge("coord_raft_commit_index", "Highest log index known committed", [d](const MetricsSample& s) { return d(s.commit_index); });
    gauge("coord_raft_applied_index", "Highest log index applied to the state", [d](const MetricsSample& s) { return d(s.applied_index); });
    gauge("coord_raft_log_last_index", "Last index in the Raft log", [d](const MetricsSample& s) { return d(s.log_last_index); });
    gauge("coord_raft_snapshot_index", "Index of the latest snapshot", [d](const MetricsSample& s) { return d(s.snapshot_index); });
    gauge("coord_kv_revision", "Store revision", [d](const MetricsSample& s) { return d(s.revision); });
    gauge("coord_kv_compact_revision", "Revision history starts at", [d](const MetricsSample& s) { return d(s.compact_revision); });
    gauge("coord_kv_leases", "Leases alive", [d](const MetricsSample& s) { return d(s.leases); });
    gauge("coord_kv_watchers", "Watch streams open on this member", [d](const MetricsSample& s) { return d(s.watchers); });
    gauge("coord_forwards_in_flight", "Writes forwarded to the leader, not answered yet", [d](const MetricsSample& s) { return d(s.forwards_in_flight); });
    gauge("coord_client_connections", "Client connections open", [d](const MetricsSample& s) { return d(s.client_connections); });
    gauge("coord_client_queued_bytes", "Response bytes waiting to go out, all client connections", [d](const MetricsSample& s) { return d(s.client_queued_bytes); });
    gauge("coord_client_reserved_bytes", "Bytes allocated by client connections' buffers", [d](const MetricsSample& s) { return d(s.client_reserved_bytes); });
    gauge("coord_peer_queued_bytes", "Raft message bytes waiting to go out, all peer connections", [d](const MetricsSample& s) { return d(s.peer_queued_bytes); });
    gauge("coord_peer_reserved_bytes", "Bytes allocated by peer connections' buffers", [d](const MetricsSample& s) { return d(s.peer_reserved_bytes); });
    gauge("coord_forward_queued_bytes", "Forwarded request bytes waiting to go to the leader", [d](const MetricsSample& s) { return d(s.forward_queued_bytes); });
    gauge("coord_forward_reserved_bytes", "Bytes allocated by the connections to the leader", [d](const MetricsSample& s) { return d(s.forward_reserved_bytes); });
    gauge("coord_inbox_bytes", "Estimated bytes of inputs waiting for the log write in flight", [d](const MetricsSample& s) { return d(s.inbox_bytes); });
    gauge("coord_ready_messages_peak", "Raft messages in the largest Ready of the last second", [d](const MetricsSample& s) { return d(s.ready_messages_peak); });
    gauge("coord_ready_message_bytes_peak", "Entry and snapshot bytes those messages carried", [d](const MetricsSample& s) { return d(s.ready_message_bytes_peak); });
    gauge("coord_heap_in_use_bytes", "Bytes in live heap allocations (malloc)", [d](const MetricsSample& s) { return d(s.heap_in_use_bytes); });
    gauge("coord_heap_free_held_bytes", "Free heap bytes malloc keeps from the OS", [d](const MetricsSample& s) { return d(s.heap_free_held_bytes); });
    counter("coord_client_requests_total", "Well-formed client requests", [](const MetricsSample& s) { return s.client_requests; });
    counter("coord_client_malformed_total", "Client frames refused as malformed", [](const MetricsSample& s) { return s.client_malformed; });
    counter("coord_client_refused_connections_total", "Client connections refused (limit)", [](const MetricsSample& s) { return s.client_refused_connections; });
    counter("coord_client_slow_closed_total", "Client connections closed for not reading", [](const MetricsSample& s) { return s.client_slow_closed; });
    counter("coord_peer_sent_total", "Raft messages sent", [](const MetricsSample& s) { return s.peer_sent; });
    counter("coord_peer_received_total", "Raft messages received", [](const MetricsSample& s) { return s.peer_received; });
    counter("coord_peer_dropped_total", "Raft messages dropped (peer down or queue full)", [](const MetricsSample& s) { return s.peer_dropped; });
    counter("coord_inbox_drops_total", "Inputs refused while a log write was in flight", [](const MetricsSample& s) { return s.inbox_drops; });
    counter("coord_forwarded_total", "Writes forwarded to the leader", [](const MetricsSample& s) { return s.forwarded; });
    counter("coord_forward_failures_total", "Forwarded writes timed out or lost", [](const MetricsSample& s) { return s.forward_failures; });
    counter("coord_heap_trims_total", "Times free heap memory was given back to the OS (malloc_trim)", [](const MetricsSample& s) { return s.heap_trims; });

    exposer_ = std::make_unique<prometheus::Exposer>(address, 1);
    exposer_->RegisterCollectable(registry_);
    const std::vector<int> ports = exposer_->GetListeningPorts();
    const std::string host = address.substr(0, address.rfind(':'));
    address_ = ports.empty() ? address : fmt::format("{}:{}", host, ports.front());
  }

  void update(const MetricsSample& sample) override {
    for (auto& g : gauges_) g.gauge->Set(g.read(sample));
    for (auto& c : counters_) {
      const std::uint64_t now = c.read(sample);
      if (now > c.last) c.counter->Increment(static_cast<double>(now - c.last));
      c.last = now;
    }
  }

  std::string address() const override { return address_; }

 private:
  struct GaugeOf {
    prometheus::Gauge* gauge;
    std::function<double(const MetricsSample&)> read;
  };
  struct CounterOf {
    prometheus::Counter* counter;
    std::function<std::uint64_t(const MetricsSample&)> read;
    std::uint64_t last;
  };

  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<GaugeOf> gauges_;
  std::vector<CounterOf> counters_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string address_;
};

}  // namespace

bool MetricsExporter::available() { return true; }

std::unique_ptr<MetricsExporter> MetricsExporter::start(const std::string& address, const std::string& member) {
  try {
    return std::make_unique<PrometheusExporter>(address, member);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("--listen-metrics {}: {}", address, e.what()));
  }
}

#else

bool MetricsExporter::available() { return false; }

std::unique_ptr<MetricsExporter> MetricsExporter::start(const std::string& address, const std::string& member) {
  (void)member;
  throw std::runtime_error("--listen-metrics " + address +
                           ": this coordd was built without prometheus-cpp (install prometheus-cpp-dev and rebuild)");
}

#endif

}  // namespace coord::net
