#include "net/peer_transport.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "net/raft_codec.h"
#include "net/uv_util.h"

namespace coord::net {

namespace {

// How often inbound connections are checked for a missing hello.
constexpr std::uint64_t hello_check_interval_ms = 1000;
// We never send on an inbound connection; its queue only needs room for nothing.
constexpr std::size_t inbound_send_queue_bytes_max = 4096;

}  // namespace

PeerTransport::PeerTransport(uv_loop_t* loop, std::string cluster_token, MemberConfig self,
                             std::string self_client_address, Sink& sink, const PeerTransportOptions& options)
    : loop_(loop),
      token_(std::move(cluster_token)),
      self_member_(std::move(self)),
      self_(self_member_.id),
      self_client_address_(std::move(self_client_address)),
      sink_(sink),
      options_(options),
      listener_(loop, [this](Listener& l) { on_incoming(l); }),
      jitter_(std::random_device{}()) {}

void PeerTransport::set_peers(const std::vector<MemberConfig>& peers) {
  if (closed_) return;
  for (auto it = peers_.begin(); it != peers_.end();) {
    auto wanted = std::find_if(peers.begin(), peers.end(), [&](const MemberConfig& m) { return m.id == it->first; });
    if (wanted == peers.end() || wanted->peer_address != it->second.member.peer_address) {
      spdlog::info("peer {} (id {}) {}", it->second.member.name, it->first,
                   wanted == peers.end() ? "is no longer a member: disconnecting" : "moved: redialling");
      auto next = std::next(it);
      drop_peer(it);
      it = next;
    } else {
      it->second.member = *wanted;  // the name may have been learned since
      ++it;
    }
  }
  for (const MemberConfig& m : peers) {
    if (m.id == self_ || peers_.count(m.id) != 0) continue;
    Peer& peer = peers_[m.id];
    peer.owner = this;
    peer.member = m;
    if (hello_timer_ != nullptr) {  // started: dial now; else start() dials
      peer.timer = new_timer(loop_, &peer);
      dial(peer);
    }
  }
}

void PeerTransport::drop_peer(std::map<raft::NodeId, Peer>::iterator it) {
  Peer& peer = it->second;
  close_and_delete(peer.timer);
  peer.timer = nullptr;
  // Its on_closed finds no peer for it any more, so nothing is redialled.
  if (peer.connection != nullptr) peer.connection->close("member removed");
  peers_.erase(it);
}

PeerTransport::~PeerTransport() {
  close();
  // Normally the loop has run on and every connection has reported on_closed; if not, they must
  // not call back into a destroyed transport.
  for (auto& [id, peer] : peers_) {
    if (peer.connection != nullptr) peer.connection->close_detached("shutting down");
  }
  for (auto& [id, in] : inbound_) in.connection->close_detached("shutting down");
}

void PeerTransport::start(const std::string& listen_address) {
  listener_.listen(listen_address);
  hello_timer_ = new_timer(loop_, this);
  uv_check(uv_timer_start(
               hello_timer_,
               [](uv_timer_t* t) {
                 if (t->data != nullptr) static_cast<PeerTransport*>(t->data)->check_hello_deadlines();
               },
               hello_check_interval_ms, hello_check_interval_ms),
           "uv_timer_start");
  for (auto& [id, peer] : peers_) {
    peer.timer = new_timer(loop_, &peer);
    dial(peer);
  }
}

void PeerTransport::dial(Peer& peer) {
  if (closed_ || peer.connection != nullptr) return;
  std::string error;
  const auto address = parse_socket_address(peer.member.peer_address, &error);
  if (!address) {
    // The cluster config was validated at start; this cannot happen short of a bug.
    spdlog::error("peer {}: {}", peer.member.name, error);
    return;
  }
  ConnectionOptions options;
  options.frame_payload_bytes_max = raft_message_bytes_max;
  options.send_queue_bytes_max = options_.send_queue_bytes_max;
  Connection* c = nullptr;
  try {
    c = Connection::create(loop_, *this, options);
  } catch (const UvError& e) {
    schedule_redial(peer, e.what());
    return;
  }
  peer.connection = c;
  peer.connected = false;
  // On failure the connection closes itself and on_closed schedules the next attempt.
  (void)c->connect(reinterpret_cast<const sockaddr*>(&*address));
}

void PeerTransport::schedule_redial(Peer& peer, const std::string& reason) {
  if (closed_ || peer.timer == nullptr) return;
  const bool first = peer.backoff_ms == 0;
  peer.backoff_ms = first ? options_.reconnect_backoff_min_ms
                          : std::min(peer.backoff_ms * 2, options_.reconnect_backoff_max_ms);
  // Jitter spreads the redials of a cluster that lost a member all at once.
  const std::uint64_t delay_ms = peer.backoff_ms / 2 + jitter_() % (peer.backoff_ms / 2 + 1);
  if (first) {
    spdlog::info("peer {} ({}) unreachable: {}; redialling with backoff", peer.member.name,
                 peer.member.peer_address, reason);
  } else {
    spdlog::debug("peer {} ({}) redial in {} ms: {}", peer.member.name, peer.member.peer_address, delay_ms, reason);
  }
  const int rc = uv_timer_start(
      peer.timer,
      [](uv_timer_t* t) {
        if (t->data == nullptr) return;
        Peer& p = *static_cast<Peer*>(t->data);
        p.owner->dial(p);
      },
      delay_ms, 0);
  if (rc < 0) spdlog::error("peer {}: uv_timer_start: {}", peer.member.name, uv_error_text(rc));
}

void PeerTransport::redial_now(raft::NodeId id) {
  auto it = peers_.find(id);
  if (it == peers_.end() || closed_) return;
  Peer& peer = it->second;
  // Only a peer we are waiting to redial: a connection (or an attempt) we have is left alone.
  if (peer.connection != nullptr || peer.timer == nullptr) return;
  // It just dialled us, so it is up (a restarted member, say): our messages, a leader's
  // heartbeats among them, should not wait out up to reconnect_backoff_max_ms more.
  (void)uv_timer_stop(peer.timer);
  peer.backoff_ms = 0;
  spdlog::info("peer {} ({}) dialled us: redialling it now", peer.member.name, peer.member.peer_address);
  dial(peer);
}

void PeerTransport::send(const raft::Message& message) {
  auto it = peers_.find(message.to);
  if (it == peers_.end()) {
    ++stats_.dropped_disconnected;
    return;
  }
  Peer& peer = it->second;
  // A connection already closing (this member stopping, or the link just failed) drops what
  // is sent like a lost link, not like a full queue: a warning about a queue of 0 bytes at
  // every shutdown said nothing true.
  if (!peer.connected || peer.connection == nullptr || peer.connection->closing()) {
    ++stats_.dropped_disconnected;
    return;
  }
  if (!peer.connection->send_frame(FrameKind::RaftMessage, encode(message))) {
    ++stats_.dropped_queue_full;
    if (peer.dropped_since_log++ % 1000 == 0) {
      spdlog::warn("peer {}: send queue full ({} bytes), dropping messages", peer.member.name,
                   peer.connection->queued_bytes());
    }
    return;
  }
  ++stats_.sent;
}

void PeerTransport::on_incoming(Listener& listener) {
  if (closed_ || inbound_.size() >= options_.inbound_connections_max) {
    ++stats_.refused_connections;
    listener.refuse("too many peer connections");
    return;
  }
  ConnectionOptions options;
  options.frame_payload_bytes_max = raft_message_bytes_max;
  options.send_queue_bytes_max = inbound_send_queue_bytes_max;
  std::string error;
  Connection* c = listener.accept(*this, options, &error);
  if (c == nullptr) {
    spdlog::warn("peer port: accept failed: {}", error);
    return;
  }
  inbound_[c->id()] = Inbound{c, raft::kNoNode, uv_now(loop_)};
}

void PeerTransport::check_hello_deadlines() {
  const std::uint64_t now = uv_now(loop_);
  for (auto& [id, in] : inbound_) {
    if (in.from == raft::kNoNode && now - in.accepted_at_ms >= options_.hello_timeout_ms) {
      spdlog::warn("peer port: {} sent no hello in {} ms; closing", in.connection->remote(), options_.hello_timeout_ms);
      in.connection->close("no hello");
    }
  }
}

void PeerTransport::on_frame(Connection& connection, Frame frame) {
  auto it = inbound_.find(connection.id());
  if (it == inbound_.end()) {
    // Peers never write on the connections we opened to them.
    if (Peer* peer = outbound_peer(connection)) {
      spdlog::warn("peer {}: unexpected frame on our outbound connection; closing", peer->member.name);
    }
    connection.close("unexpected frame");
    return;
  }
  Inbound& in = it->second;
  std::string error;
  if (in.from == raft::kNoNode) {
    if (frame.kind != FrameKind::PeerHello) {
      spdlog::warn("peer port: {} sent frame kind {} before its hello; closing", connection.remote(),
                   static_cast<unsigned>(frame.kind));
      connection.close("no hello");
      return;
    }
    const auto hello = decode_hello(frame.payload, &error);
    if (!hello) {
      spdlog::warn("peer port: {}: {}; closing", connection.remote(), error);
      connection.close(error);
      return;
    }
    if (hello->cluster != token_ || hello->to != self_ || hello->from == raft::kNoNode || hello->from == self_ ||
        !sink_.on_peer_hello(*hello)) {
      spdlog::warn("peer port: refusing {}: hello from {} (id {}) of cluster {} for id {}; we are id {} of {}",
                   connection.remote(), hello->name, hello->from, hello->cluster, hello->to, self_, token_);
      connection.close("hello refused");
      return;
    }
    in.from = hello->from;
    spdlog::info("peer {} connected from {} client_address={}", hello->name, connection.remote(), hello->client_address);
    redial_now(hello->from);
    return;
  }
  if (frame.kind != FrameKind::RaftMessage) {
    spdlog::warn("peer port: unexpected frame kind {} from member {}; closing", static_cast<unsigned>(frame.kind), in.from);
    connection.close("unexpected frame kind");
    return;
  }
  auto message = decode(frame.payload, &error);
  if (!message) {
    spdlog::warn("peer port: bad raft message from member {}: {}; closing", in.from, error);
    connection.close(error);
    return;
  }
  if (message->from != in.from || message->to != self_) {
    spdlog::warn("peer port: message from {} to {} on the connection of member {}; closing", message->from,
                 message->to, in.from);
    connection.close("misaddressed message");
    return;
  }
  ++stats_.received;
  sink_.on_message(*message);
}

void PeerTransport::on_frame_error(Connection& connection, FrameError error, const std::string& message) {
  (void)error;
  spdlog::warn("peer port: {}: {}; closing", connection.remote(), message);
}

void PeerTransport::on_connected(Connection& connection, int status) {
  Peer* peer = outbound_peer(connection);
  if (peer == nullptr || status < 0) return;  // on_closed schedules the redial
  PeerHello hello{token_, self_, peer->member.id, self_member_.name, self_client_address_, self_member_.peer_address};
  if (!connection.send_frame(FrameKind::PeerHello, encode_hello(hello))) {
    connection.close("hello not sent");
    return;
  }
  peer->connected = true;
  peer->backoff_ms = 0;
  peer->dropped_since_log = 0;
  spdlog::info("peer {} ({}) dialled", peer->member.name, peer->member.peer_address);
}

void PeerTransport::on_closed(Connection& connection, const std::string& reason) {
  if (inbound_.erase(connection.id()) > 0) {
    spdlog::debug("peer port: inbound connection from {} closed: {}", connection.remote(), reason);
    return;
  }
  Peer* peer = outbound_peer(connection);
  if (peer == nullptr) return;
  const bool was_connected = peer->connected;
  peer->connection = nullptr;
  peer->connected = false;
  if (closed_) return;
  if (was_connected) spdlog::info("peer {} connection lost: {}", peer->member.name, reason);
  schedule_redial(*peer, reason);
}

PeerTransport::Peer* PeerTransport::outbound_peer(const Connection& connection) {
  for (auto& [id, peer] : peers_) {
    if (peer.connection == &connection) return &peer;
  }
  return nullptr;
}

ConnectionBytes PeerTransport::connection_bytes() const {
  ConnectionBytes total;
  for (const auto& [id, peer] : peers_) {
    if (peer.connection != nullptr) total.add(*peer.connection);
  }
  for (const auto& [id, inbound] : inbound_) {
    if (inbound.connection != nullptr) total.add(*inbound.connection);
  }
  return total;
}

void PeerTransport::close() {
  if (closed_) return;
  closed_ = true;
  listener_.close();
  close_and_delete(hello_timer_);
  hello_timer_ = nullptr;
  for (auto& [id, peer] : peers_) {
    close_and_delete(peer.timer);
    peer.timer = nullptr;
    if (peer.connection != nullptr) peer.connection->close("shutting down");
  }
  for (auto& [id, in] : inbound_) in.connection->close("shutting down");
}

}  // namespace coord::net
