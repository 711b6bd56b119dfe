#include "bench/coord_target.h"

#include <poll.h>
#include <sys/socket.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <stdexcept>
#include <unordered_map>

#include "bench/socket.h"
#include "kv/codec.h"
#include "net/client.h"
#include "net/client_codec.h"
#include "net/frame.h"

namespace coord::bench {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds connect_timeout{3000};
constexpr std::size_t read_chunk_bytes = 256 << 10;
// Keys loaded per round trip while preloading.
constexpr int preload_inflight = 256;

// A client-port connection for the benchmark's own loop: framed requests out (buffered while the
// socket is full), framed responses in.
class ClientSocket {
 public:
  explicit ClientSocket(const std::string& endpoint) : socket_(Socket::connect(endpoint, connect_timeout)) {}

  void send(const net::ClientRequest& request) {
    net::append_frame(out_, net::FrameKind::ClientRequest, net::encode_request(request));
    flush();
  }

  // Waits until `until` at the latest (less once something arrived), sending what is still
  // buffered meanwhile, and calls `on` for each response received. Throws std::runtime_error
  // when the connection is lost or a response cannot be decoded.
  template <typename OnResponse>
  void receive(Clock::time_point until, OnResponse&& on) {
    for (;;) {
      pollfd p{socket_.fd(), static_cast<short>(POLLIN | (out_.size() > out_sent_ ? POLLOUT : 0)), 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      const int rc = ::poll(&p, 1, static_cast<int>(std::max<long long>(left, 0)));
      if (rc < 0 && errno != EINTR) throw std::runtime_error(fmt::format("poll: {}", std::strerror(errno)));
      if (rc <= 0) return;
      if (p.revents & POLLOUT) flush();
      if ((p.revents & (POLLIN | POLLHUP | POLLERR)) && read(on) > 0) return;
      if (Clock::now() >= until) return;
    }
  }

 private:
  void flush() {
    while (out_sent_ < out_.size()) {
      const ssize_t n = ::send(socket_.fd(), out_.data() + out_sent_, out_.size() - out_sent_, MSG_NOSIGNAL);
      if (n > 0) {
        out_sent_ += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      throw std::runtime_error(fmt::format("send: {}", std::strerror(errno)));
    }
    if (out_sent_ == out_.size()) {
      out_.clear();
      out_sent_ = 0;
    } else if (out_sent_ > (1u << 20)) {
      out_.erase(0, out_sent_);
      out_sent_ = 0;
    }
  }

  // One recv; returns how many responses it completed.
  template <typename OnResponse>
  std::size_t read(OnResponse& on) {
    const ssize_t n = ::recv(socket_.fd(), buffer_.data(), buffer_.size(), 0);
    if (n == 0) throw std::runtime_error("connection closed by the server");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      throw std::runtime_error(fmt::format("recv: {}", std::strerror(errno)));
    }
    reader_.feed(std::string_view(buffer_.data(), static_cast<std::size_t>(n)));
    std::size_t count = 0;
    while (auto frame = reader_.next()) {
      std::string error;
      const auto response = net::decode_response(frame->payload, &error);
      if (!response) throw std::runtime_error("undecodable response: " + error);
      on(*response);
      ++count;
    }
    if (reader_.error() != net::FrameError::None) throw std::runtime_error(reader_.error_message());
    return count;
  }

  Socket socket_;
  std::string out_;
  std::size_t out_sent_ = 0;
  std::string buffer_ = std::string(read_chunk_bytes, '\0');
  net::FrameReader reader_{net::client_response_bytes_max};
};

class CoordConnection final : public Connection {
 public:
  CoordConnection(const Options& options, const std::string& endpoint)
      : options_(options), socket_(endpoint), value_(options.value_size, 'v') {
    std::random_device seed;
    session_ = (static_cast<std::uint64_t>(seed()) << 32 | seed()) | 1;  // never 0 (0 means no session)
  }

  void issue(std::uint64_t tag, Op op, std::size_t key) override {
    net::ClientRequest request;
    request.id = tag;
    const std::string path = key_path(options_, key);
    switch (op) {
      case Op::Put:
        request.kind = net::RequestKind::Write;
        request.command = command(kv::single(kv::Op::put(path, value_)));
        break;
      case Op::Get:
      case Op::GetSerializable:
        request.kind = net::RequestKind::Get;
        request.path = path;
        request.serializable = op == Op::GetSerializable;
        break;
      case Op::Cas: {
        // Compare-and-set on the version this client last saw; when it lost the race, the
        // else-branch reads the current version for its next attempt (one round trip either
        // way, as an etcd client does with a Txn).
        kv::Txn txn;
        txn.compares.push_back(kv::Compare::version(path, kv::CompareOp::Equal, versions_[key]));
        txn.success.push_back(kv::Op::put(path, value_));
        txn.failure.push_back(kv::Op::get(path));
        request.kind = net::RequestKind::Write;
        request.command = command(std::move(txn));
        cas_keys_[tag] = key;
        break;
      }
      case Op::Txn: {
        // Two keys written together if the first exists: the shape of a multi-key update.
        const std::string other = key_path(options_, (key + 1) % std::max<std::size_t>(options_.keys, 1));
        kv::Txn txn;
        txn.compares.push_back(kv::Compare::exists(path));
        txn.success.push_back(kv::Op::put(path, value_));
        txn.success.push_back(kv::Op::put(other, value_));
        txn.failure.push_back(kv::Op::put(path, value_));
        request.kind = net::RequestKind::Write;
        request.command = command(std::move(txn));
        break;
      }
    }
    socket_.send(request);
  }

