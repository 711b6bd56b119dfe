// Raft messages between replicas over TCP. Each replica dials every other one and sends only on
// the connection it opened (one outbound connection per peer); it receives on the connections
// the others opened to it. So each direction has one ordered stream and one owner that
// reconnects it, and no tie-breaking between two simultaneous dials is needed.
//
// An outbound connection starts with a hello (net/peer_codec.h); the acceptor checks cluster
// token, sender id and its own id, and lets its sink check the sender's name, before it takes
// any Raft message from that connection, and then checks every message's `from` and `to`
// against the hello. Anything else closes it. The set of peers to dial changes with the
// membership (set_peers); a hello from a member not dialled yet is accepted (a member added at
// runtime dials the others before they applied the change that added it).
//
// Raft tolerates lost messages (it retries on its own timers), so the transport never blocks
// the loop and never buffers without bound: messages to a peer that is not connected, or whose
// send queue is full, are dropped and counted. A lost connection is redialled with exponential
// backoff and jitter, and at once when the peer's own hello shows it is up again.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "net/cluster_config.h"
#include "net/connection.h"
#include "net/listener.h"
#include "net/peer_codec.h"
#include "raft/types.h"

namespace coord::net {

struct PeerTransportOptions {
  // Bytes waiting to go to one peer; an Append is at most ~raft::Config::append_bytes_max (or
  // one entry, up to command_bytes_max: net/server.cc raises this to hold two of those). Beyond
  // it messages are dropped and Raft resends: a peer on a slow or stopped link costs at most
  // this much memory per peer, and what is queued is never older than the link can drain in a
  // few seconds. (64 MiB let a leader with a slowed link hold ~200 MiB in a 5-member soak.)
  std::size_t send_queue_bytes_max = std::size_t{8} << 20;
  std::uint64_t reconnect_backoff_min_ms = 50;
  std::uint64_t reconnect_backoff_max_ms = 2000;
  // Inbound peer connections at once; a cluster needs one per peer, the rest is slack for
  // reconnects racing the close of the old connection.
  std::size_t inbound_connections_max = 64;
  // An inbound connection must say hello within this long, or it is closed.
  std::uint64_t hello_timeout_ms = 5000;
};

struct PeerTransportStats {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t dropped_disconnected = 0;
  std::uint64_t dropped_queue_full = 0;
  std::uint64_t refused_connections = 0;
};

class PeerTransport final : private Connection::Handler {
 public:
  class Sink {
   public:
    virtual ~Sink() = default;
    virtual void on_message(const raft::Message& message) = 0;
    // False refuses the connection (the id belongs to a member of another name).
    virtual bool on_peer_hello(const PeerHello& hello) = 0;
  };

  PeerTransport(uv_loop_t* loop, std::string cluster_token, MemberConfig self,
                std::string self_client_address, Sink& sink, const PeerTransportOptions& options = {});
  ~PeerTransport() override;
  PeerTransport(const PeerTransport&) = delete;
  PeerTransport& operator=(const PeerTransport&) = delete;

  // Binds the peer port (throws UvError) and starts dialling every peer.
  void start(const std::string& listen_address);
  // The members to dial (self is skipped): new ones are dialled, missing ones disconnected, one
  // whose address changed is redialled.
  void set_peers(const std::vector<MemberConfig>& peers);
  const std::string& listen_address() const { return listener_.address(); }

  // Sends or drops (see above); never blocks.
  void send(const raft::Message& message);

  // Closes the listener, every connection and timer. The loop must run on until they are closed.
  void close();

  const PeerTransportStats& stats() const { return stats_; }
  // Totals over every peer connection, outbound and inbound (metrics).
  ConnectionBytes connection_bytes() const;

 private:
  struct Peer {
    PeerTransport* owner = nullptr;  // for the timer callback
    MemberConfig member;
    Connection* connection = nullptr;  // outbound; null while disconnected
    bool connected = false;            // the connect finished and the hello is queued
    uv_timer_t* timer = nullptr;       // reconnect backoff
    std::uint64_t backoff_ms = 0;
    std::uint64_t dropped_since_log = 0;
  };
  struct Inbound {
    Connection* connection = nullptr;
    raft::NodeId from = raft::kNoNode;  // set by the hello
    std::uint64_t accepted_at_ms = 0;
  };

  void on_incoming(Listener& listener);
  void dial(Peer& peer);
  void schedule_redial(Peer& peer, const std::string& reason);
  // The peer's hello came in: if we are backing off from redialling it, dial it now.
  void redial_now(raft::NodeId id);
  void check_hello_deadlines();

  // Connection::Handler
  void on_frame(Connection& connection, Frame frame) override;
  void on_frame_error(Connection& connection, FrameError error, const std::string& message) override;
  void on_connected(Connection& connection, int status) override;
  void on_closed(Connection& connection, const std::string& reason) override;

  Peer* outbound_peer(const Connection& connection);
  void drop_peer(std::map<raft::NodeId, Peer>::iterator it);

  uv_loop_t* loop_;
  std::string token_;
  MemberConfig self_member_;
  raft::NodeId self_;
  std::string self_client_address_;
  Sink& sink_;
  PeerTransportOptions options_;
  Listener listener_;
  std::map<raft::NodeId, Peer> peers_;
  std::map<ConnectionId, Inbound> inbound_;
  uv_timer_t* hello_timer_ = nullptr;
  std::mt19937_64 jitter_;
  bool closed_ = false;
  PeerTransportStats stats_;
};

}  // namespace coord::net
