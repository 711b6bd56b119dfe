#include "kv/history.h"

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kv/layout.h"
#include "raft/assert.h"

namespace coord::kv {

namespace {

NodeRecord checked_record(std::string_view bytes) {
  std::optional<NodeRecord> record = decode_record(bytes);
  COORD_ASSERT(record.has_value(), "corrupt history record");
  return std::move(*record);
}

// The node as it was right before revision `revision`; nullopt when absent.
std::optional<Node> node_before(const ReadTxn& txn, Cursor& versions, std::string_view path,
                                Revision revision) {
  if (!versions.seek_before(history_key(path, revision))) return std::nullopt;
  const auto key = parse_history_key(versions.key());
  COORD_ASSERT(key.has_value(), "corrupt history key");
  if (key->path != path) return std::nullopt;
  NodeRecord record = checked_record(versions.value());
  if (record.kind == RecordKind::Tombstone) return std::nullopt;
  if (record.kind == RecordKind::Metadata) {
    const auto row = txn.get(Table::History, history_key(path, record.node.mod_revision));
    COORD_ASSERT(row.has_value(), "history lost the value of a retained version");
    NodeRecord data = checked_record(*row);
    COORD_ASSERT(data.kind == RecordKind::Value, "a value version that holds no value");
    record.node.value = std::move(data.node.value);
  }
  return std::move(record.node);
}

// The event the version (path, revision) stands for; none for a Metadata version.
std::optional<Event> event_of(const ReadTxn& txn, Cursor& versions, std::string_view path,
                              Revision revision, NodeRecord record) {
  Event event;
  event.path.assign(path);
  event.revision = revision;
  switch (record.kind) {
    case RecordKind::Metadata:
      return std::nullopt;
    case RecordKind::Tombstone:
      event.type = EventType::Deleted;
      event.prev = node_before(txn, versions, path, revision);
      COORD_ASSERT(event.prev.has_value(), "a deletion of a node that did not exist");
      return event;
    case RecordKind::Value:
      COORD_ASSERT(record.node.mod_revision == revision, "value version at a foreign revision");
      if (record.node.create_revision == revision) {
        event.type = EventType::Created;
      } else {
        event.type = EventType::Updated;
        event.prev = node_before(txn, versions, path, revision);
        COORD_ASSERT(event.prev.has_value(), "an update of a node that did not exist");
      }
      event.node = std::move(record.node);
      return event;
  }
  return std::nullopt;
}

// A key watcher reads its node's versions directly.
ReplayChunk replay_key(const ReadTxn& txn, std::string_view path, Revision from, Revision head,
                       std::size_t events_soft_max, std::size_t rows_max) {
  ReplayChunk chunk;
  const auto rows = txn.cursor(Table::History);
  const auto versions = txn.cursor(Table::History);
  std::size_t scanned = 0;
  for (bool found = rows->seek(history_key(path, from)); found; found = rows->next()) {
    const auto key = parse_history_key(rows->key());
    COORD_ASSERT(key.has_value(), "corrupt history key");
    if (key->path != path) break;
    COORD_ASSERT(key->revision <= head, "history beyond the head revision");
    // One version per revision, so every row is a revision boundary.
    if (chunk.events.size() >= events_soft_max || scanned >= rows_max) {
      chunk.next_revision = key->revision;
      return chunk;
    }
    ++scanned;
    if (auto event = event_of(txn, *versions, path, key->revision, checked_record(rows->value()))) {
      chunk.events.push_back(std::move(*event));
    }
  }
  chunk.next_revision = head + 1;
  chunk.reached_head = true;
  return chunk;
}

// Subtree and children watchers walk the Changes table, which is in (revision, path) order.
ReplayChunk replay_changes(const ReadTxn& txn, const WatchFilter& filter, Revision from,
                           Revision head, std::size_t events_soft_max, std::size_t rows_max) {
  ReplayChunk chunk;
  const auto rows = txn.cursor(Table::Changes);
  const auto versions = txn.cursor(Table::History);
  std::size_t scanned = 0;
  Revision last = 0;
  for (bool found = rows->seek(encode_u64(from)); found; found = rows->next()) {
    const auto key = parse_change_key(rows->key());
    COORD_ASSERT(key.has_value(), "corrupt change key");
    COORD_ASSERT(key->revision <= head, "a change beyond the head revision");
    if (key->revision != last && (chunk.events.size() >= events_soft_max || scanned >= rows_max)) {
      chunk.next_revision = key->revision;
      return chunk;
    }
    last = key->revision;
    ++scanned;
    const auto kind = decode_change_kind(rows->value());
    COORD_ASSERT(kind.has_value(), "corrupt change kind");
    if (*kind == ChangeKind::Metadata || !filter.matches(key->path)) continue;
    const auto row = txn.get(Table::History, history_key(key->path, key->revision));
    COORD_ASSERT(row.has_value(), "a change without its version");
    auto event = event_of(txn, *versions, key->path, key->revision, checked_record(*row));
    COORD_ASSERT(event.has_value(), "a change that is no event");
    chunk.events.push_back(std::move(*event));
  }
  chunk.next_revision = head + 1;
  chunk.reached_head = true;
  return chunk;
}

}  // namespace

ReplayChunk replay_history(const ReadTxn& txn, const WatchFilter& filter, Revision from,
                           Revision head, std::size_t events_soft_max, std::size_t rows_max) {
  if (filter.kind == WatchKind::Key) {
    return replay_key(txn, filter.path, from, head, events_soft_max, rows_max);
  }
  return replay_changes(txn, filter, from, head, events_soft_max, rows_max);
}

std::size_t compact_history(WriteTxn& txn, Revision revision) {
  // Which nodes changed below `revision`: only their versions can be superseded.
  std::set<std::string> paths;
  std::vector<std::string> doomed;
  {
    const auto rows = txn.cursor(Table::Changes);
    for (bool found = rows->seek(""); found; found = rows->next()) {
      const auto key = parse_change_key(rows->key());
      COORD_ASSERT(key.has_value(), "corrupt change key");
      if (key->revision >= revision) break;
      paths.emplace(key->path);
      doomed.emplace_back(rows->key());
    }
  }
  std::size_t removed = doomed.size();
  for (const std::string& key : doomed) txn.erase(Table::Changes, key);

  for (const std::string& path : paths) {
    struct Version {
      std::string key;
      Revision revision;
      RecordKind kind;
      Revision mod_revision;
    };
    std::vector<Version> below;  // versions below `revision`, oldest first
    {
      const auto rows = txn.cursor(Table::History);
      for (bool found = rows->seek(history_key(path, 0)); found; found = rows->next()) {
        const auto key = parse_history_key(rows->key());
        COORD_ASSERT(key.has_value(), "corrupt history key");
        if (key->path != path || key->revision >= revision) break;
        const NodeRecord record = checked_record(rows->value());
        below.push_back(Version{std::string(rows->key()), key->revision, record.kind,
                                record.node.mod_revision});
      }
    }
    if (below.empty()) continue;
    // Keep the newest version below the compaction point (a tombstone reads as absence, so it
    // goes too) and, for a Metadata version, the version holding its value.
    const Version& newest = below.back();
    Revision keep_a = 0, keep_b = 0;
    bool keep_any = newest.kind != RecordKind::Tombstone;
    if (keep_any) {
      keep_a = newest.revision;
      keep_b = newest.kind == RecordKind::Metadata ? newest.mod_revision : newest.revision;
    }
    bool value_kept = !keep_any || keep_b == keep_a;
    for (const Version& v : below) {
      if (keep_any && (v.revision == keep_a || v.revision == keep_b)) {
        if (v.revision == keep_b) value_kept = true;
        continue;
      }
      txn.erase(Table::History, v.key);
      ++removed;
    }
    COORD_ASSERT(value_kept, "compaction would drop the value of a retained version");
  }
  return removed;
}

}  // namespace coord::kv
