// Requests and results of the replicated state machine as plain structs. Writes travel through
// the Raft log encoded by kv/codec.h; reads are served locally (kv/state_machine.h) and never
// enter the log.
//
// Every write is a Command: a client session, a sequence number and a body. The body is a
// transaction (put, create, delete and compare-and-set are transactions with one operation), a
// compaction, or a lease command (grant, revoke, keep-alive, expire). Leases carry no time: the
// countdown runs on the leader's monotonic clock (kv/lease_clock.h), which proposes LeaseExpire
// through the log when it runs out, so every replica deletes the same keys at the same revision.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "kv/error.h"
#include "kv/types.h"

namespace coord::kv {

// A node: its value and its metadata.
struct Node {
  std::string value;
  Revision create_revision = 0;  // revision of the write that created it
  Revision mod_revision = 0;     // revision of the last write to its value (create included)
  std::uint64_t version = 0;     // writes to its value since creation (0 when just created)
  std::uint64_t num_children = 0;
  std::uint64_t children_version = 0;  // children created or deleted since creation
  LeaseId lease = 0;

  bool operator==(const Node&) const = default;
};

// Comparisons: on a missing node every target but Exists is false. Exists compares 1 (present)
// or 0 (missing) with `number`; Value compares bytes lexicographically.
enum class CompareTarget : std::uint8_t {
  Exists = 0,
  Version = 1,
  CreateRevision = 2,
  ModRevision = 3,
  Value = 4,
};
inline constexpr std::uint8_t compare_target_max = 4;

enum class CompareOp : std::uint8_t { Equal = 0, NotEqual = 1, Less = 2, Greater = 3 };
inline constexpr std::uint8_t compare_op_max = 3;

struct Compare {
  std::string path;
  CompareTarget target = CompareTarget::Exists;
  CompareOp op = CompareOp::Equal;
  std::uint64_t number = 0;  // Exists, Version, CreateRevision, ModRevision
  std::string value;         // Value

  bool operator==(const Compare&) const = default;

  static Compare exists(std::string path);
  static Compare missing(std::string path);
  static Compare version(std::string path, CompareOp op, std::uint64_t version);
  static Compare create_revision(std::string path, CompareOp op, Revision revision);
  static Compare mod_revision(std::string path, CompareOp op, Revision revision);
  static Compare value_is(std::string path, CompareOp op, std::string value);
};

enum class OpType : std::uint8_t { Get = 0, Put = 1, Create = 2, Delete = 3 };
inline constexpr std::uint8_t op_type_max = 3;

// Put creates or replaces; like ZooKeeper, the parent must exist unless `parents` is set, which
// creates missing ancestors with empty values. Create fails on an existing node; with
// `sequential` the name gets the parent's next counter appended (10 digits, never reused).
// Delete fails on a node with children unless `recursive`. Get never fails on a missing node:
// its result just has no node.
//
// A Put or Create with a lease makes an ephemeral node: the lease must exist (LeaseNotFound),
// and the node is deleted when the lease is revoked or expires. As in ZooKeeper, ephemeral nodes
// have no children: creating a child under one, or putting a lease on a node with children,
// fails with NoChildrenForEphemerals. The root never takes a lease (InvalidRequest).
struct Op {
  OpType type = OpType::Get;
  std::string path;
  std::string value;        // Put, Create
  LeaseId lease = 0;        // Put, Create: 0 for none (a Put replaces the lease too)
  bool parents = false;     // Put, Create
  bool sequential = false;  // Create
  bool recursive = false;   // Delete

  bool operator==(const Op&) const = default;

  static Op get(std::string path);
  static Op put(std::string path, std::string value, LeaseId lease = 0);
  static Op create(std::string path, std::string value, LeaseId lease = 0);
  static Op create_sequential(std::string prefix, std::string value, LeaseId lease = 0);
  static Op remove(std::string path, bool recursive = false);
};

// If every comparison holds, `success` runs, else `failure`. Atomic: if any operation of the
// chosen branch fails, the request fails with its error and changes nothing. When the
// comparisons fail and `failure` is empty, the request fails with CompareFailed (that is how a
// compare-and-set reports a lost race). One branch may change a node's value at most once.
struct Txn {
  std::vector<Compare> compares;
  std::vector<Op> success;
  std::vector<Op> failure;

