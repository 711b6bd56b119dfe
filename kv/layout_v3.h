// Layout format 3's NodeRecord encoding, kept only to convert old data to format 4
// (kv/layout.h): a store opened in format 3 (upgrade_store_from_v3) and a format 3 snapshot
// being restored (parse_snapshot). Nothing writes format 3 but tests, which build old stores and
// snapshots with encode_record_v3 and snapshot_as_v3.
//
//   kind (1 byte); unless a tombstone, seven u64 big-endian: create_revision, mod_revision,
//   version, num_children, children_version, lease, sequence_next; a Value record's value.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "kv/layout.h"
#include "kv/storage.h"

namespace coord::kv {

std::string encode_record_v3(const NodeRecord& record);
std::optional<NodeRecord> decode_record_v3(std::string_view bytes);

// A format 3 record re-encoded in format 4, or nullopt when it does not decode.
std::optional<std::string> upgrade_record_v3(std::string_view bytes);

// Converts a store of layout format 3 to format 4 in one write transaction: every live node in
// Nodes and every row of Changes re-encoded, and the format meta row set to 4. The transaction
// commits all of it or nothing, so a crash leaves the store in format 3 (converted again at the
// next open) or wholly in format 4. Throws StorageError (storage_error_format) naming the key
// of a row that does not decode, leaving the store as it was.
void upgrade_store_from_v3(Storage& storage);

// A format 4 snapshot rewritten as format 3 would have written the same state (for tests and
// the fuzz corpus: building the old snapshots that restore must still take). nullopt when
// `snapshot` is not a valid format 4 snapshot.
std::optional<std::string> snapshot_as_v3(std::string_view snapshot);

}  // namespace coord::kv
