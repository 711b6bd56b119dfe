#include "kv/reads.h"

#include <memory>
#include <utility>

#include "kv/layout.h"
#include "kv/path.h"
#include "raft/assert.h"

namespace coord::kv {

namespace {

// A history row's record, checked as it is read back.
NodeRecord history_record(std::string_view bytes) {
  std::optional<NodeRecord> record = decode_record(bytes);
  COORD_ASSERT(record.has_value(), "corrupt history record");
  return std::move(*record);
}

// The value of a Metadata version lives in the row of the revision that last wrote it.
void resolve_value(const ReadTxn& txn, std::string_view path, NodeRecord& record) {
  if (record.kind != RecordKind::Metadata) return;
  const auto row = txn.get(Table::History, history_key(path, record.node.mod_revision));
  COORD_ASSERT(row.has_value(), "history lost the value of a retained version");
  NodeRecord data = history_record(*row);
  COORD_ASSERT(data.kind == RecordKind::Value, "a value version that holds no value");
  record.node.value = std::move(data.node.value);
  record.kind = RecordKind::Value;
}

// The node at `path` after revision `revision`, from the history; nullopt when absent then.
std::optional<Node> history_node(const ReadTxn& txn, Cursor& cursor, std::string_view path,
                                 Revision revision, bool with_value) {
  if (!cursor.seek_before(history_key(path, revision + 1))) return std::nullopt;
  const auto key = parse_history_key(cursor.key());
  COORD_ASSERT(key.has_value(), "corrupt history key");
  if (key->path != path) return std::nullopt;
  NodeRecord record = history_record(cursor.value());
  if (record.kind == RecordKind::Tombstone) return std::nullopt;
  if (with_value) resolve_value(txn, path, record);
  if (!with_value) record.node.value.clear();
  return std::move(record.node);
}

// Walks distinct paths in byte order, in the Nodes table (current state) or the History table
// (the state after a past revision; paths that were absent then are still visited, with no
// node).
class PathCursor {
 public:
  PathCursor(const ReadTxn& txn, ReadPoint at)
      : txn_(txn),
        at_(at),
        rows_(txn.cursor(at.past ? Table::History : Table::Nodes)),
        versions_(at.past ? txn.cursor(Table::History) : nullptr) {}

  // The first path >= key.
  bool seek(std::string_view key) { return settle(rows_->seek(key)); }
  bool next() {
    if (!at_.past) return settle(rows_->next());
    return settle(rows_->seek(history_key_end(path_)));
  }
  bool valid() const { return valid_; }
  std::string_view path() const { return path_; }
  std::optional<Node> node(bool with_value) const {
    if (at_.past) return history_node(txn_, *versions_, path_, *at_.past, with_value);
    std::optional<NodeRecord> record = decode_record(rows_->value());
    COORD_ASSERT(record && record->kind == RecordKind::Value, "corrupt node record");
    if (!with_value) record->node.value.clear();
    return std::move(record->node);
  }

 private:
  bool settle(bool found) {
    valid_ = found;
    if (!found) return false;
    if (at_.past) {
      const auto key = parse_history_key(rows_->key());
      COORD_ASSERT(key.has_value(), "corrupt history key");
      path_.assign(key->path);
    } else {
      path_.assign(rows_->key());
    }
    return true;
  }

