// One replica process: a libuv loop with the peer transport, the client port, the tick timer,
// the signal handlers and the ReplicaHost they feed. Everything runs on the loop's thread.
//
// Per loop iteration: the I/O callbacks step every message and request that arrived into the
// core, then a uv_check handle (which runs right after I/O) pumps the host once, so input that
// arrived together shares one Ready and one fsync. The fsync itself runs on libuv's thread pool
// (uv_queue_work); input arriving meanwhile waits in the host's inbox for the next one.
//
// Shutdown (SIGINT, SIGTERM, stop(), or the host failing): every handle is closed, the loop runs
// until they are, then the stores close. Nothing is lost by stopping at any moment: what was
// acknowledged is durable, and a restart resumes from the data directory.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "net/client_server.h"
#include "net/cluster_config.h"
#include "net/data_dir.h"
#include "net/forwarder.h"
#include "net/heap_trim.h"
#include "net/metrics.h"
#include "net/os_random.h"
#include "net/peer_transport.h"
#include "net/replica_host.h"

namespace coord::net {

struct ServerOptions {
  std::string name;
  std::string data_dir;
  std::string listen_peer;    // host:port
  std::string listen_client;  // host:port (port 0: any free port)
  // The client address peers hand to clients; defaults to the bound client address.
  std::string advertise_client;
  std::string initial_cluster;  // "n1=host:port,..."
  std::string cluster_token;    // empty: derived from initial_cluster
  // --initial-cluster-state existing: join a running cluster that added this member (coordctl
  // member add). The id comes from the name (net/member_table.h), the cluster token must be
  // given, and the configuration comes from the leader.
  bool join_existing = false;
  std::string listen_metrics;   // host:port for Prometheus text on /metrics; empty: none
  std::uint64_t tick_ms = 100;
  HostOptions host;
  PeerTransportOptions peer;
  ClientServerOptions client;
  ForwarderOptions forward;
};

// Configuration or data directory problems that stop the server before it serves.
class StartupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Server final : private HostOutput, private PeerTransport::Sink, private ClientServer::Sink {
 public:
  // Validates the options, claims the data directory, binds both ports and opens the stores.
  // Throws StartupError, UvError, DataDirError, storage::LogStoreError or kv::StorageError.
  explicit Server(const ServerOptions& options);
  ~Server() override;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Runs until stopped; returns the process exit status (0 after a clean stop, 1 after the host
  // failed).
  int run();
  void stop(const std::string& reason);

  const MemberConfig& self() const { return self_; }
  const std::string& client_address() const { return client_->listen_address(); }
  const std::string& peer_address() const { return peer_->listen_address(); }
  // The metrics address actually bound ("" without --listen-metrics).
  std::string metrics_address() const { return metrics_ ? metrics_->address() : std::string(); }

 private:
  // The loop outlives every other member: its destructor drains the closes they started.
  struct Loop {
    uv_loop_t loop{};
    Loop();
    ~Loop();
  };

  // HostOutput
  void send(const raft::Message& message) override;
  void respond(ConnectionId connection, const ClientResponse& response) override;
  void fatal(const std::string& reason) override;
  std::size_t queued_bytes(ConnectionId connection) const override;
  bool forward(ConnectionId connection, const ClientRequest& request, const LeaderHint& leader) override;
  void members_changed() override;
  // PeerTransport::Sink
  void on_message(const raft::Message& message) override;
  bool on_peer_hello(const PeerHello& hello) override;
  // ClientServer::Sink
  void on_request(ConnectionId connection, const ClientRequest& request) override;
  void on_connection_closed(ConnectionId connection) override;

  // The host's log writes on libuv's thread pool.
  class UvDiskExecutor final : public DiskExecutor {
   public:
    explicit UvDiskExecutor(uv_loop_t* loop) : loop_(loop) {}
    void run(std::function<void()> work, std::function<void()> done) override;

   private:
    uv_loop_t* loop_;
  };

  void start_handles();
  MetricsSample metrics_sample();

  Loop loop_;
  UvDiskExecutor disk_{&loop_.loop};
  ServerOptions options_;
  ClusterConfig cluster_;
  MemberConfig self_;
  OsRandom random_;
  std::unique_ptr<ReplicaHost> host_;
  std::unique_ptr<ClientServer> client_;
  std::unique_ptr<PeerTransport> peer_;
  std::unique_ptr<Forwarder> forwarder_;
  std::unique_ptr<MetricsExporter> metrics_;  // its own threads; fed on the tick
  HeapTrimmer heap_;                          // samples (mallinfo2 locks the arenas) and trims, once a second
  ReplicaHost::ReadyPeak ready_peak_;         // the host's, taken once a second
  std::uint64_t ready_peak_ms_ = 0;
  bool ready_peak_taken_ = false;
  uv_timer_t* tick_timer_ = nullptr;
  uv_check_t* pump_check_ = nullptr;
  uv_signal_t* sigint_ = nullptr;
  uv_signal_t* sigterm_ = nullptr;
  bool stopping_ = false;
  int exit_code_ = 0;
};

}  // namespace coord::net
