#include "kv/layout_v3.h"

#include <fmt/format.h>

#include <utility>
#include <vector>

#include "kv/snapshot.h"

namespace coord::kv {

namespace {

constexpr std::size_t u64_bytes = 8;
constexpr std::size_t record_fields = 7;
constexpr std::size_t record_header_bytes = 1 + record_fields * u64_bytes;

void append_u64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

void append_u32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

std::uint32_t read_u32(std::string_view bytes, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<std::uint8_t>(bytes[at + i]);
  return v;
}

std::uint64_t read_u64(std::string_view bytes, std::size_t at) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < u64_bytes; ++i) v = (v << 8) | static_cast<std::uint8_t>(bytes[at + i]);
  return v;
}

// Whether a row of `table` holds a NodeRecord: every Changes row, and the live rows of Nodes
// (not its version index rows, whose one-byte kinds are the same in both formats).
bool holds_record(Table table, std::string_view key) {
  return table == Table::Changes || (table == Table::Nodes && !parse_history_key(key));
}

}  // namespace

std::string encode_record_v3(const NodeRecord& record) {
  std::string out;
  out.push_back(static_cast<char>(record.kind));
  if (record.kind == RecordKind::Tombstone) return out;
  const Node& n = record.node;
  for (std::uint64_t field : {n.create_revision, n.mod_revision, n.version, n.num_children,
                              n.children_version, n.lease, record.sequence_next}) {
    append_u64(out, field);
  }
  if (record.kind == RecordKind::Value) out.append(n.value);
  return out;
}

std::optional<NodeRecord> decode_record_v3(std::string_view bytes) {
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
  if (record.kind == RecordKind::Metadata && bytes.size() != record_header_bytes) return std::nullopt;
  Node& n = record.node;
  n.create_revision = read_u64(bytes, 1);
  n.mod_revision = read_u64(bytes, 1 + 1 * u64_bytes);
  n.version = read_u64(bytes, 1 + 2 * u64_bytes);
  n.num_children = read_u64(bytes, 1 + 3 * u64_bytes);
  n.children_version = read_u64(bytes, 1 + 4 * u64_bytes);
  n.lease = read_u64(bytes, 1 + 5 * u64_bytes);
  record.sequence_next = read_u64(bytes, 1 + 6 * u64_bytes);
  n.value.assign(bytes.substr(record_header_bytes));
  if (n.create_revision > n.mod_revision) return std::nullopt;
  return record;
}

std::optional<std::string> upgrade_record_v3(std::string_view bytes) {
  const auto record = decode_record_v3(bytes);
  if (!record) return std::nullopt;
  return encode_record(*record);
}

void upgrade_store_from_v3(Storage& storage) {
  const auto txn = storage.write();
  for (const Table table : {Table::Nodes, Table::Changes}) {
    // Every row, converted, in one buffer (u32 key size, key, u32 value size, value), then the
    // table cleared and written again in key order. Overwriting each row where it is would
    // leave every row on its page, each page as many as before but emptier (LMDB merges pages
    // only below a quarter full): the store would keep its format 3 size. Written in order into
    // an empty table the rows pack pages as appends do. The cost is the table's rows in memory
    // once, about what restoring a snapshot of the same state holds.
    std::string rows;
    std::uint64_t count = 0;
    {
      const auto cursor = txn->cursor(table);
      for (bool found = cursor->seek(""); found; found = cursor->next()) {
        std::string_view value = cursor->value();
        std::optional<std::string> upgraded;
        if (holds_record(table, cursor->key())) {
          upgraded = upgrade_record_v3(value);
          if (!upgraded) {
            throw StorageError(storage_error_format,
                               fmt::format("the state storage has layout format 3, but its row in table "
                                           "{}, key \"{}\", is not a format 3 record",
                                           table_name(table), cursor->key()));
          }
          value = *upgraded;
        }
        append_u32(rows, static_cast<std::uint32_t>(cursor->key().size()));
        rows.append(cursor->key());
        append_u32(rows, static_cast<std::uint32_t>(value.size()));
        rows.append(value);
        ++count;
      }
    }  // the cursor ends before the writes
    txn->clear(table);
    std::size_t at = 0;
    const auto take = [&]() {
      const std::uint32_t size = read_u32(rows, at);
      const std::string_view bytes = std::string_view(rows).substr(at + 4, size);
      at += 4 + size;
      return bytes;
    };
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::string_view key = take();
      const std::string_view value = take();
      txn->put(table, key, value);
    }
  }
  txn->put(Table::Meta, meta_key::format, encode_u64(layout_format));
  txn->commit();
}

std::optional<std::string> snapshot_as_v3(std::string_view snapshot) {
  const ParsedSnapshot parsed = parse_snapshot(snapshot);
  if (!parsed.status.ok() || parsed.format != layout_format) return std::nullopt;
  std::string out("COORDKV\0", 8);
  append_u64(out, layout_format_v3);
  append_u64(out, parsed.header.applied_index);
  append_u64(out, parsed.header.revision);
  append_u64(out, parsed.header.compact_revision);
  append_u64(out, parsed.rows.size());
  for (const SnapshotRow& row : parsed.rows) {
    std::string value(row.value);
    if (holds_record(row.table, row.key)) value = encode_record_v3(*decode_record(row.value));
    if (row.table == Table::Meta && row.key == meta_key::format) value = encode_u64(layout_format_v3);
    out.push_back(static_cast<char>(row.table));
    append_u32(out, static_cast<std::uint32_t>(row.key.size()));
    out.append(row.key);
    append_u32(out, static_cast<std::uint32_t>(value.size()));
    out.append(value);
  }
  append_u64(out, snapshot_checksum(out));
  return out;
}

}  // namespace coord::kv
