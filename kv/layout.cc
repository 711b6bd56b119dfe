#include "kv/layout.h"

#include <utility>

namespace coord::kv {

namespace {

constexpr std::size_t u64_bytes = 8;
constexpr std::size_t record_fields = 7;  // the u64 fields after the kind byte
constexpr std::size_t record_header_bytes = 1 + record_fields * u64_bytes;

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

std::string encode_record(const NodeRecord& record) {
  std::string out;
  out.push_back(static_cast<char>(record.kind));
  if (record.kind == RecordKind::Tombstone) return out;
  const Node& n = record.node;
  const bool with_value = record.kind == RecordKind::Value;
  out.reserve(record_header_bytes + (with_value ? n.value.size() : 0));
  append_u64(out, n.create_revision);
  append_u64(out, n.mod_revision);
  append_u64(out, n.version);
  append_u64(out, n.num_children);
  append_u64(out, n.children_version);
  append_u64(out, n.lease);
  append_u64(out, record.sequence_next);
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
  if (bytes.size() < record_header_bytes) return std::nullopt;
  if (record.kind == RecordKind::Metadata && bytes.size() != record_header_bytes) {
    return std::nullopt;
  }
  Node& n = record.node;
  n.create_revision = read_u64(bytes, 1);
  n.mod_revision = read_u64(bytes, 1 + 1 * u64_bytes);
  n.version = read_u64(bytes, 1 + 2 * u64_bytes);
  n.num_children = read_u64(bytes, 1 + 3 * u64_bytes);
  n.children_version = read_u64(bytes, 1 + 4 * u64_bytes);
  n.lease = read_u64(bytes, 1 + 5 * u64_bytes);
  record.sequence_next = read_u64(bytes, 1 + 6 * u64_bytes);
  n.value.assign(bytes.substr(record_header_bytes));
  // Every live node was created before (or at) its last value change.
  if (n.create_revision > n.mod_revision) return std::nullopt;
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
