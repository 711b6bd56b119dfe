// A change to one node, as watchers see it. Every write request that changes the tree produces
// one event per node whose value or existence it changed, all at the request's revision, in path
// order; a change to a node's children alone (its child count) is not an event for that node.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "kv/command.h"
#include "kv/types.h"

namespace coord::kv {

enum class EventType : std::uint8_t { Created = 0, Updated = 1, Deleted = 2 };

const char* to_string(EventType type);

struct Event {
  EventType type = EventType::Created;
  std::string path;
  Revision revision = 0;
  std::optional<Node> node;  // the node after the change; none for Deleted
  std::optional<Node> prev;  // the node before it; none for Created, or when not asked for

  bool operator==(const Event&) const = default;
};

}  // namespace coord::kv
