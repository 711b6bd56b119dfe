// The client protocol codec: round trips, and refusal (never a crash) of malformed input.
#include <fmt/format.h>
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "kv/codec.h"
#include "net/client_codec.h"
#include "net/peer_codec.h"

namespace {

using namespace coord;

net::ClientRequest sample_request() {
  net::ClientRequest r;
  r.id = 99;
  r.kind = net::RequestKind::Range;
  r.path = "/app";
  r.revision = 12;
  r.serializable = true;
  r.start_after = "/app/x";
  r.limit = 10;
  r.keys_only = true;
  r.lease = 17;
  r.watch_kind = kv::WatchKind::Children;
  r.prev = true;
  r.watch_id = 23;
  r.forwarded = true;
  return r;
}

net::ClientResponse sample_response() {
  net::ClientResponse r;
  r.id = 5;
  r.error = net::ErrorCode::NotLeader;
  r.message = "not the leader";
  r.leader = net::LeaderHint{3, "n3", "127.0.0.1:7103"};
  kv::Result result;
  result.revision = 8;
  result.ops.push_back(kv::OpResult{kv::OpType::Create, "/a/job-0000000001", std::nullopt, false, 0});
  r.result = result;
  r.revision = 8;
  r.node = kv::Node{"value", 1, 2, 3, 4, 5, 6};
  r.exists = true;
  r.names = {"a", "b"};
  r.nodes = {kv::KeyValue{"/a", kv::Node{"x", 1, 1, 0, 0, 0, 0}}};
  r.more = true;
  r.status = net::StatusInfo{1, "n1", "tok", "leader", 1, 2, 3, 4, 5, 6, 7, 8, 9};
  r.members = {net::MemberInfo{1, "n1", "127.0.0.1:1", "127.0.0.1:2", true, false, true}};
  r.lease = net::LeaseTtlInfo{17, 10'000, 3, 2'500, {"/a", "/b"}};
  r.watch_id = 23;
  r.events = {kv::Event{kv::EventType::Created, "/w/a", 7, kv::Node{"x", 7, 7, 0, 0, 0, 0}, std::nullopt},
              kv::Event{kv::EventType::Updated, "/w/b", 8, kv::Node{"y", 2, 8, 1, 0, 0, 0}, kv::Node{"o", 2, 2, 0, 0, 0, 0}},
              kv::Event{kv::EventType::Deleted, "/w/c", 8, std::nullopt, std::nullopt}};
  r.progress_revision = 8;
  r.canceled = true;
  r.chunk = std::string("snap\0shot", 9);
  r.offset = 1 << 20;
  r.total_bytes = 3 << 20;
  r.done = true;
  r.index = 42;
  return r;
}

}  // namespace

TEST_CASE("client requests and responses round-trip") {
  std::string error;
  const auto request = net::decode_request(net::encode_request(sample_request()), &error);
  REQUIRE_MESSAGE(request.has_value(), error);
  CHECK(*request == sample_request());
  const auto response = net::decode_response(net::encode_response(sample_response()), &error);
  REQUIRE_MESSAGE(response.has_value(), error);
  CHECK(*response == sample_response());
}

TEST_CASE("a write carries kv::Command bytes untouched") {
  kv::Command command;
  command.session_id = 77;
  command.sequence = 3;
  command.body = kv::single(kv::Op::put("/a", "b"));
  net::ClientRequest r;
  r.kind = net::RequestKind::Write;
  r.command = kv::encode_command(command);
  const auto decoded = net::decode_request(net::encode_request(r), nullptr);
  REQUIRE(decoded.has_value());
  const kv::DecodedCommand back = kv::decode_command(decoded->command);
  REQUIRE(back.status.ok());
  CHECK(back.command == command);
}

