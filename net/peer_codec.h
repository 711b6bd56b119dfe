// The hello frame a replica sends first on every connection it opens to another replica
// (schema net/peer_hello.fbs). Decoding trusts nothing, like every codec in net/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace coord::net {

// Names, a token and an address: far below this.
inline constexpr std::size_t peer_hello_bytes_max = 4096;

struct PeerHello {
  std::string cluster;  // cluster token
  std::uint64_t from = 0;
  std::uint64_t to = 0;
  std::string name;
  std::string client_address;
  std::string peer_address{};  // empty from builds before runtime membership

  bool operator==(const PeerHello&) const = default;
};

std::string encode_hello(const PeerHello& hello);
std::optional<PeerHello> decode_hello(std::string_view bytes, std::string* error);

}  // namespace coord::net
