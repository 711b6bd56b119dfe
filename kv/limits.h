// Every bound the state machine enforces, in one place. Fixed limits are constants (the storage
// layout depends on them); tunables live in Limits and must be identical on every replica,
// because a request refused by one replica and accepted by another would fork their states.
#pragma once

#include <cstddef>
#include <cstdint>

namespace coord::kv {

// A path is an LMDB key (nodes table) and part of other keys (history: path + 9 bytes; changes:
// 8 bytes + path). LMDB's compiled-in key limit is 511 bytes (mdb_env_get_maxkeysize); 480
// leaves 31 bytes for such prefixes and suffixes, so ordered scans over plain paths give sorted
// children and subtrees without any indirection.
inline constexpr std::size_t path_bytes_max = 480;
// One path segment (a node's name), as in most file systems.
inline constexpr std::size_t segment_bytes_max = 255;
// Sequential names end with the parent's counter, zero-padded to this many digits.
inline constexpr std::size_t sequence_digits = 10;
inline constexpr std::uint64_t sequence_max = 9'999'999'999;  // largest 10-digit counter
// Lease ids fit in a signed 64-bit integer, for clients whose languages have no unsigned one.
inline constexpr std::uint64_t lease_id_max = (std::uint64_t{1} << 63) - 1;
// Largest value_bytes_max a host may configure (flatbuffers and snapshot framing stay far below
// their 2 GiB / 4 GiB offsets).
inline constexpr std::size_t value_bytes_limit_max = 64u << 20;

struct Limits {
  // Bytes of one node's value.
  std::size_t value_bytes_max = 1u << 20;
  // Bytes of one encoded command (a Raft entry); bigger ones are refused with TooLarge.
  std::size_t command_bytes_max = 4u << 20;
  // Operations in one branch of a transaction, and comparisons in one transaction.
  std::size_t txn_ops_max = 128;
  std::size_t txn_compares_max = 128;
  // Value bytes returned by the Get operations of one transaction (results are remembered per
  // session, so they must stay small); must be at least value_bytes_max.
  std::size_t txn_read_bytes_max = 4u << 20;
  // Nodes one recursive delete may remove (each one becomes a watch event of that revision).
  std::size_t delete_nodes_max = 10'000;
  // Names in one page of list(), nodes and value bytes in one page of range().
  std::size_t list_page_max = 1'000;
  std::size_t range_page_max = 1'000;
  std::size_t range_page_bytes_max = 4u << 20;
  // Client sessions remembered for de-duplication; the least recently used (by applied index)
  // is forgotten first.
  std::size_t sessions_max = 10'000;
  // Watches: events buffered per watcher before it is cancelled, watchers per hub, and history
  // rows one poll may scan while a watcher catches up (finishing the revision it is in).
  std::size_t watch_buffer_events_max = 4'096;
  std::size_t watchers_max = 10'000;
  std::size_t watch_replay_rows_max = 10'000;
  // Leases alive at once; keys attached to one lease (revoking or expiring it deletes them all
  // in one revision, each a watch event, like a recursive delete); the longest TTL a grant may
  // ask for (it bounds the leader's deadlines, and a lease that long is better revoked).
  std::size_t leases_max = 100'000;
  std::size_t lease_keys_max = 10'000;
  std::uint64_t lease_ttl_ms_max = 24ull * 60 * 60 * 1000;
};

// True when the limits are usable together (checked when a StateMachine is built).
bool valid(const Limits& limits);

}  // namespace coord::kv
