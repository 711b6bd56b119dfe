// Reading a node's stored versions (since layout format 3, kv/layout.h): a value lives only in the
// Changes row of the revision that wrote it, so a record without one (the Nodes row, a Metadata
// version) gets it from the Changes row at its mod_revision, with one lookup. Shared by the
// reads (kv/reads.h), the transactions (kv/txn.h) and the watch replay (kv/history.h).
#pragma once

#include <optional>
#include <string_view>

#include "kv/layout.h"
#include "kv/storage.h"

namespace coord::kv {

// The Changes row of `path` at `revision`, which must exist (the version index lists it).
NodeRecord read_version(const ReadTxn& txn, std::string_view path, Revision revision);

// Gives a Metadata record its value; afterwards it is a Value record. Others stay as they are.
void resolve_value(const ReadTxn& txn, std::string_view path, NodeRecord& record);

// Where the newest version of `path` at or below `revision` is, per the version index.
struct VersionRef {
  Revision revision = 0;
  RecordKind kind = RecordKind::Value;
};
// `history` is a cursor on the Nodes table (which holds the version index); nullopt when `path`
// has no version that old.
std::optional<VersionRef> version_at(Cursor& history, std::string_view path, Revision revision);

// The node at `path` as it was after `revision`: nullopt when absent then. Without
// `with_value`, the node's value is left empty and not looked up.
std::optional<Node> node_at(const ReadTxn& txn, Cursor& history, std::string_view path,
                            Revision revision, bool with_value);

}  // namespace coord::kv
