#include "kv/layout.h"

#include <limits>
#include <utility>

#include "raft/assert.h"

namespace coord::kv {

namespace {

constexpr std::size_t u64_bytes = 8;

void append_u64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

std::uint64_t read_u64(std::string_view bytes, std::size_t at) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < u64_bytes; ++i)
    v = (v << 8) | static_cast<std::uint8_t>(bytes[at + i]);
  return v;
}

}  // namespace

std::string encode_u64(std::uint64_t v) {
  std::string out;
  out.reserve(u64_bytes);
  append_u64(out, v);
  return out;
}

std::optional<std::uint64_t> decode_u64(std::string_view bytes) {
  if (bytes.size() != u64_bytes) return std::nullopt;
  return read_u64(bytes, 0);
}

std::string history_key(std::string_view path, Revision revision) {
  std::string key;
  key.reserve(path.size() + 1 + u64_bytes);
  key.append(path);
  key.push_back('\0');
  append_u64(key, revision);
  return key;
}

std::string history_key_end(std::string_view path) {
  std::string key(path);
  key.push_back('\x01');
  return key;
}

std::optional<HistoryKey> parse_history_key(std::string_view key) {
  if (key.size() < 1 + u64_bytes + 1) return std::nullopt;
  const std::size_t nul = key.size() - u64_bytes - 1;
  if (key[nul] != '\0') return std::nullopt;
  return HistoryKey{key.substr(0, nul), read_u64(key, nul + 1)};
}

std::string change_key(Revision revision, std::string_view path) {
  std::string key;
  key.reserve(u64_bytes + path.size());
  append_u64(key, revision);
  key.append(path);
  return key;
}

std::optional<ChangeKey> parse_change_key(std::string_view key) {
  if (key.size() <= u64_bytes) return std::nullopt;
  return ChangeKey{read_u64(key, 0), key.substr(u64_bytes)};
}

std::string session_key(SessionId session) { return encode_u64(session); }

std::string session_lru_key(Index index, SessionId session) {
  std::string key;
  key.reserve(2 * u64_bytes);
  append_u64(key, index);
  append_u64(key, session);
  return key;
}

std::optional<SessionId> parse_session_lru_key(std::string_view key) {
  if (key.size() != 2 * u64_bytes) return std::nullopt;
  return read_u64(key, u64_bytes);
}

std::string lease_key(LeaseId lease) { return encode_u64(lease); }

std::optional<LeaseId> parse_lease_key(std::string_view key) { return decode_u64(key); }

std::string lease_keys_prefix(LeaseId lease) { return encode_u64(lease); }

std::string lease_keys_key(LeaseId lease, std::string_view path) {
  std::string key;
  key.reserve(u64_bytes + path.size());
  append_u64(key, lease);
  key.append(path);
  return key;
}

std::optional<LeaseKeysKey> parse_lease_keys_key(std::string_view key) {
  if (key.size() <= u64_bytes) return std::nullopt;
  return LeaseKeysKey{read_u64(key, 0), key.substr(u64_bytes)};
}

std::string encode_lease(const LeaseRecord& record) {
  std::string out;
  out.reserve(3 * u64_bytes);
  append_u64(out, record.ttl_ms);
  append_u64(out, record.keepalives);
  append_u64(out, record.keys);
  return out;
}

std::optional<LeaseRecord> decode_lease(std::string_view bytes) {
  if (bytes.size() != 3 * u64_bytes) return std::nullopt;
  LeaseRecord record;
  record.ttl_ms = read_u64(bytes, 0);
  record.keepalives = read_u64(bytes, u64_bytes);
  record.keys = read_u64(bytes, 2 * u64_bytes);
  if (record.ttl_ms == 0) return std::nullopt;
  return record;
}

