// The snapshot format: a logical dump of every table, read in one consistent view.
//
// Why a logical dump rather than an LMDB file copy (mdb_env_copyfd2 with MDB_CP_COMPACT): it is
// the same for both backends (a simulator replica can install an LMDB replica's snapshot), it is
// deterministic (two replicas at one applied index produce identical bytes, which checkers and
// tests compare directly), and restoring it is one ordinary write transaction, atomic by LMDB's
// own guarantee, instead of swapping files under an open environment. The cost is re-inserting
// every row on restore, where a file copy would be installed as is.
//
//   "COORDKV\0"                      8 bytes
//   format, applied index, revision, compact revision, row count     u64 each, big-endian
//   rows, sorted by (table, key):    u8 table, u32 key size, key, u32 value size, value
//   FNV-1a 64 of everything above    u64
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "kv/error.h"
#include "kv/storage.h"
#include "kv/types.h"

namespace coord::kv {

struct SnapshotHeader {
  Index applied_index = 0;
  Revision revision = 0;
  Revision compact_revision = 0;
};

std::string dump_snapshot(const ReadTxn& view);

// Receives a snapshot's bytes in order, in pieces of about `snapshot_piece_bytes`.
using SnapshotSink = std::function<void(std::string_view)>;
inline constexpr std::size_t snapshot_piece_bytes = std::size_t{1} << 20;

// The same bytes as dump_snapshot, streamed: never more than a piece in memory, so a snapshot
// of any size can go straight to a file. Walks the view once (the header takes its row count from ReadTxn::rows).
void dump_snapshot(const ReadTxn& view, const SnapshotSink& sink);

struct SnapshotRow {
  Table table = Table::Meta;
  std::string_view key;
  std::string_view value;
};

struct ParsedSnapshot {
  Status status;  // InvalidRequest when the bytes are not a well-formed snapshot
  std::uint64_t format = 0;  // the layout format of the bytes (kv/layout.h)
  SnapshotHeader header;
  // Always in the current layout format: views into the parsed bytes, or, for the rows a format
  // 3 snapshot held in the old encoding, into `converted`.
  std::vector<SnapshotRow> rows;
  // The rows of a format 3 snapshot re-encoded in format 4 (a deque: its strings never move,
  // so the views into them stay valid as it grows and when the whole is moved).
  std::deque<std::string> converted;
};

// Checks a snapshot's bytes as they arrive, a piece at a time, without holding them: the magic,
// the format, that the header's applied index is the one expected, and the FNV-1a trailer over
// everything before it. A follower runs it on the chunks it receives, so that a damaged or torn
// snapshot is refused before the Raft log records it (parse_snapshot, run by restore, checks the
// rest: order and every record).
class SnapshotStreamCheck {
 public:
  explicit SnapshotStreamCheck(Index expected_applied_index) : expected_applied_(expected_applied_index) {}
  void update(std::string_view piece);
  // Every byte is in: Ok, or InvalidRequest saying what is wrong.
  Status finish() const;

 private:
  void hash(std::string_view bytes);

  Index expected_applied_ = 0;
  std::uint64_t size_ = 0;
  std::uint64_t hash_ = 14695981039346656037ull;  // FNV-1a 64 offset basis
  std::string head_;  // the first header bytes, kept to check them at the end
  std::string tail_;  // the last (at most 8) bytes, not hashed yet: they may be the trailer
};

// The checksum in a snapshot's trailer, of every byte before it (FNV-1a, 64 bits); exported for
// tests and fuzzers that build snapshots by hand.
std::uint64_t snapshot_checksum(std::string_view bytes);

// Checks everything that can be checked without applying it: framing, checksum, format, order,
// the header against the Meta rows, and that every record decodes. A snapshot of layout format 3
// is read too: its NodeRecords (and its format meta row) come back converted to the current
// format, so restoring it gives the state a current build would have written.
ParsedSnapshot parse_snapshot(std::string_view bytes);

}  // namespace coord::kv
