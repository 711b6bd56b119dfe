// How the state machine lays its data out in the storage tables (kv/storage.h). Integers in keys
// are big-endian so that byte order is numeric order; paths never contain bytes below 0x20
// (kv/path.h), so "\0" can end a path inside a key and sorts before every descendant "/...".
//
//   Meta        "applied_index" | "revision" | "compact_revision" | "format" | "session_count"
//               | "lease_next" | "lease_count" -> u64
//   Nodes       path -> NodeRecord (kind Metadata): the live node without its value; the value
//               is in the Changes row (mod_revision, path)
//               path \0 u64 revision -> RecordKind (1 byte): the version index, listing each
//               node's versions in Changes, oldest first, right after the node's live row (a
//               deleted node keeps its versions here until compaction), for reads at a past
//               revision and for compaction
//   Changes     u64 revision path -> NodeRecord (any kind): the node as it was after that
//               revision, the only place values are stored. Keys grow with the revision, so a
//               write appends at the end of the B-tree; (revision, path) order is the order
//               watchers receive events in
//   Sessions    u64 session -> SessionRecord
//   SessionLru  u64 last applied index u64 session -> "" (least recently used first)
//   Leases      u64 lease -> LeaseRecord
//   LeaseKeys   u64 lease path -> "": the keys of each lease, so revoking one finds its keys
//               without a scan; kept equal to {(node.lease, path) : node.lease != 0}
//
// Each value is stored once, and a write to a node dirties one random leaf page, in Nodes, where
// its live row and its new index row sit side by side; its value goes to the end of Changes.
// Walks over the live nodes seek past each path's index rows (history_key_end).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kv/command.h"
#include "kv/types.h"

namespace coord::kv {

// Bumped when the layout changes incompatibly. 2: the lease tables and meta rows. 3: values
// stored once, in Changes; Nodes without values, with the version index beside them; no History
// table. 4: NodeRecords with varint fields (encode_record). A format 3 store is converted when
// it is opened, a format 3 snapshot when it is restored (kv/layout_v3.h); other formats are
// refused.
inline constexpr std::uint64_t layout_format = 4;
// The older format this build still reads, converting it.
inline constexpr std::uint64_t layout_format_v3 = 3;

namespace meta_key {
inline constexpr std::string_view applied_index = "applied_index";
inline constexpr std::string_view revision = "revision";
inline constexpr std::string_view compact_revision = "compact_revision";
inline constexpr std::string_view format = "format";
inline constexpr std::string_view session_count = "session_count";
// Above every lease id ever granted: the id of the next grant without one (ids are never
// reused).
inline constexpr std::string_view lease_next = "lease_next";
inline constexpr std::string_view lease_count = "lease_count";
}  // namespace meta_key

std::string encode_u64(std::uint64_t v);  // 8 bytes, big-endian
std::optional<std::uint64_t> decode_u64(std::string_view bytes);

// --- Keys.
// The version index key of `path` at `revision` (a Nodes row); a live row's key is the path.
std::string history_key(std::string_view path, Revision revision);
// The first key after every version of `path` (and before any other path that sorts after it).
std::string history_key_end(std::string_view path);
struct HistoryKey {
  std::string_view path;
  Revision revision = 0;
};
// nullopt for a key that is not a version index key (a live row's path).
std::optional<HistoryKey> parse_history_key(std::string_view key);

std::string change_key(Revision revision, std::string_view path);
struct ChangeKey {
  Revision revision = 0;
  std::string_view path;
};
std::optional<ChangeKey> parse_change_key(std::string_view key);

std::string session_key(SessionId session);
std::string session_lru_key(Index index, SessionId session);
std::optional<SessionId> parse_session_lru_key(std::string_view key);

std::string lease_key(LeaseId lease);
std::optional<LeaseId> parse_lease_key(std::string_view key);
// Every key of one lease starts with lease_keys_prefix(lease).
std::string lease_keys_prefix(LeaseId lease);
std::string lease_keys_key(LeaseId lease, std::string_view path);
struct LeaseKeysKey {
  LeaseId lease = 0;
  std::string_view path;
};
std::optional<LeaseKeysKey> parse_lease_keys_key(std::string_view key);

// --- Records.
enum class RecordKind : std::uint8_t {
  Value = 1,      // a live node whose value was written at this revision, value included (a
                  // Changes row at mod_revision)
  Metadata = 2,   // a live node without its value: the Nodes table, and Changes rows where only
                  // its children changed. The value is in the Changes row at mod_revision
  Tombstone = 3,  // deleted at this revision
};

struct NodeRecord {
  RecordKind kind = RecordKind::Value;
  Node node;
  // The next sequential child's counter (10 digits): never reused while this node lives.
  std::uint64_t sequence_next = 0;

  bool operator==(const NodeRecord&) const = default;
};

// Format 4: kind byte; unless a tombstone, a byte flagging the non-zero fields, each of them as
// a minimal LEB128 varint (create_revision, mod_revision - create_revision, version,
// num_children, children_version, lease, sequence_next), then a Value record's value. Decoding
// is strict (nullopt for trailing bytes after a Metadata record, overlong or zero varints,
// fields beyond 64 bits, unknown flags), so every record has exactly one encoding.
std::string encode_record(const NodeRecord& record);
std::optional<NodeRecord> decode_record(std::string_view bytes);

// A version index row's value: the kind of the Changes row it lists.
std::string encode_kind(RecordKind kind);
std::optional<RecordKind> decode_kind(std::string_view bytes);

struct SessionRecord {
  std::uint64_t sequence = 0;  // the last sequence applied
  Index index = 0;             // where it was last used (for LRU eviction)
  std::string result;          // encoded Result of `sequence`
};
struct LeaseRecord {
  std::uint64_t ttl_ms = 0;
  std::uint64_t keepalives = 0;  // keep-alives applied since the grant
  std::uint64_t keys = 0;        // rows of this lease in LeaseKeys

  bool operator==(const LeaseRecord&) const = default;
};
std::string encode_lease(const LeaseRecord& record);
std::optional<LeaseRecord> decode_lease(std::string_view bytes);

std::string encode_session(const SessionRecord& record);
std::optional<SessionRecord> decode_session(std::string_view bytes);

}  // namespace coord::kv
