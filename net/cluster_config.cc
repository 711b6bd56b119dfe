#include "net/cluster_config.h"

#include <fmt/format.h>

#include <algorithm>

#include "net/uv_util.h"

namespace coord::net {

namespace {

constexpr std::size_t member_name_bytes_max = 63;

}  // namespace

bool valid_member_name(std::string_view name) {
  if (name.empty() || name.size() > member_name_bytes_max) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

namespace {

// FNV-1a, 64-bit: a stable, dependency-free fingerprint (not a security measure).
std::uint64_t fnv1a(std::string_view bytes) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

const MemberConfig* ClusterConfig::find(std::string_view name) const {
  for (const MemberConfig& m : members) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

const MemberConfig* ClusterConfig::find(raft::NodeId id) const {
  for (const MemberConfig& m : members) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

std::vector<raft::NodeId> ClusterConfig::ids() const {
  std::vector<raft::NodeId> out;
  for (const MemberConfig& m : members) out.push_back(m.id);
  return out;
}

std::string ClusterConfig::spec() const {
  std::string out;
  for (const MemberConfig& m : members) {
    if (!out.empty()) out += ',';
    out += fmt::format("{}={}", m.name, m.peer_address);
  }
  return out;
}

std::optional<ClusterConfig> parse_initial_cluster(std::string_view spec, std::string_view token,
                                                   std::string* error) {
  auto fail = [&](std::string reason) -> std::optional<ClusterConfig> {
    if (error != nullptr) *error = fmt::format("--initial-cluster: {}", reason);
    return std::nullopt;
  };
  ClusterConfig config;
  std::size_t start = 0;
  while (start <= spec.size()) {
    std::size_t end = spec.find(',', start);
    if (end == std::string_view::npos) end = spec.size();
    const std::string_view item = spec.substr(start, end - start);
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) return fail(fmt::format("'{}' is not name=host:port", item));
    MemberConfig m;
    m.name = std::string(item.substr(0, eq));
    m.peer_address = std::string(item.substr(eq + 1));
    if (!valid_member_name(m.name)) {
      return fail(fmt::format("'{}' is not a member name (1-{} of A-Z a-z 0-9 _ - .)", m.name,
                              member_name_bytes_max));
    }
    std::string address_error;
    if (!parse_socket_address(m.peer_address, &address_error)) return fail(address_error);
    if (config.find(m.name) != nullptr) return fail(fmt::format("member '{}' listed twice", m.name));
    config.members.push_back(std::move(m));
    start = end + 1;
  }
  if (config.members.empty()) return fail("no members");
  std::sort(config.members.begin(), config.members.end(),
            [](const MemberConfig& a, const MemberConfig& b) { return a.name < b.name; });
  for (std::size_t i = 0; i < config.members.size(); ++i) config.members[i].id = i + 1;
  config.token = token.empty() ? fmt::format("coord-{:016x}", fnv1a(config.spec())) : std::string(token);
  return config;
}

}  // namespace coord::net
