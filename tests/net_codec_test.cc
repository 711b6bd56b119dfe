// The replica-to-replica wire format: every message type survives a round trip, and nothing a
// peer can send (truncated, flipped, random or oversized bytes, in any split) crashes the
// decoder or the frame reader. Randomized cases use fixed seeds, so a failure replays exactly.
#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "net/frame.h"
#include "net/raft_codec.h"
#include "net/raft_message_generated.h"

namespace raft = coord::raft;
using coord::net::decode;
using coord::net::encode;
using coord::net::Frame;
using coord::net::FrameError;
using coord::net::FrameKind;
using coord::net::FrameReader;

namespace {

constexpr int message_type_count = 13;

// Seeded engine; values are taken from its raw output so they do not depend on the standard
// library's distributions.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}
  std::uint64_t next() { return engine_(); }
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }
  bool coin() { return (next() & 1) != 0; }
  // Mostly small numbers, sometimes the extremes, so both the varint-free encoding of big values
  // and the omission of defaults are exercised.
  std::uint64_t number() {
    switch (below(4)) {
      case 0: return 0;
      case 1: return below(100);
      case 2: return UINT64_MAX - below(3);
      default: return next();
    }
  }
  std::string bytes(std::size_t max) {
    std::string out(below(max + 1), '\0');
    for (char& c : out) c = static_cast<char>(next() & 0xff);
    return out;
  }

 private:
  std::mt19937_64 engine_;
};

raft::Message random_message(Rng& rng, raft::MessageType type) {
  raft::Message m;
  m.type = type;
  m.from = rng.number();
  m.to = rng.number();
  m.term = rng.number();
  m.log_term = rng.number();
  m.index = rng.number();
  const std::size_t entry_count = rng.below(6);
  for (std::size_t i = 0; i < entry_count; ++i) {
    raft::Entry e;
    e.term = rng.number();
    e.index = rng.number();
    e.type = rng.coin() ? raft::EntryType::Normal : raft::EntryType::ConfChange;
    e.data = rng.bytes(300);
    m.entries.push_back(std::move(e));
  }
  m.commit = rng.number();
  m.reject = rng.coin();
  m.reject_hint = rng.number();
  m.reject_term = rng.number();
  m.transfer = rng.coin();
  m.context = rng.number();
  m.snapshot.index = rng.number();
  m.snapshot.term = rng.number();
  for (std::size_t i = rng.below(6); i > 0; --i) m.snapshot.conf.voters.push_back(rng.number());
  for (std::size_t i = rng.below(3); i > 0; --i) m.snapshot.conf.learners.push_back(rng.number());
  m.snapshot_offset = rng.number();
  m.snapshot_chunk = rng.bytes(1000);
  m.snapshot_done = rng.coin();
  return m;
}

void check_same(const raft::Message& a, const raft::Message& b) {
  CHECK(a.type == b.type);
  CHECK(a.from == b.from);
  CHECK(a.to == b.to);
  CHECK(a.term == b.term);
  CHECK(a.log_term == b.log_term);
  CHECK(a.index == b.index);
  CHECK(a.entries == b.entries);
  CHECK(a.commit == b.commit);
  CHECK(a.reject == b.reject);
  CHECK(a.reject_hint == b.reject_hint);
  CHECK(a.reject_term == b.reject_term);
  CHECK(a.transfer == b.transfer);
  CHECK(a.context == b.context);
  CHECK(a.snapshot == b.snapshot);
  CHECK(a.snapshot_offset == b.snapshot_offset);
  CHECK(a.snapshot_chunk == b.snapshot_chunk);
  CHECK(a.snapshot_done == b.snapshot_done);
}

// A decode that succeeds must be self-consistent: what came out encodes and decodes to itself.
void check_stable(const raft::Message& m) {
  std::string error;
  const std::optional<raft::Message> again = decode(encode(m), &error);
  REQUIRE_MESSAGE(again.has_value(), error);
  check_same(m, *again);
}

std::vector<std::string> sample_encodings() {
  Rng rng(7);
  std::vector<std::string> out;
  for (int t = 0; t < message_type_count; ++t) {
    out.push_back(encode(random_message(rng, static_cast<raft::MessageType>(t))));
  }
  raft::Message empty;
  out.push_back(encode(empty));
  return out;
}

}  // namespace

