#include "kv/versions.h"

#include <utility>

#include "raft/assert.h"

namespace coord::kv {

NodeRecord read_version(const ReadTxn& txn, std::string_view path, Revision revision) {
  const auto row = txn.get(Table::Changes, change_key(revision, path));
  COORD_ASSERT(row.has_value(), "history indexes a version that Changes lost");
  std::optional<NodeRecord> record = decode_record(*row);
  COORD_ASSERT(record.has_value(), "corrupt version record");
  return std::move(*record);
}

void resolve_value(const ReadTxn& txn, std::string_view path, NodeRecord& record) {
  if (record.kind != RecordKind::Metadata) return;
  NodeRecord data = read_version(txn, path, record.node.mod_revision);
  COORD_ASSERT(data.kind == RecordKind::Value, "a value version that holds no value");
  record.node.value = std::move(data.node.value);
  record.kind = RecordKind::Value;
}

std::optional<VersionRef> version_at(Cursor& history, std::string_view path, Revision revision) {
  if (!history.seek_before(history_key(path, revision + 1))) return std::nullopt;
  // The row before is a version of `path` at or below `revision`, or else the live row of
  // `path` or a row of another path: no such version.
  const auto key = parse_history_key(history.key());
  if (!key || key->path != path) return std::nullopt;
  const auto kind = decode_kind(history.value());
  COORD_ASSERT(kind.has_value(), "corrupt history kind");
  return VersionRef{key->revision, *kind};
}

std::optional<Node> node_at(const ReadTxn& txn, Cursor& history, std::string_view path,
                            Revision revision, bool with_value) {
  const std::optional<VersionRef> ref = version_at(history, path, revision);
  if (!ref || ref->kind == RecordKind::Tombstone) return std::nullopt;
  NodeRecord record = read_version(txn, path, ref->revision);
  COORD_ASSERT(record.kind == ref->kind, "history and changes disagree on a version's kind");
  if (with_value) {
    resolve_value(txn, path, record);
  } else {
    record.node.value.clear();
  }
  return std::move(record.node);
}

}  // namespace coord::kv
