#include "kv/reads.h"

#include <memory>
#include <utility>

#include "kv/layout.h"
#include "kv/path.h"
#include "kv/versions.h"
#include "raft/assert.h"

namespace coord::kv {

namespace {

// Walks distinct paths in byte order through the Nodes table, whose rows are live nodes (key:
// path) and the version index (key: path \0 revision, right after the path's live row): at the
// current state it visits the live rows only; after a past revision every path with a row
// (paths that were absent then are still visited, with no node). Each step seeks past the
// path's versions. Values are looked up in Changes only when asked for.
class PathCursor {
 public:
  PathCursor(const ReadTxn& txn, ReadPoint at)
      : txn_(txn),
        at_(at),
        rows_(txn.cursor(Table::Nodes)),
        versions_(at.past ? txn.cursor(Table::Nodes) : nullptr) {}

  // The first path >= key.
  bool seek(std::string_view key) { return settle(rows_->seek(key)); }
  bool next() { return settle(rows_->seek(history_key_end(path_))); }
  bool valid() const { return valid_; }
  std::string_view path() const { return path_; }
  std::optional<Node> node(bool with_value) const {
    if (at_.past) return node_at(txn_, *versions_, path_, *at_.past, with_value);
    std::optional<NodeRecord> record = decode_record(rows_->value());
    COORD_ASSERT(record && record->kind == RecordKind::Metadata, "corrupt node record");
    if (with_value) resolve_value(txn_, path_, *record);
    return std::move(record->node);
  }
  // Whether the node exists at the read point: the index alone says so.
  bool present() const {
    if (!at_.past) return true;
    const std::optional<VersionRef> ref = version_at(*versions_, path_, *at_.past);
    return ref && ref->kind != RecordKind::Tombstone;
  }

 private:
  bool settle(bool found) {
    for (; found; found = rows_->seek(history_key_end(path_))) {
      const auto key = parse_history_key(rows_->key());
      if (!key) {  // a live row
        path_.assign(rows_->key());
        valid_ = true;
        return true;
      }
      path_.assign(key->path);
      // Versions without a live row before them: a node absent now, present in the past.
      if (at_.past) {
        valid_ = true;
        return true;
      }
    }
    valid_ = false;
    return false;
  }

  const ReadTxn& txn_;
  ReadPoint at_;
  std::unique_ptr<Cursor> rows_;
  std::unique_ptr<Cursor> versions_;
  std::string path_;
  bool valid_ = false;
};

// The smallest key after `path`, its live row and all of its versions, yet before its siblings
// that extend it ("/a/b" -> "/a/b\x01" < "/a/b-c" < "/a/b/c").
std::string after_path(std::string_view path) { return history_key_end(path); }

}  // namespace

std::optional<NodeRecord> read_record(const ReadTxn& txn, std::string_view path) {
  const auto row = txn.get(Table::Nodes, path);
  if (!row) return std::nullopt;
  std::optional<NodeRecord> record = decode_record(*row);
  COORD_ASSERT(record && record->kind == RecordKind::Metadata, "corrupt node record");
  resolve_value(txn, path, *record);
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
    const auto cursor = txn.cursor(Table::Nodes);
    return node_at(txn, *cursor, path, *at.past, /*with_value=*/true);
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
    if (cursor.present()) {
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
