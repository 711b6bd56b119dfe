// The client port: accepts connections, verifies every inbound frame and hands well-formed
// requests to the replica; sends the replica's responses back on the connection they came from.
//
// Nothing a client sends can crash the replica or make it buffer without bound:
//   - a frame over the size limit, or of another protocol version, gets an InvalidRequest
//     response (id 0) and the connection is closed: the stream is out of step;
//   - a frame of another kind, or a payload that does not verify as a request, gets an
//     InvalidRequest response (with the request id when it could be read) and the connection
//     stays open: the frame boundary is intact;
//   - a client that stops reading its responses is disconnected once its send queue is full;
//   - connections beyond connections_max are refused.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "net/client_messages.h"
#include "net/connection.h"
#include "net/listener.h"

namespace coord::net {

struct ClientServerOptions {
  // Largest request frame accepted; the server sets it from kv::Limits::command_bytes_max.
  std::size_t request_bytes_max = std::size_t{4} << 20;
  // Responses waiting to go out on one connection; the server raises it to hold at least one
  // response of the largest kind the state machine's limits allow.
  std::size_t send_queue_bytes_max = std::size_t{32} << 20;
  std::size_t connections_max = 1024;
};

struct ClientServerStats {
  std::uint64_t requests = 0;
  std::uint64_t malformed = 0;
  std::uint64_t refused_connections = 0;
  std::uint64_t slow_clients_closed = 0;
};

class ClientServer final : private Connection::Handler {
 public:
  class Sink {
   public:
    virtual ~Sink() = default;
    virtual void on_request(ConnectionId connection, const ClientRequest& request) = 0;
    // The connection closed (either side): what it had opened (watches) can go.
    virtual void on_connection_closed(ConnectionId connection) { (void)connection; }
  };

  ClientServer(uv_loop_t* loop, Sink& sink, const ClientServerOptions& options);
  ~ClientServer() override;
  ClientServer(const ClientServer&) = delete;
  ClientServer& operator=(const ClientServer&) = delete;

  // Binds the client port; throws UvError.
  void start(const std::string& listen_address);
  const std::string& listen_address() const { return listener_.address(); }

  // Sends a response; dropped when the connection is gone (its client gave up).
  void respond(ConnectionId connection, const ClientResponse& response);
  // Bytes waiting to go out on the connection (0 once it is gone).
  std::size_t queued_bytes(ConnectionId connection) const;
  // Totals over every client connection (metrics).
  ConnectionBytes connection_bytes() const;
  std::size_t connections() const { return connections_.size(); }

  void close();
  const ClientServerStats& stats() const { return stats_; }

 private:
  void on_incoming(Listener& listener);
  void on_frame(Connection& connection, Frame frame) override;
  void on_frame_error(Connection& connection, FrameError error, const std::string& message) override;
  void on_closed(Connection& connection, const std::string& reason) override;
  void send(Connection& connection, const ClientResponse& response);

  Sink& sink_;
  ClientServerOptions options_;
  Listener listener_;
  std::map<ConnectionId, Connection*> connections_;
  bool closed_ = false;
  ClientServerStats stats_;
};

}  // namespace coord::net
