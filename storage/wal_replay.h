// WalLogStore's open: the records of its segments, replayed in order into the log's shape and
// its index, every checksum verified and every storage rule of log_shape.h checked; the end of
// the data found, and a torn write at the end of the last segment told apart from damage.
//
// A write is a group of records (storage/wal_records.h): applied only when its last record is
// there, so a torn write takes all of its records with it.
//
// Torn tail: a torn write is always the last write (each write is fdatasynced before the next
// begins). Only in the last segment, a record that does not check (bad checksum, length past
// the end of the file) is a write that never completed when (etcd's rule) some 512-byte sector
// overlapping it holds only zeros from the record's start (or the sector's) to the sector's
// end, and no valid record with the write-start bit (storage/wal_records.h) lies after it up
// to data_end: a later write would mean this record was written whole and damaged since. A
// zero length with non-zero bytes after it is searched the same way. The log then ends before
// it, and the store zeroes the rest of the segment before it appends, so that nothing of it can
// reappear after new data. Any other failure (a later write after a bad record, a bad record
// with no zeroed sector, one in an earlier segment, data after a non-last segment's end, a
// missing segment) is Corrupt, naming the file and the offset. Damage to the very last write
// (a flipped bit with zeros after it, a length flipped or zeroed in it) cannot be told from a
// torn write, and is taken for one: that write, acknowledged or not, is dropped.
//
// Relaxed start: drop_prefix deletes whole segments, and each segment begins with the snapshot
// and hard state as they stood (SnapshotHead, HardState), so the replay may start at any
// segment. When it does not start at segment 1 (until a SnapshotReplace restarts the log), an
// Entries record that follows an entry the replay has not seen (it was in a deleted segment;
// the head may name an older snapshot than a record further on) starts the replayed log, and a
// SnapshotSave may name an index below the first entry replayed. check_shape at the end still
// requires the entries to continue the final snapshot; a missing segment in between is a gap
// in the seqs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/log_shape.h"
#include "storage/wal_index.h"
#include "storage/wal_records.h"

namespace coord::storage {

class WalReplay {
 public:
  // Replays one segment's bytes (segments in order, consecutive seqs); `last`: the newest one.
  // Bytes after the records are checked to be zero up to `data_end` (WalSegment::data_end: past
  // it the file system holds no data). Throws LogStoreError{Corrupt} naming `path`.
  void segment(std::uint64_t seq, std::string_view bytes, bool last, const std::string& path,
               std::uint64_t data_end = UINT64_MAX);
  // The final shape checked; throws Corrupt (naming `directory`) when it breaks a rule.
  void finish(const std::string& directory);

  const LogShape& shape() const { return shape_; }
  WalIndex& index() { return index_; }
  std::uint64_t end() const { return end_; }  // where the last segment's records end
  // The newest segment holding records (and so its head); 0 when none does.
  std::uint64_t headed_seq() const { return headed_seq_; }
  // Bytes after end() in the last segment that are not zero end before this offset (0: none):
  // the rest of a torn write, to be zeroed before the next append.
  std::uint64_t dirty_until() const { return dirty_until_; }
  // What was found torn ("" when the log ended cleanly): for the host's log.
  const std::string& torn() const { return torn_; }

 private:
  // Applies one valid record; returns the rule it breaks, or "".
  std::string apply(std::uint64_t seq, std::uint64_t offset, std::uint64_t bytes, WalRecordType type,
                    std::string_view payload, bool segment_head);

  LogShape shape_;
  WalIndex index_;
  bool started_ = false;         // a record was replayed
  bool start_anywhere_ = false;  // segments were dropped, and no SnapshotReplace replayed yet
  std::uint64_t next_seq_ = 0;
  std::uint64_t end_ = 0;
  std::uint64_t headed_seq_ = 0;
  std::uint64_t dirty_until_ = 0;
  std::string torn_;
};

}  // namespace coord::storage
