#include "raft/conf_change.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace coord::raft {

namespace {

// Layout: version (1 byte), type (1 byte), node id (8 bytes, little-endian), then for version 2
// the context bytes up to the end. Explicit byte order so every replica, whatever its platform,
// decodes the same change.
constexpr std::uint8_t kConfChangeVersion = 1;
constexpr std::uint8_t kConfChangeVersionWithContext = 2;
constexpr std::size_t kConfChangeBytes = 10;

void insert_sorted(std::vector<NodeId>& ids, NodeId id) {
  auto it = std::lower_bound(ids.begin(), ids.end(), id);
  if (it == ids.end() || *it != id) ids.insert(it, id);
}

void erase_sorted(std::vector<NodeId>& ids, NodeId id) {
  auto it = std::lower_bound(ids.begin(), ids.end(), id);
  if (it != ids.end() && *it == id) ids.erase(it);
}

// Linear on purpose: membership lists are a handful of ids, and this stays right even for a
// ConfState a host built without sorting.
bool contains(const std::vector<NodeId>& ids, NodeId id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

void normalize(std::vector<NodeId>& ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
}

}  // namespace

std::string encode_conf_change(const ConfChange& change) {
  std::string out(kConfChangeBytes, '\0');
  out[0] = static_cast<char>(change.context.empty() ? kConfChangeVersion : kConfChangeVersionWithContext);
  out[1] = static_cast<char>(change.type);
  for (std::size_t k = 0; k < 8; ++k) {
    out[2 + k] = static_cast<char>((change.node >> (8 * k)) & 0xff);
  }
  out += change.context;
  return out;
}

std::optional<ConfChange> decode_conf_change(std::string_view bytes) {
  if (bytes.size() < kConfChangeBytes) return std::nullopt;
  const auto version = static_cast<std::uint8_t>(bytes[0]);
  if (version == kConfChangeVersion && bytes.size() != kConfChangeBytes) return std::nullopt;
  if (version == kConfChangeVersionWithContext &&
      (bytes.size() == kConfChangeBytes || bytes.size() > kConfChangeBytes + conf_change_context_bytes_max)) {
    return std::nullopt;
  }
  if (version != kConfChangeVersion && version != kConfChangeVersionWithContext) return std::nullopt;
  const auto type = static_cast<std::uint8_t>(bytes[1]);
  if (type > static_cast<std::uint8_t>(ConfChangeType::RemoveNode)) return std::nullopt;
  NodeId node = 0;
  for (std::size_t k = 0; k < 8; ++k) {
    node |= static_cast<NodeId>(static_cast<std::uint8_t>(bytes[2 + k])) << (8 * k);
  }
  // Node 0 means "nobody"; a change naming it can only come from corruption or a bug.
  if (node == kNoNode) return std::nullopt;
  return ConfChange{static_cast<ConfChangeType>(type), node, std::string(bytes.substr(kConfChangeBytes))};
}

ConfState apply_conf_change(const ConfState& conf, const ConfChange& change) {
  ConfState next = conf;
  normalize(next.voters);
  normalize(next.learners);
  if (change.node == kNoNode) return next;
  switch (change.type) {
    case ConfChangeType::AddVoter:
      erase_sorted(next.learners, change.node);
      insert_sorted(next.voters, change.node);
      break;
    case ConfChangeType::AddLearner:
      // Demoting a voter this way would silently shrink the quorum; removal must be explicit.
      if (!contains(next.voters, change.node)) insert_sorted(next.learners, change.node);
      break;
    case ConfChangeType::RemoveNode:
      erase_sorted(next.voters, change.node);
      erase_sorted(next.learners, change.node);
      break;
  }
  return next;
}

bool is_voter(const ConfState& conf, NodeId id) { return contains(conf.voters, id); }
bool is_learner(const ConfState& conf, NodeId id) { return contains(conf.learners, id); }

}  // namespace coord::raft
