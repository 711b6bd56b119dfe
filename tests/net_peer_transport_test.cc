// The peer transport on a real event loop over 127.0.0.1: a member backing off from redialling
// a peer that was down dials it at once when that peer, back up, dials in.
#include <doctest/doctest.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "net/listener.h"
#include "net/peer_transport.h"
#include "net/uv_util.h"

namespace {

using namespace coord;

class RecordingSink final : public net::PeerTransport::Sink {
 public:
  void on_message(const raft::Message& message) override { messages.push_back(message); }
  bool on_peer_hello(const net::PeerHello& hello) override {
    hellos.push_back(hello);
    return true;
  }
  std::vector<raft::Message> messages;
  std::vector<net::PeerHello> hellos;
};

// A loop with a 5 ms ticker, so that a bounded wait wakes up to look at the clock.
struct Loop {
  Loop() {
    REQUIRE(uv_loop_init(&loop) == 0);
    ticker = net::new_timer(&loop, nullptr);
    REQUIRE(uv_timer_start(ticker, [](uv_timer_t*) {}, 5, 5) == 0);
  }
  ~Loop() {
    net::close_and_delete(ticker);
    // Everything else was closed by the test: the loop runs until the handles are gone.
    for (int i = 0; i < 1000 && uv_run(&loop, UV_RUN_NOWAIT) != 0; ++i) {
    }
    CHECK(uv_loop_close(&loop) == 0);
  }
  // Runs the loop until `done` or `ms` milliseconds passed; returns the milliseconds it ran.
  std::uint64_t run_until(const std::function<bool()>& done, std::uint64_t ms) {
    uv_update_time(&loop);
    const std::uint64_t start = uv_now(&loop);
    while (!done() && uv_now(&loop) - start < ms) uv_run(&loop, UV_RUN_ONCE);
    return uv_now(&loop) - start;
  }
  uv_loop_t loop{};
  uv_timer_t* ticker = nullptr;
};

}  // namespace

TEST_CASE("a peer that dials in while we back off from redialling it is dialled at once") {
  spdlog::set_level(spdlog::level::off);
  Loop l;
  const std::string token = "test-cluster";
  // A free port for b, closed again: a's dials to it are refused until b starts.
  std::string b_address;
  {
    net::Listener probe(&l.loop, [](net::Listener& listener) { listener.refuse("probe"); });
    probe.listen("127.0.0.1:0");
    b_address = probe.address();
    probe.close();
  }
  l.run_until([] { return false; }, 20);
  const net::MemberConfig a_member{1, "a", "127.0.0.1:1"};
  const net::MemberConfig b_member{2, "b", b_address};

  // a backs off 2 to 4 s after its first refused dial (jitter: half the backoff and up to the rest).
  net::PeerTransportOptions options;
  options.reconnect_backoff_min_ms = 4000;
  options.reconnect_backoff_max_ms = 4000;
  RecordingSink a_sink;
  net::PeerTransport a(&l.loop, token, a_member, "127.0.0.1:2", a_sink, options);
  a.set_peers({a_member, b_member});
  a.start("127.0.0.1:0");
  const net::MemberConfig a_reachable{1, "a", a.listen_address()};
  l.run_until([] { return false; }, 200);  // the refusal comes back; the redial waits

  // b comes up on its address and dials a, as a restarted member does first thing.
  RecordingSink b_sink;
  net::PeerTransport b(&l.loop, token, b_member, "127.0.0.1:3", b_sink);
  b.set_peers({a_reachable});
  b.start(b_address);
  const std::uint64_t waited = l.run_until([&] { return !b_sink.hellos.empty(); }, 1500);
  REQUIRE(a_sink.hellos.size() == 1);  // b's hello reached a
  CHECK(a_sink.hellos[0].from == 2);
  // a dialled b back at once, not after its backoff (2 s at the least).
  REQUIRE(b_sink.hellos.size() == 1);
  CHECK(b_sink.hellos[0].from == 1);
  CHECK(waited < 1000);

  // And a's messages (a leader's heartbeats, say) reach b on that connection.
  raft::Message heartbeat;
  heartbeat.type = raft::MessageType::Heartbeat;
  heartbeat.from = 1;
  heartbeat.to = 2;
  heartbeat.term = 3;
  a.send(heartbeat);
  l.run_until([&] { return !b_sink.messages.empty(); }, 1000);
  REQUIRE(b_sink.messages.size() == 1);
  CHECK(b_sink.messages[0].type == raft::MessageType::Heartbeat);
  CHECK(a.stats().sent == 1);

  a.close();
  b.close();
  l.run_until([] { return false; }, 50);
}
