// Membership changes, one server at a time. A change is a log entry of type ConfChange; it takes
// effect on every node when the node hands it out as committed, so all nodes walk through the
// same sequence of configurations in log order.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "raft/types.h"

namespace coord::raft {

enum class ConfChangeType : std::uint8_t {
  AddVoter = 0,    // also promotes an existing learner
  AddLearner = 1,
  RemoveNode = 2,
};

struct ConfChange {
  ConfChangeType type = ConfChangeType::AddVoter;
  NodeId node = kNoNode;
  // Opaque to the core: the host's description of the member (net/member_table.h: its name and
  // peer address), so that every replica learns it in log order with the change itself.
  std::string context{};

  bool operator==(const ConfChange&) const = default;
};

// Version 1 (10 bytes) without a context, version 2 (10 bytes + context) with one, so that a
// change without context stays readable by builds that only know version 1.
inline constexpr std::size_t conf_change_context_bytes_max = 4096;
std::string encode_conf_change(const ConfChange& change);
std::optional<ConfChange> decode_conf_change(std::string_view bytes);

// The configuration after `change`; voters and learners stay sorted and disjoint.
ConfState apply_conf_change(const ConfState& conf, const ConfChange& change);

bool is_voter(const ConfState& conf, NodeId id);
bool is_learner(const ConfState& conf, NodeId id);

}  // namespace coord::raft
