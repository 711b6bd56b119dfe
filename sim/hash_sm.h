// The state machine of the `raft` workload: it remembers how many commands it applied and a
// rolling hash of them, which is all a checker needs to tell two replicas' histories apart.
// Commands are unique strings (client id + sequence number), so a duplicate apply or a lost one
// changes the hash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "raft/types.h"

namespace coord::sim {

inline constexpr std::size_t kSnapshotFillerBytesMax = 4096;

// Everything a replica's state machine is, at one applied index.
struct StateDigest {
  raft::Index index = 0;
  std::uint64_t count = 0;  // commands applied (leader no-ops and conf changes do not count)
  std::uint64_t hash = 0;

  bool operator==(const StateDigest&) const = default;
};

// The digest of one log entry, as the checkers compare them.
struct EntryDigest {
  raft::Term term = 0;
  std::uint64_t hash = 0;  // of the type and data

  bool operator==(const EntryDigest&) const = default;
};

EntryDigest digest_of(const raft::Entry& entry);

class HashStateMachine {
 public:
  HashStateMachine() = default;

  // The host has checked that entry.index == digest().index + 1.
  void apply(const raft::Entry& entry);
  const StateDigest& digest() const { return state_; }
  raft::Index index() const { return state_.index; }

  // Serialized state: little-endian index, count, hash (24 bytes), then up to
  // kSnapshotFillerBytesMax bytes of filler derived from them. The filler makes snapshots span
  // several chunks, and restore() checks every byte of it, so a chunk lost, repeated or
  // misplaced in transfer is caught.
  std::string snapshot() const;
  static std::optional<HashStateMachine> restore(std::string_view data);

 private:
  StateDigest state_;
};

}  // namespace coord::sim
