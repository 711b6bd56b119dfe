#include "kv/history.h"

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kv/layout.h"
#include "kv/versions.h"
#include "raft/assert.h"

namespace coord::kv {

namespace {

NodeRecord checked_record(std::string_view bytes) {
  std::optional<NodeRecord> record = decode_record(bytes);
  COORD_ASSERT(record.has_value(), "corrupt version record");
  return std::move(*record);
}

// The node as it was right before revision `revision` (>= 1); nullopt when absent.
std::optional<Node> node_before(const ReadTxn& txn, Cursor& history, std::string_view path,
                                Revision revision) {
  return node_at(txn, history, path, revision - 1, /*with_value=*/true);
}

// The event the version (path, revision) stands for; none for a Metadata version.
std::optional<Event> event_of(const ReadTxn& txn, Cursor& history, std::string_view path,
                              Revision revision, NodeRecord record) {
  Event event;
  event.path.assign(path);
  event.revision = revision;
  switch (record.kind) {
    case RecordKind::Metadata:
      return std::nullopt;
    case RecordKind::Tombstone:
      event.type = EventType::Deleted;
      event.prev = node_before(txn, history, path, revision);
      COORD_ASSERT(event.prev.has_value(), "a deletion of a node that did not exist");
      return event;
    case RecordKind::Value:
      COORD_ASSERT(record.node.mod_revision == revision, "value version at a foreign revision");
      if (record.node.create_revision == revision) {
        event.type = EventType::Created;
      } else {
        event.type = EventType::Updated;
        event.prev = node_before(txn, history, path, revision);
        COORD_ASSERT(event.prev.has_value(), "an update of a node that did not exist");
      }
      event.node = std::move(record.node);
      return event;
  }
  return std::nullopt;
}

// A key watcher walks its node's entries in the version index (in Nodes); only those that are
// events are read from Changes.
ReplayChunk replay_key(const ReadTxn& txn, std::string_view path, Revision from, Revision head,
                       std::size_t events_soft_max, std::size_t rows_max) {
  ReplayChunk chunk;
  const auto rows = txn.cursor(Table::Nodes);
  const auto history = txn.cursor(Table::Nodes);
  std::size_t scanned = 0;
  for (bool found = rows->seek(history_key(path, from)); found; found = rows->next()) {
    const auto key = parse_history_key(rows->key());
    if (!key || key->path != path) break;  // past the last version of `path`
    COORD_ASSERT(key->revision <= head, "history beyond the head revision");
    // One version per revision, so every row is a revision boundary.
    if (chunk.events.size() >= events_soft_max || scanned >= rows_max) {
      chunk.next_revision = key->revision;
      return chunk;
    }
    ++scanned;
    const auto kind = decode_kind(rows->value());
    COORD_ASSERT(kind.has_value(), "corrupt history kind");
    if (*kind == RecordKind::Metadata) continue;
    NodeRecord record = read_version(txn, path, key->revision);
    COORD_ASSERT(record.kind == *kind, "history and changes disagree on a version's kind");
    if (auto event = event_of(txn, *history, path, key->revision, std::move(record))) {
      chunk.events.push_back(std::move(*event));
    }
  }
  chunk.next_revision = head + 1;
  chunk.reached_head = true;
  return chunk;
}

// Subtree and children watchers walk the Changes table, which is in (revision, path) order and
// holds the versions themselves.
ReplayChunk replay_changes(const ReadTxn& txn, const WatchFilter& filter, Revision from,
                           Revision head, std::size_t events_soft_max, std::size_t rows_max) {
  ReplayChunk chunk;
  const auto rows = txn.cursor(Table::Changes);
  const auto history = txn.cursor(Table::Nodes);
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
    if (!filter.matches(key->path)) continue;
    NodeRecord record = checked_record(rows->value());
    if (record.kind == RecordKind::Metadata) continue;
    auto event = event_of(txn, *history, key->path, key->revision, std::move(record));
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
  COORD_ASSERT(from >= 1, "replay from revision 0");
  if (filter.kind == WatchKind::Key) {
    return replay_key(txn, filter.path, from, head, events_soft_max, rows_max);
  }
  return replay_changes(txn, filter, from, head, events_soft_max, rows_max);
}

std::size_t compact_history(WriteTxn& txn, Revision previous, Revision revision) {
  // Only nodes that changed at or above the previous compaction point and below `revision` can
  // have versions to drop: every other node's versions below `revision` were already trimmed
  // to what a read at `previous` needs, which is what a read at `revision` needs too.
  std::set<std::string> paths;
  {
    const auto rows = txn.cursor(Table::Changes);
    for (bool found = rows->seek(encode_u64(previous)); found; found = rows->next()) {
      const auto key = parse_change_key(rows->key());
      COORD_ASSERT(key.has_value(), "corrupt change key");
      if (key->revision >= revision) break;
      paths.emplace(key->path);
    }
  }

  std::size_t removed = 0;
  for (const std::string& path : paths) {
    struct Version {
      Revision revision;
      RecordKind kind;
    };
    std::vector<Version> below;  // versions below `revision`, oldest first
    {
      const auto rows = txn.cursor(Table::Nodes);
      for (bool found = rows->seek(history_key(path, 0)); found; found = rows->next()) {
        const auto key = parse_history_key(rows->key());
        if (!key || key->path != path || key->revision >= revision) break;
        const auto kind = decode_kind(rows->value());
        COORD_ASSERT(kind.has_value(), "corrupt history kind");
        below.push_back(Version{key->revision, *kind});
      }
    }
    if (below.empty()) continue;
    // Keep the newest version below the compaction point (a tombstone reads as absence, so it
    // goes too) and, for a Metadata version, the version holding its value.
    const Version& newest = below.back();
    const bool keep_any = newest.kind != RecordKind::Tombstone;
    Revision keep_a = 0, keep_b = 0;
    if (keep_any) {
      keep_a = newest.revision;
      keep_b = newest.kind == RecordKind::Metadata
                   ? read_version(txn, path, newest.revision).node.mod_revision
                   : newest.revision;
    }
    bool value_kept = !keep_any;
    for (const Version& v : below) {
      if (keep_any && (v.revision == keep_a || v.revision == keep_b)) {
        if (v.revision == keep_b) value_kept = v.kind == RecordKind::Value;
        continue;
      }
      txn.erase(Table::Nodes, history_key(path, v.revision));
      txn.erase(Table::Changes, change_key(v.revision, path));
      removed += 2;
    }
    COORD_ASSERT(value_kept, "compaction would drop the value of a retained version");
  }
  return removed;
}

}  // namespace coord::kv