  const ReadTxn& txn_;
  ReadPoint at_;
  std::unique_ptr<Cursor> rows_;
  std::unique_ptr<Cursor> versions_;
  std::string path_;
  bool valid_ = false;
};

// The smallest key after `path` and all of its versions, yet before its siblings that extend
// it ("/a/b" -> "/a/b\x01" < "/a/b-c" < "/a/b/c").
std::string after_path(std::string_view path) { return history_key_end(path); }

}  // namespace

std::optional<NodeRecord> read_record(const ReadTxn& txn, std::string_view path) {
  const auto row = txn.get(Table::Nodes, path);
  if (!row) return std::nullopt;
  std::optional<NodeRecord> record = decode_record(*row);
  COORD_ASSERT(record && record->kind == RecordKind::Value, "corrupt node record");
  return record;
}

std::optional<LeaseRecord> read_lease(const ReadTxn& txn, LeaseId lease) {
  const auto row = txn.get(Table::Leases, lease_key(lease));
  if (!row) return std::nullopt;
  std::optional<LeaseRecord> record = decode_lease(*row);
  COORD_ASSERT(record.has_value(), "corrupt lease record");
  return record;
}

std::vector<std::string> read_lease_keys(const ReadTxn& txn, LeaseId lease) {
  std::vector<std::string> keys;
  const std::string prefix = lease_keys_prefix(lease);
  const auto rows = txn.cursor(Table::LeaseKeys);
  for (bool found = rows->seek(prefix); found && rows->key().starts_with(prefix);
       found = rows->next()) {
    const auto key = parse_lease_keys_key(rows->key());
    COORD_ASSERT(key && key->lease == lease, "corrupt lease key");
    keys.emplace_back(key->path);
  }
  return keys;
}

std::vector<Lease> read_leases(const ReadTxn& txn) {
  std::vector<Lease> leases;
  const auto rows = txn.cursor(Table::Leases);
  for (bool found = rows->seek(""); found; found = rows->next()) {
    const auto id = parse_lease_key(rows->key());
    const auto record = decode_lease(rows->value());
    COORD_ASSERT(id && record, "corrupt lease row");
    leases.push_back(Lease{*id, record->ttl_ms, record->keepalives});
  }
  return leases;
}

std::optional<Node> read_node(const ReadTxn& txn, std::string_view path, ReadPoint at) {
  if (at.past) {
    const auto cursor = txn.cursor(Table::History);
    return history_node(txn, *cursor, path, *at.past, /*with_value=*/true);
  }
  std::optional<NodeRecord> record = read_record(txn, path);
  if (!record) return std::nullopt;
  return std::move(record->node);
}

ListPage read_children(const ReadTxn& txn, std::string_view path, std::string_view start_after,
                       std::size_t limit, ReadPoint at) {
  ListPage page;
  const std::string prefix = child_prefix(path);
  PathCursor cursor(txn, at);
  cursor.seek(start_after.empty() ? prefix : after_path(prefix + std::string(start_after)));
  while (cursor.valid() && cursor.path().starts_with(prefix)) {
    const std::string_view rest = cursor.path().substr(prefix.size());
    if (rest.empty()) {  // the root itself, under the prefix "/"
      cursor.next();
      continue;
    }
    if (const std::size_t slash = rest.find('/'); slash != std::string_view::npos) {
      // A grandchild: jump over the whole subtree of that child ('0' follows '/').
      cursor.seek(prefix + std::string(rest.substr(0, slash)) + '0');
      continue;
    }
    if (cursor.node(/*with_value=*/false)) {
      if (page.names.size() == limit) {
        page.more = true;
        break;
      }
      page.names.emplace_back(rest);
    }
    cursor.next();
  }
  return page;
}

RangePage read_range(const ReadTxn& txn, std::string_view path, std::string_view start_after,
                     std::size_t limit, std::size_t bytes_max, bool keys_only, ReadPoint at) {
  RangePage page;
  std::size_t bytes = 0;
  // False when the page is full: `more` is then set.
  const auto add = [&](std::string_view p, Node node) {
    if (page.nodes.size() == limit ||
        (!page.nodes.empty() && bytes + node.value.size() > bytes_max)) {
      page.more = true;
      return false;
    }
    bytes += node.value.size();
    page.nodes.push_back(KeyValue{std::string(p), std::move(node)});
    return true;
  };
  if (start_after < path) {
    if (auto node = read_node(txn, path, at)) {
      if (keys_only) node->value.clear();
      add(path, std::move(*node));
    }
  }
  const std::string prefix = child_prefix(path);
  std::string from = prefix;
  if (!start_after.empty()) from = std::max(from, after_path(start_after));
  PathCursor cursor(txn, at);
  cursor.seek(from);
  while (!page.more && cursor.valid() && cursor.path().starts_with(prefix)) {
    if (cursor.path().size() > prefix.size()) {  // not the root itself, under "/"
      if (auto node = cursor.node(!keys_only)) {
        if (!add(cursor.path(), std::move(*node))) break;
      }
    }
    cursor.next();
  }
  return page;
}

}  // namespace coord::kv
