// What the two Raft log stores (LmdbLogStore, WalLogStore) share around their own records: the
// directory and its owner lock, directory fsyncs, and the snapshot files beside the log
// (storage/snapshot_file.h) that both record the same way. Kept here so that the two stores
// cannot drift apart in how they treat a snapshot's bytes or a second process.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "raft/types.h"
#include "storage/log_records.h"
#include "storage/log_store_error.h"
#include "storage/snapshot_file.h"

namespace coord::storage {

struct LogStoreStats {
  raft::Index first_index = 0;  // first stored entry (0 when none; may be <= snapshot index)
  raft::Index last_index = 0;   // last index of the log, the snapshot's when no entry follows it
  std::uint64_t entry_count = 0;
  std::uint64_t snapshot_bytes = 0;
  std::uint64_t used_bytes = 0;  // LMDB: pages in use (the file's high-water mark); WAL: segment bytes
  std::uint64_t map_bytes = 0;   // LMDB's map; 0 for the WAL
  std::uint64_t commits = 0;     // durable writes since open, each one fsync (fdatasync)
};

std::string errno_text(int err);

// Makes a directory entry durable: without it a machine crash could lose a new file's name even
// though its contents were synced. A file system that cannot sync directories (EINVAL) has
// nothing to make durable.
void sync_directory(const std::string& path);

// Creates `directory` when missing (and then makes its name durable in its parent) and takes the
// exclusive flock on its owner.lock, held for as long as the returned descriptor is open: two
// servers appending to one Raft log would corrupt it without a trace. InUse when another store
// (in this process or another) holds it.
int lock_log_directory(const std::string& directory);

// `data` as a snapshot file of `directory`: itself if it is one (synced now: a follower's
// received file is synced on the disk thread), else a new file written from its bytes.
std::shared_ptr<const SnapshotFile> snapshot_file_for(const std::string& directory, raft::Index index,
                                                      const raft::SnapshotDataPtr& data);

// The record naming `file` (none: a snapshot without bytes).
SnapshotRecord snapshot_record_of(const raft::SnapshotMeta& meta, const SnapshotFile* file);

// What becomes of a snapshot file made for a record whose write failed with `kind` (`given`: the
// bytes the caller passed, which may be that very file). Full or Invalid: nothing was written,
// so the file goes (one the store wrote at once, the caller's own when its last reference
// drops). Any other failure may have made the record durable: the file is kept, as if
// recorded, and the next open decides. Public for its tests.
void after_failed_record(const std::shared_ptr<const SnapshotFile>& file, const raft::SnapshotDataPtr& given,
                         LogStoreError::Kind kind);

}  // namespace coord::storage
