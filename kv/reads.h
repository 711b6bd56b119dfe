// Reads of the tree, at the current revision (the live rows of Nodes) or a past one (the version
// index beside them, into Changes). Both go through one PathCursor, so list and range have a
// single implementation for both.
// Reads never enter the Raft log: the host serves them locally once ReadIndex says so.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kv/command.h"
#include "kv/error.h"
#include "kv/layout.h"
#include "kv/storage.h"
#include "kv/types.h"

namespace coord::kv {

template <typename T>
struct ReadResult {
  Status status;
  Revision revision = 0;  // the revision the read was served at
  T value{};

  bool ok() const { return status.ok(); }
};

struct ListOptions {
  Revision revision = 0;    // 0: the current revision
  std::string start_after;  // a child name: the page starts after it ("" from the first)
  std::size_t limit = 0;    // 0 or above list_page_max: list_page_max
};

// Child names in byte order.
struct ListPage {
  std::vector<std::string> names;
  bool more = false;  // further children follow the last name

  bool operator==(const ListPage&) const = default;
};

struct RangeOptions {
  Revision revision = 0;    // 0: the current revision
  std::string start_after;  // a full path: the page starts after it ("" from the subtree's root)
  std::size_t limit = 0;    // 0 or above range_page_max: range_page_max
  bool keys_only = false;   // leave values out
};

struct KeyValue {
  std::string path;
  Node node;

  bool operator==(const KeyValue&) const = default;
};

// A subtree (its root first, then its descendants), in path byte order.
struct RangePage {
  std::vector<KeyValue> nodes;
  bool more = false;

  bool operator==(const RangePage&) const = default;
};

// Which state to read: the current one, or the one right after revision `past`.
struct ReadPoint {
  std::optional<Revision> past;
};

std::optional<Node> read_node(const ReadTxn& txn, std::string_view path, ReadPoint at);
ListPage read_children(const ReadTxn& txn, std::string_view path, std::string_view start_after,
                       std::size_t limit, ReadPoint at);
RangePage read_range(const ReadTxn& txn, std::string_view path, std::string_view start_after,
                     std::size_t limit, std::size_t bytes_max, bool keys_only, ReadPoint at);

// The live node record of `path` in the Nodes table, checked as it is read back, value
// included (from its Changes row): kind Value.
std::optional<NodeRecord> read_record(const ReadTxn& txn, std::string_view path);

// Leases are not versioned: they are read at the current state only.
std::optional<LeaseRecord> read_lease(const ReadTxn& txn, LeaseId lease);
// The keys attached to `lease`, in path order.
std::vector<std::string> read_lease_keys(const ReadTxn& txn, LeaseId lease);
// Every lease, by id.
std::vector<Lease> read_leases(const ReadTxn& txn);

// A lease and its keys (StateMachine::lease_ttl). The remaining time is not here: it lives on
// the leader's clock (kv/lease_clock.h).
struct LeaseInfo {
  Lease lease;
  std::vector<std::string> keys;  // path order

  bool operator==(const LeaseInfo&) const = default;
};

}  // namespace coord::kv