  void wait(Clock::time_point until, std::vector<Completion>& out) override {
    socket_.receive(until, [&](const net::ClientResponse& response) { out.push_back(complete(response)); });
  }

 private:
  std::string command(kv::Body body) {
    kv::Command c;
    c.session_id = session_;
    c.sequence = ++sequence_;
    c.body = std::move(body);
    return kv::encode_command(c);
  }

  Completion complete(const net::ClientResponse& response) {
    Completion c;
    c.tag = response.id;
    c.ok = response.ok();
    if (!c.ok) c.error = net::to_string(response.error);
    if (const auto it = cas_keys_.find(response.id); it != cas_keys_.end()) {
      const std::size_t key = it->second;
      cas_keys_.erase(it);
      if (c.ok && response.result) {
        const kv::Result& r = *response.result;
        if (r.succeeded) {
          ++versions_[key];
        } else if (!r.ops.empty() && r.ops.front().node) {
          versions_[key] = r.ops.front().node->version;
        }
      }
    }
    return c;
  }

  const Options& options_;
  ClientSocket socket_;
  std::string value_;
  std::uint64_t session_ = 0;
  std::uint64_t sequence_ = 0;
  std::unordered_map<std::size_t, std::uint64_t> versions_;  // Cas: key -> last seen version
  std::unordered_map<std::uint64_t, std::size_t> cas_keys_;  // Cas: outstanding tag -> key
};

// Watches on the client port: every Watch request pipelined, each answered once (the watch id)
// before any frame of its stream; a member takes up to watches_per_connection_max on one
// connection (net/watch_streams.h).
class CoordWatchConnection final : public WatchConnection {
 public:
  explicit CoordWatchConnection(const std::string& endpoint) : socket_(endpoint) {}

  void open(const std::string& dir, int count, Clock::time_point deadline) override {
    for (int i = 0; i < count; ++i) {
      net::ClientRequest request;
      request.id = static_cast<std::uint64_t>(i) + 1;
      request.kind = net::RequestKind::Watch;
      request.path = dir;
      request.watch_kind = kv::WatchKind::Subtree;
      socket_.send(request);
    }
    std::vector<bool> answered(static_cast<std::size_t>(count) + 1, false);
    int open = 0;
    while (open < count) {
      if (Clock::now() > deadline) throw std::runtime_error(fmt::format("watch: {} of {} opened in time", open, count));
      socket_.receive(Clock::now() + std::chrono::milliseconds(100), [&](const net::ClientResponse& response) {
        if (!response.ok() || response.canceled) {
          throw std::runtime_error(fmt::format("watch: {} {}", net::to_string(response.error), response.message));
        }
        if (response.id == 0 || response.id > static_cast<std::uint64_t>(count) || answered[response.id]) return;
        answered[response.id] = true;  // the first frame of a stream is its answer
        ++open;
      });
    }
  }

  void wait(Clock::time_point until, std::vector<std::string>& keys) override {
    socket_.receive(until, [&](const net::ClientResponse& response) {
      if (response.canceled || !response.ok()) {
        throw std::runtime_error(fmt::format("watch ended: {} {}", net::to_string(response.error), response.message));
      }
      for (const kv::Event& event : response.events) keys.push_back(event.path);
    });
  }

 private:
  ClientSocket socket_;
};

}  // namespace

CoordCluster discover_coord(const std::vector<std::string>& endpoints) {
  CoordCluster cluster;
  net::ClientOptions client_options;
  client_options.endpoints = endpoints;
  client_options.timeout = std::chrono::milliseconds(3000);
  net::Client client(client_options);
  for (const std::string& endpoint : endpoints) {
    net::ClientRequest request;
    request.kind = net::RequestKind::Status;
    const net::ClientResponse response = client.call_endpoint(endpoint, request);
    if (!response.ok() || !response.status) continue;
    cluster.members.push_back(endpoint);
    if (response.status->role == "leader") cluster.leader = endpoint;
  }
  if (cluster.leader.empty()) throw std::runtime_error("no member of " + fmt::format("{}", fmt::join(endpoints, ",")) + " says it leads");
  return cluster;
}

void preload_coord(const CoordCluster& cluster, const Options& options) {
  // The prefix first (with its parents), then every key, pipelined.
  net::ClientOptions client_options;
  client_options.endpoints = {cluster.leader};
  net::Client client(client_options);
  kv::Op make_prefix = kv::Op::put(options.prefix, "");
  make_prefix.parents = true;
  const net::ClientResponse made = client.write(kv::single(make_prefix));
  if (!made.ok()) throw std::runtime_error("preload: cannot create " + options.prefix + ": " + made.message);

  CoordConnection conn(options, cluster.leader);
  load_keys(conn, options, preload_inflight);
}

std::unique_ptr<Connection> connect_coord(const CoordCluster& cluster, const Options& options, int client) {
  const bool write = options.op == Op::Put || options.op == Op::Cas || options.op == Op::Txn;
  const std::string& endpoint =
      write || cluster.members.empty() ? cluster.leader
                                       : cluster.members[static_cast<std::size_t>(client) % cluster.members.size()];
  return std::make_unique<CoordConnection>(options, endpoint);
}

std::unique_ptr<WatchConnection> connect_coord_watch(const CoordCluster& cluster, int connection) {
  const std::string& endpoint =
      cluster.members.empty() ? cluster.leader
                              : cluster.members[static_cast<std::size_t>(connection) % cluster.members.size()];
  return std::make_unique<CoordWatchConnection>(endpoint);
}

}  // namespace coord::bench
