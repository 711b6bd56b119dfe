// WalLogStore's in-memory index of its entries: one chunk per Entries record (where it is and
// which of its entries are still the log's), and the log's terms as runs (a term and the index
// where it starts). Never the entries' data, and never one row per entry, so that it stays
// small next to the log: a read finds the records it needs here and reads them from the disk.
// Pure: no locking (the store holds its mutex around it), no I/O.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "raft/types.h"

namespace coord::storage {

struct WalChunk {
  std::uint64_t seq = 0;     // segment
  std::uint64_t offset = 0;  // of the record in it
  std::uint64_t bytes = 0;   // the record's framed size
  raft::Index record_first = 0;  // the record's first entry
  raft::Index first = 0;         // the first and last of its entries that are the log's
  raft::Index last = 0;
  // The data bytes of the record's entries when all of them are the log's, else 0: a lower
  // bound of what reading [first, last] yields, which bounds how many chunks a read collects.
  std::uint64_t data_bytes = 0;
};

class WalIndex {
 public:
  // A record holding `entries` (consecutive, non-empty): stored entries from its first index on
  // are replaced by them (Raft's truncation of a conflicting suffix).
  void append(WalChunk chunk, const std::vector<raft::Entry>& entries);
  void clear();
  // Entries up to `through` leave the index.
  void drop_through(raft::Index through);

  // Term of a stored entry; nullopt when it is not indexed.
  std::optional<raft::Term> term(raft::Index index) const;
  // The chunks a read of [lo, hi) with at most `max_bytes` of data needs, from the one holding
  // `lo` (none when lo is not indexed).
  std::vector<WalChunk> chunks_for(raft::Index lo, raft::Index hi, std::size_t max_bytes) const;
  // The segment of the oldest chunk (entries are in segment order too); nullopt when empty.
  std::optional<std::uint64_t> first_seq() const;

  std::size_t chunk_count() const { return chunks_.size(); }

 private:
  struct TermRun {
    raft::Index start;
    raft::Term term;
  };
  std::deque<WalChunk> chunks_;
  std::deque<TermRun> terms_;
};

}  // namespace coord::storage
