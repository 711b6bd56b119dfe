// The Raft log of a real server as a write-ahead log: append-only segment files, one pwrite and
// one fdatasync per write. The same contract, API, errors and snapshot files as LmdbLogStore
// (storage/lmdb_log_store.h, raft/ready.h): a Ready's snapshot, entries and hard state become
// durable together (one buffer, one write, one fdatasync), a crash leaves the state before or
// after it; a call that breaks a storage rule is refused (Invalid) with nothing written; Full
// (no room for a new segment) leaves the store usable; any other failed write or sync marks it
// failed (after a failed fdatasync the kernel may have dropped the pages: restart from load()).
//
// Why beside LMDB: LMDB's commit is two sync barriers (data, then its meta page), keeps the
// log's pages resident in its map, and its prefix drop rewrites every leaf. Here a write is
// one barrier, the entries' data lives only on disk and in the page cache (memory holds one
// index row per record, storage/wal_index.h), and a prefix drop deletes whole segment files.
//
// Layout (storage/README.md): DIR/owner.lock, the snapshot files, and wal-<seq>.log segments,
// each preallocated (storage/wal_segment.h), holding records (storage/wal_records.h). Each
// segment begins with the snapshot and the hard state as they stood, so the segments from any
// one on replay on their own, which is what lets drop_prefix delete the older ones. A write
// that does not fit in the current segment goes to a new one (sized to fit when it is larger
// than segment_bytes). open() replays every segment (storage/wal_replay.h: checksums, storage
// rules, the torn-tail rule) and zeroes a torn write's remains before anything is appended.
//
// Torn writes: a torn write is always the last write (each one is fdatasynced before the next
// begins), and the first record of each write carries a write-start bit; a bad record in the
// last segment with a valid write-start record after it is damage (Corrupt), one with none
// after it (and a zeroed sector) is a torn write, and the log ends before it. What is still
// indistinguishable: damage to the very last write of the log, which was acknowledged, is
// taken for a torn write and that write is dropped (a vote or entries lost, as with etcd).
//
// After a reopen, first_index() may be lower than drop_prefix left it: entries it dropped that
// share a segment with kept ones come back (they are older than the snapshot; the rules allow
// it, as between save_snapshot and drop_prefix).
//
// Threads: the disk thread owns the store; read_entries may run on another thread at the same
// time (it touches only the index, under a mutex, and segment descriptors it holds a reference
// to, so a segment deleted meanwhile stays readable).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "raft/node.h"
#include "raft/ready.h"
#include "raft/types.h"
#include "storage/log_shape.h"
#include "storage/log_store_error.h"
#include "storage/log_store_files.h"
#include "storage/snapshot_file.h"
#include "storage/wal_index.h"
#include "storage/wal_records.h"
#include "storage/wal_segment.h"

namespace coord::storage {

inline constexpr std::uint64_t wal_segment_bytes_default = std::uint64_t{64} << 20;

struct WalLogStoreOptions {
  std::uint64_t segment_bytes = wal_segment_bytes_default;
};

class WalLogStore {
 public:
  // Opens (creating when missing) the store in `directory`, replaying every segment. Throws
  // LogStoreError (Corrupt naming the file and offset of a damaged record).
  static std::unique_ptr<WalLogStore> open(const std::string& directory, const WalLogStoreOptions& options = {});
  ~WalLogStore();
  WalLogStore(const WalLogStore&) = delete;
  WalLogStore& operator=(const WalLogStore&) = delete;

  // Everything durable, as LmdbLogStore::load: the entries after the snapshot, read back and
  // their checksums verified.
  raft::RestoreState load();
  // As LmdbLogStore::write: one record each for the snapshot, the entries and the hard state,
  // appended as one buffer with one pwrite and one fdatasync.
  void write(const raft::Ready& ready);
  // As LmdbLogStore's: save_snapshot appends a record (one fdatasync); drop_prefix deletes the
  // segments before the oldest one holding an entry after `through` (never the current one),
  // rewriting nothing.
  void save_snapshot(const raft::SnapshotMeta& meta, raft::SnapshotDataPtr data);
  void drop_prefix(raft::Index through);
  // As LmdbLogStore::read_entries; safe on another thread beside write and drop_prefix.
  std::vector<raft::Entry> read_entries(raft::Index lo, raft::Index hi, std::size_t max_bytes) const;

  const raft::HardState& hard_state() const { return shape_.hard_state; }
  const raft::SnapshotMeta& snapshot_meta() const { return shape_.snapshot.meta; }
  const std::shared_ptr<const SnapshotFile>& snapshot_file() const { return snapshot_file_; }
  raft::Index first_index() const { return shape_.first; }
  raft::Index last_index() const { return shape_.last_index(); }
  const LogShape& shape() const { return shape_; }
  LogStoreStats stats() const;
  bool failed() const { return failed_; }
  const std::string& directory() const { return directory_; }
  // What open() found torn at the end of the last segment ("" when nothing): for the host's log.
  const std::string& torn_tail() const { return torn_tail_; }

 private:
  // One record of a write, encoded once its place is known.
  struct Piece {
    WalRecordType type;
    std::string payload;                              // all but Entries
    const std::vector<raft::Entry>* entries = nullptr;  // Entries
  };
  struct Appended {
    std::uint64_t seq = 0;
    std::uint64_t entries_offset = 0;  // where the Entries piece went, if any
    std::uint64_t entries_bytes = 0;
  };

  WalLogStore() = default;
  void open_segments();
  void check_usable() const;
  // Writes `pieces` as one buffer (after the segment's head when it starts one, in a new segment
  // when they do not fit), then one fdatasync.
  Appended append(const std::vector<Piece>& pieces);
  // Starts segment seq+1 of at least `bytes`; Full/Io leave everything as it was.
  void rotate(std::uint64_t bytes);
  // A new segment file of segment_bytes (at least `bytes`), or, when the disk has no room for
  // that, of only what `bytes` needs (at least 1 MiB). Full when not even that fits.
  std::shared_ptr<WalSegment> create_segment(std::uint64_t seq, std::uint64_t bytes) const;
  std::optional<raft::Term> stored_term(raft::Index index) const;
  void adopt_snapshot_file(std::shared_ptr<const SnapshotFile> file);

  std::string directory_;
  int owner_lock_fd_ = -1;
  std::uint64_t segment_bytes_ = wal_segment_bytes_default;
  LogShape shape_;
  std::shared_ptr<const SnapshotFile> snapshot_file_;
  std::uint64_t end_ = 0;  // where the current (last) segment's records end
  std::uint64_t headed_seq_ = 0;  // the newest segment holding records (a head); 0: none
  std::uint64_t commits_ = 0;
  bool failed_ = false;
  std::string torn_tail_;
  std::string buffer_;  // reused: one allocation per growth, not per write

  // Guards what read_entries uses from another thread. The disk thread changes them only under
  // it, and reads them without it (nobody else writes them).
  mutable std::mutex mu_;
  WalIndex index_;
  std::deque<std::shared_ptr<WalSegment>> segments_;  // consecutive seqs; back() is current
};

}  // namespace coord::storage
