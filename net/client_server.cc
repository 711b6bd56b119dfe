#include "net/client_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "net/client_codec.h"

namespace coord::net {

ClientServer::ClientServer(uv_loop_t* loop, Sink& sink, const ClientServerOptions& options)
    : sink_(sink), options_(options), listener_(loop, [this](Listener& l) { on_incoming(l); }) {}

ClientServer::~ClientServer() {
  close();
  // Normally the loop has run on and every connection has reported on_closed; if not, they must
  // not call back into a destroyed server.
  for (auto& [id, c] : connections_) c->close_detached("shutting down");
}

void ClientServer::start(const std::string& listen_address) { listener_.listen(listen_address); }

void ClientServer::on_incoming(Listener& listener) {
  if (closed_ || connections_.size() >= options_.connections_max) {
    ++stats_.refused_connections;
    listener.refuse("too many client connections");
    return;
  }
  ConnectionOptions options;
  options.frame_payload_bytes_max = std::min(options_.request_bytes_max, client_request_bytes_max);
  options.send_queue_bytes_max = options_.send_queue_bytes_max;
  std::string error;
  Connection* c = listener.accept(*this, options, &error);
  if (c == nullptr) {
    spdlog::warn("client port: accept failed: {}", error);
    return;
  }
  connections_[c->id()] = c;
}

void ClientServer::on_frame(Connection& connection, Frame frame) {
  if (frame.kind != FrameKind::ClientRequest) {
    ++stats_.malformed;
    send(connection, error_response(0, ErrorCode::InvalidRequest,
                                    fmt::format("unexpected frame kind {}", static_cast<unsigned>(frame.kind))));
    return;
  }
  std::string error;
  std::uint64_t id = 0;
  const auto request = decode_request(frame.payload, &error, &id);
  if (!request) {
    ++stats_.malformed;
    spdlog::debug("client port: {}: {}", connection.remote(), error);
    send(connection, error_response(id, ErrorCode::InvalidRequest, error));
    return;
  }
  ++stats_.requests;
  sink_.on_request(connection.id(), *request);
}

void ClientServer::on_frame_error(Connection& connection, FrameError error, const std::string& message) {
  (void)error;
  ++stats_.malformed;
  spdlog::info("client port: {}: {}; closing", connection.remote(), message);
  // The connection closes once this last response has gone out.
  send(connection, error_response(0, ErrorCode::InvalidRequest, message));
}

void ClientServer::respond(ConnectionId connection, const ClientResponse& response) {
  auto it = connections_.find(connection);
  if (it == connections_.end()) return;
  send(*it->second, response);
}

std::size_t ClientServer::queued_bytes(ConnectionId connection) const {
  auto it = connections_.find(connection);
  return it == connections_.end() ? 0 : it->second->queued_bytes();
}

ConnectionBytes ClientServer::connection_bytes() const {
  ConnectionBytes total;
  for (const auto& [id, c] : connections_) total.add(*c);
  return total;
}

void ClientServer::send(Connection& connection, const ClientResponse& response) {
  if (connection.send_frame(FrameKind::ClientResponse, encode_response(response))) return;
  if (connection.closing()) return;
  ++stats_.slow_clients_closed;
  spdlog::warn("client port: {} does not read its responses ({} bytes queued); closing", connection.remote(),
               connection.queued_bytes());
  connection.close("send queue full");
}

void ClientServer::on_closed(Connection& connection, const std::string& reason) {
  connections_.erase(connection.id());
  spdlog::debug("client port: {} closed: {}", connection.remote(), reason);
  sink_.on_connection_closed(connection.id());
}

void ClientServer::close() {
  if (closed_) return;
  closed_ = true;
  listener_.close();
  for (auto& [id, c] : connections_) c->close("shutting down");
}

}  // namespace coord::net
