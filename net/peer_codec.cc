#include "net/peer_codec.h"

#include <fmt/format.h>

#include <utility>
#include <vector>

#include "net/aligned.h"
#include "net/peer_hello_generated.h"

namespace coord::net {

namespace {

bool fail(std::string* error, std::string reason) {
  if (error != nullptr) *error = std::move(reason);
  return false;
}

std::string to_string(const flatbuffers::String* s) { return s == nullptr ? std::string() : s->str(); }

}  // namespace

std::string encode_hello(const PeerHello& hello) {
  flatbuffers::FlatBufferBuilder fbb(256);
  auto cluster = fbb.CreateString(hello.cluster);
  auto name = fbb.CreateString(hello.name);
  auto client = fbb.CreateString(hello.client_address);
  auto peer_address = fbb.CreateString(hello.peer_address);
  peer::FinishHelloBuffer(fbb, peer::CreateHello(fbb, cluster, hello.from, hello.to, name, client, peer_address));
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

std::optional<PeerHello> decode_hello(std::string_view bytes, std::string* error) {
  if (bytes.size() > peer_hello_bytes_max) {
    fail(error, fmt::format("hello of {} bytes exceeds the limit of {} bytes", bytes.size(), peer_hello_bytes_max));
    return std::nullopt;
  }
  if (bytes.size() < sizeof(flatbuffers::uoffset_t) + flatbuffers::kFileIdentifierLength) {
    fail(error, "hello shorter than a flatbuffers header");
    return std::nullopt;
  }
  std::vector<std::uint64_t> storage;
  const std::uint8_t* data = aligned_bytes(bytes, storage);
  if (!peer::HelloBufferHasIdentifier(data)) {
    fail(error, "not a peer hello (file identifier mismatch)");
    return std::nullopt;
  }
  flatbuffers::Verifier::Options options;
  options.max_depth = 4;
  options.max_tables = 16;
  flatbuffers::Verifier verifier(data, bytes.size(), options);
  if (!peer::VerifyHelloBuffer(verifier)) {
    fail(error, "malformed peer hello (flatbuffers verification failed)");
    return std::nullopt;
  }
  const peer::Hello* h = peer::GetHello(data);
  return PeerHello{to_string(h->cluster()), h->from(), h->to(), to_string(h->name()),
                   to_string(h->client_address()), to_string(h->peer_address())};
}

}  // namespace coord::net
