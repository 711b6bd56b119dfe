// The initial cluster as given on the command line ("n1=127.0.0.1:7001,n2=...") and the member
// ids derived from it. Ids are the 1-based position of each name in the sorted list, so every
// member computes the same ids from the same flag without any coordination; the cluster token
// is a hash of the sorted list, so members started with different lists refuse each other.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "raft/types.h"

namespace coord::net {

struct MemberConfig {
  raft::NodeId id = raft::kNoNode;
  std::string name;
  std::string peer_address;

  bool operator==(const MemberConfig&) const = default;
};

struct ClusterConfig {
  std::string token;
  std::vector<MemberConfig> members;  // sorted by name, so by id

  const MemberConfig* find(std::string_view name) const;
  const MemberConfig* find(raft::NodeId id) const;
  std::vector<raft::NodeId> ids() const;
  // The canonical form of the list ("a=addr,b=addr", sorted), as stored in the data dir.
  std::string spec() const;
};

// 1 to 63 characters of [A-Za-z0-9_.-].
bool valid_member_name(std::string_view name);

// Names: 1 to 63 characters of [A-Za-z0-9_.-]. Refuses duplicates and unparsable addresses.
// An empty `token` derives one from the sorted list.
std::optional<ClusterConfig> parse_initial_cluster(std::string_view spec, std::string_view token,
                                                   std::string* error);

}  // namespace coord::net
