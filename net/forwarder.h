// Forwarding: a follower that receives a write (or a LeaseTtl query) sends it on to the leader's
// client port, as a client would, and relays the leader's answer to the client that asked,
// under the client's own request id. The request is sent as it came, marked `forwarded`: a
// write's command bytes, and with them its session and sequence, are unchanged, so a retry
// through any member is still applied at most once; and the leader never forwards it again (one
// hop), it answers NotLeader instead, which the follower relays and the client follows.
//
// One connection per leader address, dialled on first use and kept; frames wait in a bounded
// list until the connect finishes. A forward not answered in `timeout_ms` gets Timeout; when
// the connection to the leader is lost, its forwards get Unavailable (both retryable with the
// same sequence: the write may or may not have applied).
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "net/client_messages.h"
#include "net/connection.h"

namespace coord::net {

struct ForwarderOptions {
  std::size_t in_flight_max = 10'000;
  std::uint64_t timeout_ms = 5'000;
  // Leader addresses with a connection at once (there is one leader; old ones linger briefly).
  std::size_t upstreams_max = 16;
  std::size_t send_queue_bytes_max = std::size_t{64} << 20;
};

struct ForwarderStats {
  std::uint64_t forwarded = 0;
  std::uint64_t answered = 0;
  std::uint64_t timed_out = 0;
  std::uint64_t lost = 0;  // the connection to the leader broke first
};

class Forwarder final : private Connection::Handler {
 public:
  using Reply = std::function<void(ConnectionId client, const ClientResponse& response)>;

  Forwarder(uv_loop_t* loop, Reply reply, const ForwarderOptions& options);
  ~Forwarder() override;
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // Sends `request` to `leader_address` (numeric host:port); the answer goes to `reply` later.
  // False when it cannot be sent (too many in flight, a bad address, closed): the caller answers.
  bool forward(ConnectionId client, const ClientRequest& request, const std::string& leader_address);
  // Answers Timeout to forwards older than timeout_ms; call it periodically.
  void expire(std::uint64_t now_ms);
  // Drops every connection and forward (the replica is stopping; its clients are going too).
  void close();

  const ForwarderStats& stats() const { return stats_; }
  std::size_t in_flight() const { return pending_.size(); }
  // Totals over the connections to leaders, with requests waiting for a connect as queued (metrics).
  ConnectionBytes connection_bytes() const;

 private:
  struct Upstream {
    Connection* connection = nullptr;
    bool connected = false;
    std::vector<std::string> waiting;  // request payloads sent once connected
  };
  struct Pending {
    ConnectionId client = 0;
    std::uint64_t client_request_id = 0;
    std::string upstream;
    std::uint64_t deadline_ms = 0;
  };

  Upstream* upstream_for(const std::string& address);
  std::string address_of(const Connection& connection) const;
  void fail_upstream(const std::string& address, const std::string& why);

  void on_frame(Connection& connection, Frame frame) override;
  void on_frame_error(Connection& connection, FrameError error, const std::string& message) override;
  void on_connected(Connection& connection, int status) override;
  void on_closed(Connection& connection, const std::string& reason) override;

  uv_loop_t* loop_;
  Reply reply_;
  ForwarderOptions options_;
  std::map<std::string, Upstream> upstreams_;  // by leader client address
  std::map<std::uint64_t, Pending> pending_;   // by the id we sent
  std::uint64_t next_id_ = 1;
  bool closed_ = false;
  ForwarderStats stats_;
};

}  // namespace coord::net
