// End-to-end watches on real coordd processes: a client that stops reading has only its own
// watcher cancelled (WatchOverflow), while its connection and another client's watch carry on.
#include <fmt/format.h>
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "e2e_cluster.h"
#include "kv/command.h"
#include "net/client_codec.h"
#include "net/frame.h"

namespace {

using namespace coord;
using namespace std::chrono_literals;
using e2e::Cluster;
using e2e::eventually;

// A client socket with a small receive buffer and a 2 s receive timeout, read only on demand.
class SlowConnection {
 public:
  explicit SlowConnection(const std::string& address) {
    const int port = std::stoi(address.substr(address.rfind(':') + 1));
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    const int receive_buffer_bytes = 64 << 10;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof receive_buffer_bytes);
    timeval tv{2, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~SlowConnection() { ::close(fd_); }

  void send(const net::ClientRequest& request) {
    std::string frame;
    net::append_frame(frame, net::FrameKind::ClientRequest, net::encode_request(request));
    REQUIRE(::send(fd_, frame.data(), frame.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(frame.size()));
  }
  // The next response, or nullopt after 2 s of silence or a closed connection.
  std::optional<net::ClientResponse> next() {
    for (;;) {
      if (auto frame = reader_.next()) {
        std::string error;
        auto r = net::decode_response(frame->payload, &error);
        REQUIRE_MESSAGE(r.has_value(), error);
        return r;
      }
      char buffer[64 << 10];
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) return std::nullopt;
      reader_.feed(std::string_view(buffer, static_cast<std::size_t>(n)));
    }
  }

 private:
  int fd_ = -1;
  net::FrameReader reader_{net::client_response_bytes_max};
};

}  // namespace

TEST_CASE("a client that stops reading loses only its own watcher (WatchOverflow), its connection and other watches carry on") {
  Cluster cluster(3, {"--tick-ms", "50", "--election-ticks", "10", "--watch-buffer-events", "64"});
  REQUIRE_MESSAGE(cluster.start_all(), cluster.all_logs());
  std::optional<int> leader;
  REQUIRE_MESSAGE(eventually(15s, [&] { return (leader = cluster.agreed_leader({0, 1, 2})).has_value(); }),
                  cluster.all_logs());
  const int member = (*leader + 1) % cluster.size();  // watches on a follower, writes through the leader
  net::Client writer(cluster.options(15s));
  const net::ClientResponse root = writer.write(kv::single(kv::Op::put("/big", "")));
  REQUIRE(root.ok());
  const kv::Revision start = root.result->revision + 1;

  SlowConnection slow(cluster.client_address(member));
  net::ClientRequest open;
  open.id = 1;
  open.kind = net::RequestKind::Watch;
  open.path = "/big";
  open.watch_kind = kv::WatchKind::Subtree;
  open.revision = start;
  slow.send(open);
  const auto opened = slow.next();
  REQUIRE(opened.has_value());
  REQUIRE_MESSAGE(opened->ok(), opened->message);
  const kv::WatchId slow_watch = opened->watch_id;

  net::ClientOptions fast_options = cluster.options(15s);
  fast_options.endpoints = {cluster.client_address(member)};
  net::Client fast_client(fast_options);
  net::WatchOptions w;
  w.kind = kv::WatchKind::Subtree;
  w.path = "/big";
  w.start_revision = start;
  net::WatchStream fast = fast_client.watch(w);
  std::atomic<std::size_t> fast_events{0};
  std::atomic<bool> stop{false};
  std::string fast_ended;
  std::thread consumer([&] {
    const auto deadline = e2e::Clock::now() + 60s;
    while (!stop && e2e::Clock::now() < deadline) {
      const auto u = fast.next(200ms);
      if (!u) continue;
      if (u->ended) {
        fast_ended = u->message;
        return;
      }
      fast_events += u->events.size();
    }
  });

  // About 8 MiB of values (more than the slow client's socket buffers and the member's 4 MiB
  // queue bound can hold), then many small writes to overflow its watcher's buffer of 64.
  std::size_t written = 0;
  const std::string big(50 << 10, 'v');
  for (int t = 0; t < 4; ++t) {
    kv::Txn txn;
    for (int k = 0; k < 40; ++k) txn.success.push_back(kv::Op::put(fmt::format("/big/b{}-{}", t, k), big));
    const net::ClientResponse r = writer.write(txn);
    REQUIRE_MESSAGE(r.ok(), r.message);
    written += 40;
  }
  for (int k = 0; k < 150; ++k) {
    REQUIRE(writer.write(kv::single(kv::Op::put(fmt::format("/big/s{}", k), "small"))).ok());
    ++written;
  }

  // The other watch got everything, undisturbed.
  CHECK_MESSAGE(eventually(20s, [&] { return fast_events.load() >= written; }),
                fast_events.load() << " of " << written << " events");
  stop = true;
  consumer.join();
  CHECK_MESSAGE(fast_ended.empty(), fast_ended);
  CHECK(fast_events.load() == written);

  // The slow one: whatever fitted, then the cancellation; then its connection still answers.
  net::ClientRequest status;
  status.id = 2;
  status.kind = net::RequestKind::Status;
  slow.send(status);
  std::size_t slow_events = 0;
  std::optional<net::ClientResponse> canceled;
  bool status_answered = false;
  for (int frames = 0; frames < 100'000 && !(canceled && status_answered); ++frames) {
    const auto r = slow.next();
    REQUIRE_MESSAGE(r.has_value(), "connection closed or silent after " << slow_events << " events");
    if (r->id == 2) {
      status_answered = r->ok() && r->status.has_value();
      continue;
    }
    REQUIRE(r->id == 1);
    REQUIRE(r->watch_id == slow_watch);
    slow_events += r->events.size();
    if (r->canceled) canceled = r;
  }
  REQUIRE(canceled.has_value());
  CHECK(canceled->error == net::ErrorCode::WatchOverflow);
  CHECK(status_answered);
  CHECK(slow_events < written);
  MESSAGE("slow client got ", slow_events, " of ", written, " events before its watcher was cancelled");
}
