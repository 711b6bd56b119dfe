// Error codes of the key-value service. The numeric values are part of the wire format and of
// the results remembered for retried requests: never renumber, only append.
#pragma once

#include <cstdint>
#include <string>

#include "kv/types.h"

namespace coord::kv {

enum class Error : std::uint16_t {
  Ok = 0,
  InvalidPath = 1,      // not an absolute, well-formed path within the limits
  NotFound = 2,         // the node (or, for create/put, its parent) does not exist
  AlreadyExists = 3,    // create on an existing node
  NotEmpty = 4,         // delete of a node with children, without recursive
  CompareFailed = 5,    // a transaction's comparisons failed and it has no else-branch
  TooLarge = 6,         // a value, command, result or subtree beyond its limit
  Compacted = 7,        // the revision asked for is below the compaction point
  InvalidRequest = 8,   // malformed bytes or a request that can never succeed
  StaleSequence = 9,    // a request older than the session's last one: its result is gone
  FutureRevision = 10,  // a read or compaction at a revision not reached yet
  WatchOverflow = 11,   // the watcher fell too far behind and was cancelled
  TooManyWatchers = 12,
  UnknownWatch = 13,
  StaleState = 14,      // the state was replaced by an older snapshot under a watcher
  LeaseNotFound = 15,   // no lease with that id (never granted, revoked or expired)
  LeaseExists = 16,     // a grant naming an id that is or was in use (ids are never reused)
  NoChildrenForEphemerals = 17,  // a child under a node with a lease, or a lease on a parent
  TooManyLeases = 18,   // leases_max reached
  LeaseRenewed = 19,    // an expiry decided before the lease's latest keep-alive: not applied
};

inline constexpr std::uint16_t error_code_max = 19;

const char* to_string(Error error);

// An error with its explanation. `compact_revision` is set with Compacted (where a client may
// resume from) and is 0 otherwise.
struct Status {
  Error error = Error::Ok;
  std::string message;
  Revision compact_revision = 0;

  bool ok() const { return error == Error::Ok; }
  bool operator==(const Status&) const = default;
};

Status make_status(Error error, std::string message);
Status compacted_status(Revision asked, Revision compact_revision);

}  // namespace coord::kv
