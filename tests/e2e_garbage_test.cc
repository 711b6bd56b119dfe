// End-to-end: garbage, truncated and oversized frames sent to both ports of a live cluster are
// refused (an InvalidRequest response, or the connection closed), and the cluster keeps serving.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <random>
#include <string>

#include "e2e_cluster.h"
#include "kv/codec.h"
#include "kv/command.h"
#include "net/client_codec.h"
#include "net/cluster_config.h"
#include "net/frame.h"
#include "net/peer_codec.h"
#include "net/raft_codec.h"

namespace {

using namespace coord;
using namespace std::chrono_literals;
using e2e::Cluster;
using e2e::eventually;

const std::vector<std::string> kArgs{"--tick-ms", "50", "--election-ticks", "10"};

// A blocking socket with a receive timeout, so that every read in this test is bounded.
class RawConnection {
 public:
  explicit RawConnection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    timeval tv{2, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~RawConnection() { ::close(fd_); }

  // Best effort: the server may already have closed on us.
  void send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

  // The next response frame, or nullopt when the connection closed or 2 s passed.
  std::optional<net::ClientResponse> response() {
    for (;;) {
      if (auto frame = reader_.next()) {
        REQUIRE(frame->kind == net::FrameKind::ClientResponse);
        std::string error;
        auto r = net::decode_response(frame->payload, &error);
        REQUIRE_MESSAGE(r.has_value(), error);
        return r;
      }
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return std::nullopt;
      reader_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    }
  }
  // True when the server closes the connection within the receive timeout (data before the
  // close, such as a last error response, is skipped).
  bool closed_by_server() {
    char buf[4096];
    const auto deadline = e2e::Clock::now() + 5s;
    while (e2e::Clock::now() < deadline) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
    return false;
  }

 private:
  int fd_ = -1;
  net::FrameReader reader_{net::client_response_bytes_max};
};

std::string header(std::uint32_t length, std::uint8_t version, std::uint8_t kind) {
  std::string h(net::frame_header_bytes, '\0');
  for (int i = 0; i < 4; ++i) h[static_cast<std::size_t>(i)] = static_cast<char>((length >> (8 * i)) & 0xff);
  h[4] = static_cast<char>(version);
  h[5] = static_cast<char>(kind);
  return h;
}

std::string status_request_frame(std::uint64_t id) {
  net::ClientRequest r;
  r.id = id;
  r.kind = net::RequestKind::Status;
  return net::encode_frame(net::FrameKind::ClientRequest, net::encode_request(r));
}

std::string random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

int port_of(const std::string& address) { return std::stoi(address.substr(address.rfind(':') + 1)); }

void check_cluster_serves(Cluster& cluster, const std::string& key) {
  for (int i = 0; i < cluster.size(); ++i) REQUIRE_MESSAGE(cluster.running(i), cluster.all_logs());
  net::Client client(cluster.options(15s));
  kv::Op op = kv::Op::put(key, "still-serving");
  const net::ClientResponse w = client.write(kv::single(op));
  REQUIRE_MESSAGE(w.ok(), net::to_string(w.error) << ": " << w.message << "\n" << cluster.all_logs());
  for (int i = 0; i < cluster.size(); ++i) {
    net::Client reader = cluster.client_of(i);
    net::ClientRequest r;
    r.kind = net::RequestKind::Get;
    r.path = key;
    const net::ClientResponse got = reader.call(r);
    REQUIRE_MESSAGE(got.ok(), net::to_string(got.error) << ": " << got.message);
    CHECK(got.node->value == "still-serving");
  }
}

}  // namespace

TEST_CASE("garbage on the client port is refused and the cluster keeps serving") {
  Cluster cluster(3, kArgs);
  REQUIRE_MESSAGE(cluster.start_all(), cluster.all_logs());
  std::optional<int> leader;
  REQUIRE(eventually(15s, [&] { return (leader = cluster.agreed_leader({0, 1, 2})).has_value(); }));
  // The leader: it is the one that looks inside a write's command.
  const int port = port_of(cluster.client_address(*leader));

  {
    INFO("a payload that is not a request: InvalidRequest, and the connection stays usable");
    RawConnection c(port);
    c.send(net::encode_frame(net::FrameKind::ClientRequest, "definitely not a flatbuffer"));
    auto r = c.response();
    REQUIRE(r.has_value());
    CHECK(r->error == net::ErrorCode::InvalidRequest);
    c.send(status_request_frame(7));
    r = c.response();
    REQUIRE(r.has_value());
    CHECK(r->id == 7);
    CHECK(r->ok());
  }
  {
    INFO("an unknown frame kind: InvalidRequest, and the connection stays usable");
    RawConnection c(port);
    c.send(header(3, net::protocol_version, 99) + "abc");
    auto r = c.response();
    REQUIRE(r.has_value());
    CHECK(r->error == net::ErrorCode::InvalidRequest);
    c.send(status_request_frame(8));
    r = c.response();
    REQUIRE(r.has_value());
    CHECK(r->ok());
  }
  {
    INFO("a write whose command is not a kv::Command: InvalidRequest with the request's id");
    RawConnection c(port);
    net::ClientRequest w;
    w.id = 42;
    w.kind = net::RequestKind::Write;
    w.command = "garbage command bytes";
    c.send(net::encode_frame(net::FrameKind::ClientRequest, net::encode_request(w)));
    auto r = c.response();
    REQUIRE(r.has_value());
    CHECK(r->id == 42);
    // Leadership may have moved since we asked; a follower answers NotLeader without looking.
    CHECK((r->error == net::ErrorCode::InvalidRequest || r->error == net::ErrorCode::NotLeader));
    if (r->error == net::ErrorCode::InvalidRequest) CHECK(r->message.find("command") != std::string::npos);
  }
  {
    INFO("an oversized frame: InvalidRequest, then the connection is closed");
    RawConnection c(port);
    c.send(header(0xfffffff0u, net::protocol_version, static_cast<std::uint8_t>(net::FrameKind::ClientRequest)));
    auto r = c.response();
    REQUIRE(r.has_value());
    CHECK(r->error == net::ErrorCode::InvalidRequest);
    CHECK(c.closed_by_server());
  }
  {
    INFO("another protocol version: the connection is closed");
    RawConnection c(port);
    c.send(header(4, 77, 2) + "abcd");
    CHECK(c.closed_by_server());
  }
  {
    INFO("a truncated frame, then the client goes away");
    RawConnection c(port);
    const std::string frame = status_request_frame(9);
    c.send(frame.substr(0, frame.size() / 2));
    c.shutdown_write();
    CHECK(c.closed_by_server());
  }
  {
    INFO("random bytes and bit-flipped requests never crash a member");
    std::mt19937_64 rng(12345);
    for (int round = 0; round < 40; ++round) {
      RawConnection c(port);
      if (round % 2 == 0) {
        c.send(random_bytes(rng, 1 + rng() % 2048));
      } else {
        std::string frame = status_request_frame(static_cast<std::uint64_t>(round));
        // Flip bits in the payload only, so the frame boundary holds and the verifier is tested.
        for (int flips = 0; flips < 4; ++flips) {
          const std::size_t at = net::frame_header_bytes + rng() % (frame.size() - net::frame_header_bytes);
          frame[at] = static_cast<char>(frame[at] ^ (1 << (rng() % 8)));
        }
        c.send(frame);
        (void)c.response();  // any answer is fine; none (closed) too
      }
    }
  }
  check_cluster_serves(cluster, "/after-client-garbage");
}

TEST_CASE("garbage on the peer port is refused and the cluster keeps serving") {
  Cluster cluster(3, kArgs);
  REQUIRE_MESSAGE(cluster.start_all(), cluster.all_logs());
  REQUIRE(eventually(15s, [&] { return cluster.agreed_leader({0, 1, 2}).has_value(); }));
  const int port = port_of(cluster.peer_address(0));
  std::string error;
  const auto config = net::parse_initial_cluster(cluster.initial_cluster(), "", &error);
  REQUIRE_MESSAGE(config.has_value(), error);

  {
    INFO("random bytes");
    std::mt19937_64 rng(777);
    for (int round = 0; round < 20; ++round) {
      RawConnection c(port);
      c.send(random_bytes(rng, 1 + rng() % 4096));
      c.shutdown_write();
      CHECK(c.closed_by_server());
    }
  }
  {
    INFO("an oversized frame");
    RawConnection c(port);
    c.send(header(0xfffffff0u, net::protocol_version, static_cast<std::uint8_t>(net::FrameKind::RaftMessage)));
    CHECK(c.closed_by_server());
  }
  {
    INFO("a Raft message without a hello");
    RawConnection c(port);
    raft::Message m;
    m.type = raft::MessageType::Heartbeat;
    m.from = 2;
    m.to = 1;
    m.term = 1000;  // would depose the leader if it were taken
    c.send(net::encode_frame(net::FrameKind::RaftMessage, net::encode(m)));
    CHECK(c.closed_by_server());
  }
  {
    INFO("a hello from another cluster");
    RawConnection c(port);
    net::PeerHello hello{"some-other-cluster", 2, 1, "n2", "127.0.0.1:1"};
    c.send(net::encode_frame(net::FrameKind::PeerHello, net::encode_hello(hello)));
    CHECK(c.closed_by_server());
  }
  {
    INFO("a hello, then a frame that is not a Raft message");
    RawConnection c(port);
    net::PeerHello hello{config->token, 2, 1, "n2", cluster.client_address(1)};
    c.send(net::encode_frame(net::FrameKind::PeerHello, net::encode_hello(hello)));
    c.send(net::encode_frame(net::FrameKind::RaftMessage, "not a raft message"));
    CHECK(c.closed_by_server());
  }
  {
    INFO("a hello, then a message claiming another sender");
    RawConnection c(port);
    net::PeerHello hello{config->token, 2, 1, "n2", cluster.client_address(1)};
    c.send(net::encode_frame(net::FrameKind::PeerHello, net::encode_hello(hello)));
    raft::Message m;
    m.type = raft::MessageType::Heartbeat;
    m.from = 3;
    m.to = 1;
    c.send(net::encode_frame(net::FrameKind::RaftMessage, net::encode(m)));
    CHECK(c.closed_by_server());
  }
  {
    INFO("a truncated frame");
    RawConnection c(port);
    net::PeerHello hello{config->token, 2, 1, "n2", cluster.client_address(1)};
    const std::string frame = net::encode_frame(net::FrameKind::PeerHello, net::encode_hello(hello));
    c.send(frame.substr(0, frame.size() - 3));
    c.shutdown_write();
    CHECK(c.closed_by_server());
  }
  check_cluster_serves(cluster, "/after-peer-garbage");
}
