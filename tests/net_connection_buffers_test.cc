// A connection's buffers after a burst: once the burst has gone out (or been read), the memory
// it made them grow to is given back, so a member whose link was slow for a while does not keep
// that memory resident for as long as the connection lives (the fault soak's RSS spikes).
#include <doctest/doctest.h>
#include <uv.h>

#include <chrono>
#include <string>

#include "net/connection.h"
#include "net/frame.h"
#include "net/listener.h"
#include "net/uv_util.h"

namespace {

using namespace coord::net;

TEST_CASE("FrameReader gives back the memory of a large frame once it is handed out") {
  FrameReader reader;
  const std::string big(std::size_t{2} << 20, 'x');
  reader.feed(encode_frame(FrameKind::ClientResponse, big));
  std::optional<Frame> frame = reader.next();
  REQUIRE(frame);
  CHECK(frame->payload == big);
  CHECK(reader.reserved_bytes() <= buffer_retained_bytes_max);

  // Small frames keep working afterwards and keep a small buffer.
  reader.feed(encode_frame(FrameKind::ClientResponse, "small"));
  frame = reader.next();
  REQUIRE(frame);
  CHECK(frame->payload == "small");
  CHECK(reader.reserved_bytes() <= buffer_retained_bytes_max);
}

TEST_CASE("FrameReader keeps a partial frame's bytes while it waits for the rest") {
  FrameReader reader;
  const std::string big(std::size_t{1} << 20, 'y');
  const std::string wire = encode_frame(FrameKind::ClientResponse, big) + encode_frame(FrameKind::ClientResponse, "z");
  reader.feed(std::string_view(wire).substr(0, wire.size() / 2));
  CHECK_FALSE(reader.next());
  reader.feed(std::string_view(wire).substr(wire.size() / 2));
  std::optional<Frame> first = reader.next();
  REQUIRE(first);
  CHECK(first->payload == big);
  std::optional<Frame> second = reader.next();
  REQUIRE(second);
  CHECK(second->payload == "z");
  CHECK_FALSE(reader.next());
  CHECK(reader.reserved_bytes() <= buffer_retained_bytes_max);
}

// Counts what arrives; the sending side ignores everything.
struct Receiver final : Connection::Handler {
  std::size_t frames = 0;
  std::size_t bytes = 0;
  Connection* connection = nullptr;
  bool closed = false;
  void on_frame(Connection&, Frame frame) override {
    ++frames;
    bytes += frame.payload.size();
  }
  void on_frame_error(Connection&, FrameError, const std::string&) override {}
  void on_closed(Connection&, const std::string&) override {
    connection = nullptr;
    closed = true;
  }
};

struct Sender final : Connection::Handler {
  bool connected = false;
  bool closed = false;
  void on_frame(Connection&, Frame) override {}
  void on_frame_error(Connection&, FrameError, const std::string&) override {}
  void on_connected(Connection&, int status) override { connected = status == 0; }
  void on_closed(Connection&, const std::string&) override { closed = true; }
};

// Runs the loop until `done` or 10 s pass; false on timeout.
template <typename Done>
bool run_until(uv_loop_t* loop, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    uv_run(loop, UV_RUN_NOWAIT);
  }
  return true;
}

TEST_CASE("a connection gives back its send and receive buffers after a burst has gone out") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    Receiver receiver;
    Listener listener(&loop, [&](Listener& l) {
      std::string error;
      receiver.connection = l.accept(receiver, ConnectionOptions{}, &error);
    });
    listener.listen("127.0.0.1:0");
    const auto address = parse_socket_address(listener.address(), nullptr);
    REQUIRE(address);

    Sender sender;
    Connection* out = Connection::create(&loop, sender, ConnectionOptions{});
    REQUIRE(out->connect(reinterpret_cast<const sockaddr*>(&*address)) == 0);
    REQUIRE(run_until(&loop, [&] { return sender.connected && receiver.connection != nullptr; }));

    // A burst queued faster than it can go: 16 MiB in 64 KiB frames (they wait behind the first
    // write), then one frame of 2 MiB, which the receiver must buffer whole.
    const std::string chunk(std::size_t{64} << 10, 'c');
    const std::string large(std::size_t{2} << 20, 'l');
    std::size_t sent = 0;
    for (int i = 0; i < 256; ++i) {
      REQUIRE(out->send_frame(FrameKind::ClientResponse, chunk));
      sent += chunk.size();
    }
    REQUIRE(out->send_frame(FrameKind::ClientResponse, large));
    sent += large.size();
    CHECK(out->reserved_bytes() >= (std::size_t{16} << 20));  // the burst is really held

    REQUIRE(run_until(&loop, [&] { return receiver.bytes == sent; }));
    CHECK(receiver.frames == 257);
    REQUIRE(run_until(&loop, [&] { return out->queued_bytes() == 0; }));
    // What stays is the fixed read chunk and buffers of at most buffer_retained_bytes_max.
    CHECK(out->reserved_bytes() <= std::size_t{1} << 20);
    REQUIRE(receiver.connection != nullptr);
    CHECK(receiver.connection->reserved_bytes() <= std::size_t{1} << 20);

    // The connection still works after giving its buffers back.
    REQUIRE(out->send_frame(FrameKind::ClientResponse, "after"));
    REQUIRE(run_until(&loop, [&] { return receiver.frames == 258; }));

    out->close("test done");
    receiver.connection->close("test done");
    listener.close();
    REQUIRE(run_until(&loop, [&] { return sender.closed && receiver.closed; }));
  }
  uv_run(&loop, UV_RUN_DEFAULT);  // the listener's close
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace
