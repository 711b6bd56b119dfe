// Value types shared by the Raft core and its hosts. Plain data, no behaviour: a host can copy,
// serialize or compare them without touching the core.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coord::raft {

using NodeId = std::uint64_t;
using Term = std::uint64_t;
using Index = std::uint64_t;

// 0 is never a member: it means "nobody" for votes and leaders.
inline constexpr NodeId kNoNode = 0;

enum class EntryType : std::uint8_t {
  Normal = 0,      // a client command, opaque to the core
  ConfChange = 1,  // a membership change, encoded by conf_change.h
};

struct Entry {
  Term term = 0;
  Index index = 0;
  EntryType type = EntryType::Normal;
  std::string data;  // empty for the no-op a new leader appends

  bool operator==(const Entry&) const = default;
};

// Durable vote state. Must be on disk before any message that depends on it leaves.
struct HardState {
  Term term = 0;
  NodeId vote = kNoNode;
  Index commit = 0;

  bool operator==(const HardState&) const = default;
};

// Membership: voters decide elections and commitment, learners only receive the log.
// Both lists are kept sorted so that equal configurations compare equal.
struct ConfState {
  std::vector<NodeId> voters;
  std::vector<NodeId> learners;

  bool operator==(const ConfState&) const = default;
};

struct SnapshotMeta {
  Index index = 0;  // last log index the snapshot covers
  Term term = 0;    // term of that entry
  ConfState conf;   // membership as of that index

  bool operator==(const SnapshotMeta&) const = default;
};

// The bytes of a state-machine image. The core only reads them (a chunk at a time, to send),
// so a host may keep them wherever suits it: in memory (below; the simulator and tests), or in a
// read-only mapping of a file (the server, storage/snapshot_file.h), so that a large snapshot is
// never copied into the heap whole.
class SnapshotData {
 public:
  virtual ~SnapshotData() = default;
  // Every byte, valid as long as this object lives.
  virtual std::string_view bytes() const = 0;
  std::size_t size() const { return bytes().size(); }
};

class InMemorySnapshotData final : public SnapshotData {
 public:
  explicit InMemorySnapshotData(std::string bytes) : bytes_(std::move(bytes)) {}
  std::string_view bytes() const override { return bytes_; }

 private:
  std::string bytes_;
};

using SnapshotDataPtr = std::shared_ptr<const SnapshotData>;

inline SnapshotDataPtr snapshot_bytes(std::string bytes) {
  return std::make_shared<const InMemorySnapshotData>(std::move(bytes));
}

// Where a follower keeps a snapshot's chunks as they arrive from the leader, so that a host can
// put them in a file instead of memory. The default (no factory in Config) keeps them in memory.
class SnapshotReceiver {
 public:
  virtual ~SnapshotReceiver() = default;
  // Keeps the next chunk; false when it cannot (the transfer is then dropped and restarted).
  virtual bool append(std::string_view chunk) = 0;
  virtual std::uint64_t size() const = 0;
  // Every chunk is in: the snapshot's bytes, or null when they cannot be kept or are refused (a
  // host may check them whole here, before anything is recorded). Null drops the transfer: the
  // follower stays as it was, and the leader starts again from offset 0, which takes its latest
  // snapshot (a damaged one may have been replaced meanwhile).
  virtual SnapshotDataPtr finish() = 0;
};

// A state-machine image. The bytes are shared because the leader keeps them while it streams
// chunks to several followers.
struct Snapshot {
  SnapshotMeta meta;
  SnapshotDataPtr data;

  bool empty() const { return meta.index == 0; }
};

enum class MessageType : std::uint8_t {
  PreVote,        // "would you vote for me at term+1?"; changes no one's term
  PreVoteResp,
  Vote,
  VoteResp,
  Append,         // entries (maybe none) after (log_term, index); also carries commit
  AppendResp,
  Heartbeat,      // commit + read round; never carries entries
  HeartbeatResp,
  Snapshot,       // one chunk of a snapshot
  SnapshotResp,   // acknowledges a chunk, or rejects the transfer
  TimeoutNow,     // leadership transfer: campaign now, skipping pre-vote and leases
  ReadIndex,      // follower asks the leader for a read index (context = request id)
  ReadIndexResp,
};

const char* to_string(MessageType type);

struct Message {
  MessageType type = MessageType::Append;
  NodeId from = kNoNode;
  NodeId to = kNoNode;
  Term term = 0;

  // Append: (log_term, index) is the entry before `entries`.
  // Vote/PreVote: (log_term, index) is the candidate's last entry.
  // AppendResp: index is the last matching index, or on reject the hint where to probe.
  // ReadIndexResp: index is the read index.
  // SnapshotResp: index is the snapshot index acknowledged.
  Term log_term = 0;
  Index index = 0;
  std::vector<Entry> entries;
  Index commit = 0;

  bool reject = false;
  // AppendResp reject: `index` is the rejected prev index; the follower suggests probing at
  // `reject_hint`, whose term in its log is `reject_term` (0 if it has no such entry).
  Index reject_hint = 0;
  Term reject_term = 0;
  bool transfer = false;  // Vote/PreVote caused by leadership transfer: ignore leases

  // Heartbeat/HeartbeatResp: read round; ReadIndex/ReadIndexResp: request id.
  std::uint64_t context = 0;

  // Snapshot chunk: meta, byte offset and whether it is the last one.
  SnapshotMeta snapshot;
  std::uint64_t snapshot_offset = 0;
  std::string snapshot_chunk;
  bool snapshot_done = false;
};

// A read that is now linearizable: once the state machine has applied `index`, a read for
// `request_id` may be served from local state.
struct ReadState {
  std::uint64_t request_id = 0;
  Index index = 0;

  bool operator==(const ReadState&) const = default;
};

enum class Role : std::uint8_t { Follower, PreCandidate, Candidate, Leader };

const char* to_string(Role role);

}  // namespace coord::raft