TEST_CASE("unknown request kinds are refused with the request id") {
  net::ClientRequest r = sample_request();
  std::string bytes = net::encode_request(r);
  // Re-encode with a kind this build does not know by patching the enum through a fresh build.
  r.kind = static_cast<net::RequestKind>(200);
  bytes = net::encode_request(r);
  std::string error;
  std::uint64_t id = 0;
  CHECK_FALSE(net::decode_request(bytes, &error, &id).has_value());
  CHECK(id == 99);
  CHECK(error.find("unknown request kind") != std::string::npos);
}

TEST_CASE("unknown watch kinds and event types are refused") {
  net::ClientRequest r = sample_request();
  r.watch_kind = static_cast<kv::WatchKind>(9);
  std::string error;
  std::uint64_t id = 0;
  CHECK_FALSE(net::decode_request(net::encode_request(r), &error, &id).has_value());
  CHECK(id == 99);
  CHECK(error.find("unknown watch kind") != std::string::npos);
  net::ClientResponse response = sample_response();
  response.events[0].type = static_cast<kv::EventType>(5);
  CHECK_FALSE(net::decode_response(net::encode_response(response), &error).has_value());
  CHECK(error.find("unknown event type") != std::string::npos);
}

TEST_CASE("unknown error codes pass through a response") {
  net::ClientResponse r;
  r.error = static_cast<net::ErrorCode>(77);
  const auto back = net::decode_response(net::encode_response(r), nullptr);
  REQUIRE(back.has_value());
  CHECK(static_cast<int>(back->error) == 77);
  CHECK(net::to_string(back->error) == "unknown-77");
  CHECK(net::to_string(net::ErrorCode::NotFound) == "not-found");
  CHECK(net::to_string(net::ErrorCode::NotLeader) == "not-leader");
}

TEST_CASE("malformed, truncated and bit-flipped bytes are refused, never a crash") {
  std::string error;
  CHECK_FALSE(net::decode_request("", &error).has_value());
  CHECK_FALSE(net::decode_request("short", &error).has_value());
  CHECK_FALSE(net::decode_request(std::string(64, '\xff'), &error).has_value());
  CHECK_FALSE(net::decode_response(std::string(64, '\0'), &error).has_value());
  CHECK_FALSE(net::decode_hello(std::string(64, '\x7f'), &error).has_value());
  // A response is not a request: the frame kind says which, but a mix-up must still verify.
  const std::string request = net::encode_request(sample_request());
  const std::string response = net::encode_response(sample_response());
  for (std::size_t cut = 0; cut < request.size(); ++cut) (void)net::decode_request(request.substr(0, cut), &error);
  for (std::size_t cut = 0; cut < response.size(); ++cut) (void)net::decode_response(response.substr(0, cut), &error);
  std::mt19937_64 rng(1);
  for (int round = 0; round < 5000; ++round) {
    std::string r = round % 2 == 0 ? request : response;
    for (int flips = 0; flips < 1 + round % 8; ++flips) {
      const std::size_t at = rng() % r.size();
      r[at] = static_cast<char>(r[at] ^ (1 << (rng() % 8)));
    }
    (void)net::decode_request(r, &error);
    (void)net::decode_response(r, &error);
    (void)net::decode_hello(r, &error);
  }
  // Misaligned input is copied, not read in place.
  std::string shifted = fmt::format("x{}", request);
  CHECK(net::decode_request(std::string_view(shifted).substr(1), &error).has_value());
}

TEST_CASE("an oversized response becomes a TooLarge error with the same id") {
  net::ClientResponse r;
  r.id = 11;
  r.node = kv::Node{};
  r.node->value.assign(net::client_response_bytes_max + 1, 'v');
  const auto back = net::decode_response(net::encode_response(r), nullptr);
  REQUIRE(back.has_value());
  CHECK(back->id == 11);
  CHECK(back->error == net::ErrorCode::TooLarge);
}

TEST_CASE("peer hellos round-trip") {
  const net::PeerHello hello{"coord-abc", 1, 2, "n1", "127.0.0.1:7101"};
  std::string error;
  const auto back = net::decode_hello(net::encode_hello(hello), &error);
  REQUIRE_MESSAGE(back.has_value(), error);
  CHECK(*back == hello);
}
