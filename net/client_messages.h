// Requests and responses of the client port as plain structs (the wire form is
// net/client_protocol.fbs, the codec net/client_codec.h). Writes are kv::Commands and their
// results kv::Results, so the state machine stays the one owner of what a write means.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kv/command.h"
#include "kv/event.h"
#include "kv/reads.h"
#include "kv/watch.h"

namespace coord::net {

// Values are the wire values (client_protocol.fbs): never renumber, only append.
enum class RequestKind : std::uint8_t {
  Write = 1,
  Get = 2,
  Exists = 3,
  List = 4,
  Range = 5,
  Status = 6,
  MemberList = 7,
  LeaseTtl = 8,
  Watch = 9,
  WatchCancel = 10,
  Snapshot = 11,
  MemberAdd = 12,
  MemberRemove = 13,
  MemberPromote = 14,
};
inline constexpr std::uint8_t request_kind_max = 14;

// 0-99: kv::Error, same numbers (those kv adds later pass through as they are); 100 and up:
// the service's own. Only the ones this code names are listed.
enum class ErrorCode : std::uint16_t {
  Ok = 0,
  InvalidPath = 1,
  NotFound = 2,
  AlreadyExists = 3,
  NotEmpty = 4,
  CompareFailed = 5,
  TooLarge = 6,
  Compacted = 7,
  InvalidRequest = 8,
  StaleSequence = 9,
  FutureRevision = 10,
  WatchOverflow = 11,
  TooManyWatchers = 12,
  UnknownWatch = 13,
  StaleState = 14,
  LeaseNotFound = 15,
  LeaseExists = 16,
  NoChildrenForEphemerals = 17,
  TooManyLeases = 18,
  LeaseRenewed = 19,
  NotLeader = 100,
  Unavailable = 101,
  Timeout = 102,
  UnknownMember = 103,
  MemberExists = 104,
  NotLearner = 105,
  LastVoter = 106,
  // The member's disk is full: it refused the write (or could not make it durable, and the
  // write may still apply). Retryable with the same sequence; another member may lead soon.
  NoSpace = 107,
};

const char* to_string(RequestKind kind);
// kv's names below 100 ("not-found"), ours above ("not-leader"); "unknown-<n>" otherwise.
std::string to_string(ErrorCode code);
ErrorCode from_kv(kv::Error error);
// Safe to retry with the same session and sequence (and, for reads, at all).
bool retryable(ErrorCode code);

struct ClientRequest {
  std::uint64_t id = 0;
  RequestKind kind = RequestKind::Status;
  std::string command;  // Write: kv::Command bytes (kv/codec.h)
  std::string path;
  kv::Revision revision = 0;
  bool serializable = false;
  std::string start_after;
  std::uint32_t limit = 0;
  bool keys_only = false;
  kv::LeaseId lease = 0;                          // LeaseTtl
  kv::WatchKind watch_kind = kv::WatchKind::Key;  // Watch
  bool prev = false;                              // Watch
  kv::WatchId watch_id = 0;                       // WatchCancel
  bool forwarded = false;  // sent by a replica on a client's behalf: never forwarded again
  std::string member_name;   // MemberAdd, MemberRemove, MemberPromote
  std::string peer_address;  // MemberAdd
  bool learner = false;      // MemberAdd

  bool operator==(const ClientRequest&) const = default;
};

struct LeaderHint {
  std::uint64_t id = 0;
  std::string name;
  std::string client_address;

  bool operator==(const LeaderHint&) const = default;
};

struct MemberInfo {
  std::uint64_t id = 0;
  std::string name;
  std::string peer_address;
  std::string client_address;
  bool voter = false;
  bool learner = false;
  bool leader = false;

  bool operator==(const MemberInfo&) const = default;
};

struct StatusInfo {
  std::uint64_t id = 0;
  std::string name;
  std::string cluster;
  std::string role;
  std::uint64_t leader = 0;
  std::uint64_t term = 0;
  std::uint64_t commit = 0;
  std::uint64_t applied = 0;
  std::uint64_t log_first = 0;
  std::uint64_t log_last = 0;
  std::uint64_t snapshot_index = 0;
  kv::Revision revision = 0;
  kv::Revision compact_revision = 0;

  bool operator==(const StatusInfo&) const = default;
};

// A lease as the leader sees it: the state machine's record and the leader's countdown.
struct LeaseTtlInfo {
  kv::LeaseId id = 0;
  std::uint64_t ttl_ms = 0;
  std::uint64_t keepalives = 0;
  std::uint64_t remaining_ms = 0;
  std::vector<std::string> keys;

  bool operator==(const LeaseTtlInfo&) const = default;
};

struct ClientResponse {
  std::uint64_t id = 0;
  ErrorCode error = ErrorCode::Ok;
  std::string message;
  kv::Revision compact_revision = 0;
  std::optional<LeaderHint> leader;
  std::optional<kv::Result> result;  // Write
  kv::Revision revision = 0;
  std::optional<kv::Node> node;  // Get
  bool exists = false;
  std::vector<std::string> names;    // List
  std::vector<kv::KeyValue> nodes;   // Range
  bool more = false;
  std::optional<StatusInfo> status;
  std::vector<MemberInfo> members;
  std::optional<LeaseTtlInfo> lease;  // LeaseTtl
  // Watch streams (client_protocol.fbs): the answer to Watch and every frame after it.
  kv::WatchId watch_id = 0;
  std::vector<kv::Event> events;
  kv::Revision progress_revision = 0;
  bool canceled = false;
  // Snapshot streams (client_protocol.fbs).
  std::string chunk;
  std::uint64_t offset = 0;
  std::uint64_t total_bytes = 0;
  bool done = false;
  std::uint64_t index = 0;
  std::string cluster;  // MemberList and member changes: the cluster token

  bool ok() const { return error == ErrorCode::Ok; }
  bool operator==(const ClientResponse&) const = default;
};

ClientResponse error_response(std::uint64_t id, ErrorCode error, std::string message);

}  // namespace coord::net
