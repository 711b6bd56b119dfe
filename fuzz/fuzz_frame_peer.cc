// The peer port: a byte stream from another replica, framed (net/frame.h), dispatched as
// PeerTransport::on_frame does for an inbound connection (net/peer_transport.cc; mirrored here,
// as the transport itself needs a libuv loop): the first frame must be a hello
// (net/peer_codec.h) that names a member of this cluster, every later one a Raft message
// (net/raft_codec.h) from that member to us, which is stepped into a raft::Node run by
// fuzz/raft_host.h (with all of its checks). Anything refused closes the connection.
//
// Input: one byte picking how the stream is cut into reads, then the stream. Checked besides:
//   - the FrameReader gives the same frames and the same error however the stream is cut;
//   - the frames re-encode to exactly the bytes they were read from;
//   - a decoded hello and a decoded Raft message survive encode + decode unchanged.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/frame_stream.h"
#include "fuzz/fuzz_util.h"
#include "fuzz/raft_host.h"
#include "net/frame.h"
#include "net/peer_codec.h"
#include "net/raft_codec.h"

namespace {

using namespace coord;

constexpr raft::NodeId self = 1;
constexpr const char* cluster_token = "fuzz-cluster";
constexpr std::size_t frames_max = 256;

fuzz::Durable initial_state() {
  fuzz::Durable d;
  d.snapshot.conf.voters = {1, 2, 3};
  const raft::Term terms[] = {1, 1, 2, 2, 3};
  for (raft::Index i = 1; i <= 5; ++i) d.entries.push_back(raft::Entry{terms[i - 1], i, raft::EntryType::Normal, "e"});
  d.hard_state = raft::HardState{3, 2, 3};
  d.applied = 3;
  return d;
}

// PeerTransport's test of a hello: our cluster, to us, from another member under its name.
bool hello_accepted(const net::PeerHello& hello) {
  if (hello.cluster != cluster_token || hello.to != self || hello.from == self) return false;
  return (hello.from == 2 && hello.name == "n2") || (hello.from == 3 && hello.name == "n3");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t cut = data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);

  const fuzz::FrameRead whole = fuzz::read_frames_checked(stream, cut, net::raft_message_bytes_max, frames_max);

  raft::Config config;
  config.id = self;
  fuzz::RaftHost host(config, cut, initial_state());
  raft::NodeId from = raft::kNoNode;
  for (const net::Frame& frame : whole.frames) {
    std::string error;
    if (from == raft::kNoNode) {
      if (frame.kind != net::FrameKind::PeerHello) break;  // "no hello": closed
      const auto hello = net::decode_hello(frame.payload, &error);
      if (!hello) break;
      const auto back = net::decode_hello(net::encode_hello(*hello), &error);
      FUZZ_CHECK(back && *back == *hello, "a hello changed through the codec");
      if (!hello_accepted(*hello)) break;  // "hello refused"
      from = hello->from;
      continue;
    }
    if (frame.kind != net::FrameKind::RaftMessage) break;  // "unexpected frame kind"
    const auto message = net::decode(frame.payload, &error);
    if (!message) break;
    fuzz::check_codec_round_trip(*message);
    if (message->from != from || message->to != self) break;  // "misaddressed message"
    host.node().step(*message);
    host.check();
    host.pump();
    if (host.stopped()) break;
    // Time passes between frames now and then, so that elections and heartbeats happen too.
    if (message->context % 4 == 0) {
      host.node().tick();
      host.check();
      host.pump();
    }
  }
  return 0;
}
