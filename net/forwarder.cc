#include "net/forwarder.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <utility>

#include "net/client_codec.h"
#include "net/uv_util.h"

namespace coord::net {

Forwarder::Forwarder(uv_loop_t* loop, Reply reply, const ForwarderOptions& options)
    : loop_(loop), reply_(std::move(reply)), options_(options) {}

Forwarder::~Forwarder() {
  closed_ = true;
  for (auto& [address, up] : upstreams_) {
    if (up.connection != nullptr) up.connection->close_detached("shutting down");
  }
}

bool Forwarder::forward(ConnectionId client, const ClientRequest& request, const std::string& leader_address) {
  if (closed_ || pending_.size() >= options_.in_flight_max) return false;
  Upstream* up = upstream_for(leader_address);
  if (up == nullptr) return false;
  ClientRequest out = request;
  out.id = next_id_++;
  out.forwarded = true;
  std::string payload = encode_request(out);
  if (up->connected) {
    if (!up->connection->send_frame(FrameKind::ClientRequest, payload)) return false;
  } else {
    up->waiting.push_back(std::move(payload));
  }
  pending_[out.id] = Pending{client, request.id, leader_address, uv_now(loop_) + options_.timeout_ms};
  ++stats_.forwarded;
  return true;
}

Forwarder::Upstream* Forwarder::upstream_for(const std::string& address) {
  if (auto it = upstreams_.find(address); it != upstreams_.end()) return &it->second;
  if (upstreams_.size() >= options_.upstreams_max) {
    // Leaders come and go; drop the connection to one nobody is waiting on.
    for (auto& [other, up] : upstreams_) {
      bool busy = false;
      for (const auto& [id, p] : pending_) busy = busy || p.upstream == other;
      if (!busy && up.connection != nullptr) {
        up.connection->close("not the leader any more");
        break;
      }
    }
    return nullptr;  // the next forward finds room once the close completes
  }
  std::string error;
  const auto socket_address = parse_socket_address(address, &error);
  if (!socket_address) {
    spdlog::warn("forwarding: leader address {}: {}", address, error);
    return nullptr;
  }
  ConnectionOptions options;
  options.frame_payload_bytes_max = client_response_bytes_max;
  options.send_queue_bytes_max = options_.send_queue_bytes_max;
  Connection* c = nullptr;
  try {
    c = Connection::create(loop_, *this, options);
  } catch (const UvError& e) {
    spdlog::warn("forwarding: {}", e.what());
    return nullptr;
  }
  Upstream& up = upstreams_[address];
  up.connection = c;
  // A connect that cannot start closes the connection, and on_closed forgets the upstream.
  if (c->connect(reinterpret_cast<const sockaddr*>(&*socket_address)) < 0) return nullptr;
  return &upstreams_[address];
}

std::string Forwarder::address_of(const Connection& connection) const {
  for (const auto& [address, up] : upstreams_) {
    if (up.connection == &connection) return address;
  }
  return {};
}

void Forwarder::on_connected(Connection& connection, int status) {
  if (status < 0) return;  // on_closed follows
  const std::string address = address_of(connection);
  auto it = upstreams_.find(address);
  if (it == upstreams_.end()) return;
  Upstream& up = it->second;
  up.connected = true;
  for (const std::string& payload : up.waiting) {
    if (!connection.send_frame(FrameKind::ClientRequest, payload)) {
      connection.close("send queue full");
      return;
    }
  }
  up.waiting.clear();
}

void Forwarder::on_frame(Connection& connection, Frame frame) {
  if (frame.kind != FrameKind::ClientResponse) return;  // a newer leader's kind: not ours
  std::string error;
  auto response = decode_response(frame.payload, &error);
  if (!response) {
    spdlog::warn("forwarding: malformed response from {}: {}; closing", connection.remote(), error);
    connection.close(error);
    return;
  }
  auto it = pending_.find(response->id);
  if (it == pending_.end()) return;  // timed out already
  const Pending p = it->second;
  pending_.erase(it);
  response->id = p.client_request_id;
  ++stats_.answered;
  reply_(p.client, *response);
}

void Forwarder::on_frame_error(Connection& connection, FrameError error, const std::string& message) {
  (void)error;
  spdlog::warn("forwarding: {}: {}; closing", connection.remote(), message);
}

void Forwarder::fail_upstream(const std::string& address, const std::string& why) {
  std::vector<Pending> lost;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.upstream != address) {
      ++it;
      continue;
    }
    lost.push_back(it->second);
    it = pending_.erase(it);
  }
  for (const Pending& p : lost) {
    ++stats_.lost;
    reply_(p.client, error_response(p.client_request_id, ErrorCode::Unavailable,
                                    fmt::format("forwarding to the leader at {} failed ({}); the write may or may "
                                                "not have applied: retry with the same sequence",
                                                address, why)));
  }
}

void Forwarder::on_closed(Connection& connection, const std::string& reason) {
  const std::string address = address_of(connection);
  if (address.empty()) return;
  upstreams_.erase(address);
  if (closed_) return;
  spdlog::debug("forwarding: connection to {} closed: {}", address, reason);
  fail_upstream(address, reason);
}

void Forwarder::expire(std::uint64_t now_ms) {
  std::vector<Pending> late;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline_ms > now_ms) {
      ++it;
      continue;
    }
    late.push_back(it->second);
    it = pending_.erase(it);
  }
  for (const Pending& p : late) {
    ++stats_.timed_out;
    reply_(p.client, error_response(p.client_request_id, ErrorCode::Timeout,
                                    "the leader did not answer the forwarded request in time; the write may still "
                                    "apply: retry with the same sequence"));
  }
}

ConnectionBytes Forwarder::connection_bytes() const {
  ConnectionBytes total;
  for (const auto& [address, upstream] : upstreams_) {
    if (upstream.connection != nullptr) total.add(*upstream.connection);
    for (const std::string& w : upstream.waiting) {
      total.queued += w.size();
      total.reserved += w.capacity();
    }
  }
  return total;
}

void Forwarder::close() {
  if (closed_) return;
  closed_ = true;
  pending_.clear();
  for (auto& [address, up] : upstreams_) {
    if (up.connection != nullptr) up.connection->close("shutting down");
  }
}

}  // namespace coord::net