TEST_CASE("codec: every message type round-trips with randomized fields") {
  Rng rng(20240601);
  for (int t = 0; t < message_type_count; ++t) {
    const auto type = static_cast<raft::MessageType>(t);
    CAPTURE(raft::to_string(type));
    for (int i = 0; i < 200; ++i) {
      const raft::Message m = random_message(rng, type);
      std::string error;
      const std::optional<raft::Message> decoded = decode(encode(m), &error);
      REQUIRE_MESSAGE(decoded.has_value(), error);
      check_same(m, *decoded);
    }
  }
}

TEST_CASE("codec: a message of defaults round-trips and stays small") {
  const raft::Message m;
  const std::string bytes = encode(m);
  CHECK(bytes.size() <= 32);  // defaults are omitted
  std::string error;
  const auto decoded = decode(bytes, &error);
  REQUIRE_MESSAGE(decoded.has_value(), error);
  check_same(m, *decoded);
}

TEST_CASE("codec: misaligned input decodes like aligned input") {
  Rng rng(3);
  const raft::Message m = random_message(rng, raft::MessageType::Append);
  const std::string bytes = encode(m);
  for (std::size_t shift = 0; shift < 8; ++shift) {
    const std::string buffer = std::string(shift, 'x') + bytes;
    std::string error;
    const auto decoded = decode(std::string_view(buffer).substr(shift), &error);
    REQUIRE_MESSAGE(decoded.has_value(), error);
    check_same(m, *decoded);
  }
}

TEST_CASE("codec: truncated buffers are rejected at every length") {
  int rejected = 0;
  int total = 0;
  for (const std::string& bytes : sample_encodings()) {
    std::string error;
    const auto whole = decode(bytes, &error);
    REQUIRE(whole.has_value());
    for (std::size_t length = 0; length < bytes.size(); ++length) {
      error.clear();
      const auto decoded = decode(std::string_view(bytes).substr(0, length), &error);
      ++total;
      if (!decoded) {
        CHECK(!error.empty());
        ++rejected;
        continue;
      }
      // Flatbuffers may end in alignment padding that no field reaches; cutting only that loses
      // nothing, so the message must come out whole.
      check_same(*whole, *decoded);
    }
  }
  MESSAGE(rejected << " of " << total << " truncations rejected");
  CHECK(rejected * 10 >= total * 9);
}

TEST_CASE("codec: random garbage is rejected without crashing") {
  Rng rng(99);
  int accepted = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string bytes = rng.bytes(512);
    // Half the time give it the right identifier, so the verifier itself gets exercised.
    if (bytes.size() >= 8 && rng.coin()) bytes.replace(4, 4, "CRFT");
    std::string error;
    const auto decoded = decode(bytes, &error);
    if (decoded) {
      ++accepted;
      check_stable(*decoded);
    } else {
      CHECK(!error.empty());
    }
  }
  CHECK(accepted < 50);
}

TEST_CASE("codec: corrupted encodings are rejected or decode to a valid message") {
  Rng rng(1234);
  const std::vector<std::string> samples = sample_encodings();
  for (int i = 0; i < 5000; ++i) {
    std::string bytes = samples[rng.below(samples.size())];
    for (std::size_t flips = 1 + rng.below(4); flips > 0; --flips) {
      bytes[rng.below(bytes.size())] = static_cast<char>(rng.next() & 0xff);
    }
    std::string error;
    const auto decoded = decode(bytes, &error);
    if (decoded) {
      check_stable(*decoded);
    } else {
      CHECK(!error.empty());
    }
  }
}