// Format 4: the kind byte; for a Value or Metadata record then one byte saying which of the
// seven fields are non-zero (bit i for field i, in record_field order; bit 7 always clear), and
// each non-zero field as an unsigned LEB128 varint of minimal length; a Value record's value
// follows, to the end. mod_revision is stored as its distance from create_revision (never
// negative: a node is created before or when its value last changed), which is 0, so absent,
// for a node written once. Most fields of most nodes are 0 or small: a node created at
// revision 1,000,000 and never changed takes 5 bytes where format 3 took 57.
namespace {

constexpr std::size_t record_fields = 7;
constexpr std::size_t varint_bytes_max = 10;  // 64 bits, 7 per byte

void append_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// A non-zero varint of minimal length at `at` (which it advances), or nullopt: truncated, longer
// than 10 bytes, beyond 64 bits, zero, or with a final 0x00 byte (an overlong form). Only one
// encoding of each value is accepted, so records are canonical: equal records, equal bytes.
std::optional<std::uint64_t> read_varint(std::string_view bytes, std::size_t& at) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < varint_bytes_max; ++i) {
    if (at >= bytes.size()) return std::nullopt;
    const auto byte = static_cast<std::uint8_t>(bytes[at++]);
    const std::uint64_t bits = byte & 0x7f;
    if (i == varint_bytes_max - 1 && byte > 1) return std::nullopt;  // beyond 64 bits
    v |= bits << (7 * i);
    if ((byte & 0x80) == 0) {
      if (byte == 0) return std::nullopt;  // zero (absent fields are not written) or overlong
      return v;
    }
  }
  return std::nullopt;
}

}  // namespace

std::string encode_record(const NodeRecord& record) {
  std::string out;
  out.push_back(static_cast<char>(record.kind));
  if (record.kind == RecordKind::Tombstone) return out;
  const Node& n = record.node;
  COORD_ASSERT(n.create_revision <= n.mod_revision, "a node modified before its creation");
  const std::uint64_t fields[record_fields] = {n.create_revision, n.mod_revision - n.create_revision,
                                               n.version,         n.num_children,
                                               n.children_version, n.lease,
                                               record.sequence_next};
  std::uint8_t present = 0;
  for (std::size_t i = 0; i < record_fields; ++i) {
    if (fields[i] != 0) present |= static_cast<std::uint8_t>(1u << i);
  }
  const bool with_value = record.kind == RecordKind::Value;
  out.reserve(2 + record_fields * varint_bytes_max + (with_value ? n.value.size() : 0));
  out.push_back(static_cast<char>(present));
  for (std::uint64_t field : fields) {
    if (field != 0) append_varint(out, field);
  }
  if (with_value) out.append(n.value);
  return out;
}

std::optional<NodeRecord> decode_record(std::string_view bytes) {
  if (bytes.empty()) return std::nullopt;
  NodeRecord record;
  const auto kind = static_cast<std::uint8_t>(bytes[0]);
  if (kind < 1 || kind > 3) return std::nullopt;
  record.kind = static_cast<RecordKind>(kind);
  if (record.kind == RecordKind::Tombstone) {
    if (bytes.size() != 1) return std::nullopt;
    return record;
  }
  if (bytes.size() < 2) return std::nullopt;
  const auto present = static_cast<std::uint8_t>(bytes[1]);
  if ((present >> record_fields) != 0) return std::nullopt;  // no such field
  std::uint64_t fields[record_fields] = {};
  std::size_t at = 2;
  for (std::size_t i = 0; i < record_fields; ++i) {
    if ((present & (1u << i)) == 0) continue;
    const auto v = read_varint(bytes, at);
    if (!v) return std::nullopt;
    fields[i] = *v;
  }
  if (record.kind == RecordKind::Metadata && at != bytes.size()) return std::nullopt;
  Node& n = record.node;
  n.create_revision = fields[0];
  // The distance must not carry mod_revision past 2^64 - 1.
  if (fields[1] > std::numeric_limits<std::uint64_t>::max() - fields[0]) return std::nullopt;
  n.mod_revision = fields[0] + fields[1];
  n.version = fields[2];
  n.num_children = fields[3];
  n.children_version = fields[4];
  n.lease = fields[5];
  record.sequence_next = fields[6];
  n.value.assign(bytes.substr(at));
  return record;
}

std::string encode_kind(RecordKind kind) { return std::string(1, static_cast<char>(kind)); }

std::optional<RecordKind> decode_kind(std::string_view bytes) {
  if (bytes.size() != 1) return std::nullopt;
  const auto kind = static_cast<std::uint8_t>(bytes[0]);
  if (kind < 1 || kind > 3) return std::nullopt;
  return static_cast<RecordKind>(kind);
}

std::string encode_session(const SessionRecord& record) {
  std::string out;
  out.reserve(2 * u64_bytes + record.result.size());
  append_u64(out, record.sequence);
  append_u64(out, record.index);
  out.append(record.result);
  return out;
}

std::optional<SessionRecord> decode_session(std::string_view bytes) {
  if (bytes.size() < 2 * u64_bytes) return std::nullopt;
  SessionRecord record;
  record.sequence = read_u64(bytes, 0);
  record.index = read_u64(bytes, u64_bytes);
  record.result.assign(bytes.substr(2 * u64_bytes));
  return record;
}

}  // namespace coord::kv
