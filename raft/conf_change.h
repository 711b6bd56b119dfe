// Membership changes, one server at a time. A change is a log entry of type ConfChange; it takes
// effect on every node when the node hands it out as committed, so all nodes walk through the
// same sequence of configurations in log order.
#pragma once

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

  bool operator==(const ConfChange&) const = default;
};

std::string encode_conf_change(const ConfChange& change);
std::optional<ConfChange> decode_conf_change(std::string_view bytes);

// The configuration after `change`; voters and learners stay sorted and disjoint.
ConfState apply_conf_change(const ConfState& conf, const ConfChange& change);

bool is_voter(const ConfState& conf, NodeId id);
bool is_learner(const ConfState& conf, NodeId id);

}  // namespace coord::raft