TEST_CASE("codec: values outside the enums are refused with a reason") {
  namespace fb = coord::wire;
  SUBCASE("message type") {
    flatbuffers::FlatBufferBuilder fbb;
    fb::MessageBuilder b(fbb);
    b.add_type(static_cast<fb::MessageType>(13));
    fb::FinishMessageBuffer(fbb, b.Finish());
    std::string error;
    const std::string bytes(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
    CHECK_FALSE(decode(bytes, &error).has_value());
    CHECK(error.find("unknown message type 13") != std::string::npos);
  }
  SUBCASE("entry type") {
    flatbuffers::FlatBufferBuilder fbb;
    const auto entry = fb::CreateEntry(fbb, 1, 1, static_cast<fb::EntryType>(2));
    const auto entries = fbb.CreateVector(std::vector{entry});
    fb::MessageBuilder b(fbb);
    b.add_type(fb::MessageType::Append);
    b.add_entries(entries);
    fb::FinishMessageBuffer(fbb, b.Finish());
    std::string error;
    const std::string bytes(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
    CHECK_FALSE(decode(bytes, &error).has_value());
    CHECK(error.find("unknown type 2") != std::string::npos);
  }
  SUBCASE("file identifier") {
    std::string bytes = encode(raft::Message{});
    bytes[4] = 'X';
    std::string error;
    CHECK_FALSE(decode(bytes, &error).has_value());
    CHECK(error.find("identifier") != std::string::npos);
  }
  SUBCASE("a null error pointer is allowed") {
    CHECK_FALSE(decode("garbage", nullptr).has_value());
  }
}

TEST_CASE("codec: an oversized message is refused before it is parsed") {
  const std::string huge(coord::net::raft_message_bytes_max + 1, '\0');
  std::string error;
  CHECK_FALSE(decode(huge, &error).has_value());
  CHECK(error.find("exceeds the limit") != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Frames

namespace {

std::vector<Frame> sample_frames(Rng& rng, std::size_t count) {
  std::vector<Frame> frames;
  for (std::size_t i = 0; i < count; ++i) {
    Frame f;
    f.kind = static_cast<FrameKind>(1 + rng.below(3));  // unknown kinds pass through the reader
    f.payload = rng.bytes(rng.coin() ? 16 : 3000);
    frames.push_back(std::move(f));
  }
  return frames;
}

std::string stream_of(const std::vector<Frame>& frames) {
  std::string out;
  for (const Frame& f : frames) coord::net::append_frame(out, f.kind, f.payload);
  return out;
}

// Feeds `stream` in pieces whose sizes come from `piece`, draining after each feed.
template <typename PieceSize>
std::vector<Frame> read_all(FrameReader& reader, const std::string& stream, PieceSize piece) {
  std::vector<Frame> out;
  std::size_t offset = 0;
  while (offset < stream.size()) {
    const std::size_t n = std::min(piece(), stream.size() - offset);
    reader.feed(std::string_view(stream).substr(offset, n));
    offset += n;
    while (auto frame = reader.next()) out.push_back(std::move(*frame));
  }
  return out;
}

}  // namespace

TEST_CASE("frame: header layout is little-endian length, version, kind") {
  const std::string frame = coord::net::encode_frame(FrameKind::RaftMessage, std::string(258, 'p'));
  REQUIRE(frame.size() == coord::net::frame_header_bytes + 258);
  CHECK(static_cast<unsigned char>(frame[0]) == 2);
  CHECK(static_cast<unsigned char>(frame[1]) == 1);
  CHECK(frame[2] == 0);
  CHECK(frame[3] == 0);
  CHECK(static_cast<unsigned char>(frame[4]) == coord::net::protocol_version);
  CHECK(static_cast<unsigned char>(frame[5]) == static_cast<unsigned char>(FrameKind::RaftMessage));
  CHECK(frame.substr(6) == std::string(258, 'p'));
}

TEST_CASE("frame: a reader fed byte by byte yields every frame") {
  Rng rng(11);
  const std::vector<Frame> frames = sample_frames(rng, 40);
  FrameReader reader;
  CHECK(read_all(reader, stream_of(frames), [] { return std::size_t{1}; }) == frames);
  CHECK(reader.error() == FrameError::None);
  CHECK(reader.buffered_bytes() == 0);
}

TEST_CASE("frame: random splits give the same frames") {
  Rng rng(12);
  for (int round = 0; round < 200; ++round) {
    const std::vector<Frame> frames = sample_frames(rng, 1 + rng.below(30));
    const std::string stream = stream_of(frames);
    FrameReader reader;
    const std::size_t piece_max = 1 + rng.below(rng.coin() ? 16 : 8192);
    CHECK(read_all(reader, stream, [&] { return 1 + rng.below(piece_max); }) == frames);
    CHECK(reader.error() == FrameError::None);
  }
}

TEST_CASE("frame: one large feed holding many frames is drained whole") {
  Rng rng(13);
  const std::vector<Frame> frames = sample_frames(rng, 500);
  FrameReader reader;
  CHECK(read_all(reader, stream_of(frames), [] { return std::size_t{1} << 30; }) == frames);
}

TEST_CASE("frame: empty payloads are frames too") {
  const std::vector<Frame> frames{{FrameKind::RaftMessage, ""}, {FrameKind::RaftMessage, "x"},
                                  {FrameKind::RaftMessage, ""}};
  FrameReader reader;
  CHECK(read_all(reader, stream_of(frames), [] { return std::size_t{1}; }) == frames);
}

TEST_CASE("frame: an oversized length is refused from its header alone, and for good") {
  constexpr std::size_t limit = 1000;
  Rng rng(14);
  const std::vector<Frame> good = sample_frames(rng, 3);
  std::string stream = stream_of({{FrameKind::RaftMessage, "a"}, {FrameKind::RaftMessage, "b"}});
  coord::net::append_frame(stream, FrameKind::RaftMessage, std::string(limit + 1, 'z'));
  const std::size_t bad_header_end = stream.size() - (limit + 1);
  stream += stream_of(good);

  for (int round = 0; round < 100; ++round) {
    FrameReader reader(limit);
    const std::size_t piece_max = 1 + rng.below(64);
    std::vector<Frame> frames;
    std::size_t offset = 0;
    bool failed_early = false;
    while (offset < stream.size()) {
      const std::size_t n = std::min<std::size_t>(1 + rng.below(piece_max), stream.size() - offset);
      reader.feed(std::string_view(stream).substr(offset, n));
      offset += n;
      while (auto f = reader.next()) frames.push_back(std::move(*f));
      if (reader.error() != FrameError::None && offset <= bad_header_end + piece_max) failed_early = true;
    }
    CHECK(frames.size() == 2);
    CHECK(reader.error() == FrameError::TooLarge);
    CHECK(failed_early);  // noticed before the payload arrived
    CHECK(reader.error_message().find("1001 bytes") != std::string::npos);
    CHECK(reader.buffered_bytes() == 0);
    reader.feed(stream_of(good));
    CHECK_FALSE(reader.next().has_value());
    CHECK(reader.error() == FrameError::TooLarge);
  }
}

TEST_CASE("frame: a length beyond the default limit is refused") {
  std::string header(coord::net::frame_header_bytes, '\0');
  const std::uint64_t length = coord::net::frame_payload_bytes_max + 1;
  for (int i = 0; i < 4; ++i) header[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  header[4] = static_cast<char>(coord::net::protocol_version);
  header[5] = static_cast<char>(FrameKind::RaftMessage);
  FrameReader reader;
  reader.feed(header);
  CHECK_FALSE(reader.next().has_value());
  CHECK(reader.error() == FrameError::TooLarge);
}

TEST_CASE("frame: another protocol version is refused however the bytes arrive") {
  Rng rng(15);
  std::string stream = stream_of({{FrameKind::RaftMessage, "first"}});
  std::string bad = coord::net::encode_frame(FrameKind::RaftMessage, "second");
  bad[4] = static_cast<char>(coord::net::protocol_version + 1);
  stream += bad + stream_of({{FrameKind::RaftMessage, "third"}});
  for (int round = 0; round < 100; ++round) {
    FrameReader reader;
    const std::vector<Frame> frames = read_all(reader, stream, [&] { return 1 + rng.below(9); });
    REQUIRE(frames.size() == 1);
    CHECK(frames[0].payload == "first");
    CHECK(reader.error() == FrameError::BadVersion);
    CHECK(reader.error_message().find("protocol version 2") != std::string::npos);
  }
}

TEST_CASE("frame: garbage streams end in a stable error or frames, never a crash") {
  Rng rng(16);
  for (int round = 0; round < 2000; ++round) {
    const std::string stream = rng.bytes(256);
    FrameReader whole(128);
    const std::vector<Frame> at_once = read_all(whole, stream, [] { return std::size_t{1} << 20; });
    FrameReader split(128);
    const std::vector<Frame> in_pieces = read_all(split, stream, [&] { return 1 + rng.below(7); });
    CHECK(at_once == in_pieces);
    CHECK(whole.error() == split.error());
    CHECK(whole.error_message() == split.error_message());
  }
}

TEST_CASE("frame: raft messages travel through frames end to end") {
  Rng rng(17);
  std::vector<raft::Message> sent;
  std::string stream;
  for (int t = 0; t < message_type_count; ++t) {
    sent.push_back(random_message(rng, static_cast<raft::MessageType>(t)));
    coord::net::append_frame(stream, FrameKind::RaftMessage, encode(sent.back()));
  }
  FrameReader reader(coord::net::raft_message_bytes_max);
  const std::vector<Frame> frames = read_all(reader, stream, [&] { return 1 + rng.below(100); });
  REQUIRE(frames.size() == sent.size());
  for (std::size_t i = 0; i < frames.size(); ++i) {
    CHECK(frames[i].kind == FrameKind::RaftMessage);
    std::string error;
    const auto decoded = decode(frames[i].payload, &error);
    REQUIRE_MESSAGE(decoded.has_value(), error);
    check_same(sent[i], *decoded);
  }
}