  bool operator==(const Txn&) const = default;
};

// Drops the history below `revision`; reads and watches from below it fail with Compacted.
struct Compact {
  Revision revision = 0;

  bool operator==(const Compact&) const = default;
};

// Grants a lease of `ttl_ms` (1..lease_ttl_ms_max). Lease ids are never reused: `id` 0 takes
// the next one from the state machine's counter; a given id (up to lease_id_max) must be at or
// above that counter (else LeaseExists), which then moves past it. Changes no node, so it takes
// no revision.
struct LeaseGrant {
  LeaseId id = 0;
  std::uint64_t ttl_ms = 0;

  bool operator==(const LeaseGrant&) const = default;
};

// Ends the lease and deletes every key attached to it, all in one new revision (none when it
// had no keys).
struct LeaseRevoke {
  LeaseId id = 0;

  bool operator==(const LeaseRevoke&) const = default;
};

// Confirms the lease exists and counts the keep-alive (LeaseResult::keepalives). It goes
// through the log so that only a leader whose term commits it can answer; the leader's host
// restarts the lease's countdown when it applies the entry.
struct LeaseKeepAlive {
  LeaseId id = 0;

  bool operator==(const LeaseKeepAlive&) const = default;
};

// Proposed by the leader's host when the lease's countdown ran out (never by clients): revokes
// it like LeaseRevoke, but only if no keep-alive was applied since the host decided, that is if
// the lease's keep-alive count still equals `keepalives`; otherwise it fails with LeaseRenewed
// and changes nothing. That closes the race between an expiry in flight and a keep-alive.
struct LeaseExpire {
  LeaseId id = 0;
  std::uint64_t keepalives = 0;

  bool operator==(const LeaseExpire&) const = default;
};

// Add new bodies at the end only (the flatbuffers union in command.fbs mirrors this order).
using Body = std::variant<Txn, Compact, LeaseGrant, LeaseRevoke, LeaseKeepAlive, LeaseExpire>;

struct Command {
  SessionId session_id = 0;  // 0: not de-duplicated
  std::uint64_t sequence = 0;
  Body body;

  bool operator==(const Command&) const = default;
};

struct OpResult {
  OpType type = OpType::Get;
  std::string path;          // the node acted on; a sequential create's full name
  std::optional<Node> node;  // Get: the node, when it exists
  bool created = false;      // Put: the node did not exist before
  std::uint64_t deleted = 0; // Delete: nodes removed (1 + descendants)

  bool operator==(const OpResult&) const = default;
};

// A lease as the state machine knows it: no time, only what every replica agrees on.
struct Lease {
  LeaseId id = 0;
  std::uint64_t ttl_ms = 0;
  std::uint64_t keepalives = 0;  // keep-alives applied since the grant

  bool operator==(const Lease&) const = default;
};

// What a lease command did (all zero for other commands and for failures).
struct LeaseResult {
  Lease lease;                       // Grant: the new lease; KeepAlive: after counting it;
                                     // Revoke, Expire: as it was when it ended
  std::vector<std::string> deleted;  // Revoke, Expire: its keys, deleted at Result::revision

  bool operator==(const LeaseResult&) const = default;
};

struct Result {
  Status status;
  Revision revision = 0;       // the store's revision after this request
  bool succeeded = true;       // Txn: the comparisons held and `success` ran
  std::int32_t failed_op = -1;       // index (in the chosen branch) of the operation that failed
  std::int32_t failed_compare = -1;  // CompareFailed: the first comparison that did not hold
  std::vector<OpResult> ops;
  LeaseResult lease;

  bool ok() const { return status.ok(); }
  bool operator==(const Result&) const = default;
};

// Builders for the common one-operation requests.
Txn single(Op op);
// Writes `value` only if the node's version is still `version`.
Txn compare_and_set_version(std::string path, std::uint64_t version, std::string value);
Txn compare_and_set_mod_revision(std::string path, Revision mod_revision, std::string value);
Txn compare_and_set_value(std::string path, std::string expected, std::string value);

const char* to_string(OpType type);

}  // namespace coord::kv
