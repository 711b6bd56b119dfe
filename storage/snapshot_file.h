// A Raft snapshot's bytes in a file of their own, beside the log's LMDB environment, so that a
// snapshot of any size is never held in memory whole nor copied into LMDB pages: it is written
// a piece at a time (on whatever thread produces it), read through a read-only mapping (the
// core sends chunks of it; a state machine restores from it), and only its metadata (name, size,
// CRC-32C) is a record in the log (storage/README.md, "Snapshot files").
//
// A file is created as NAME.part, fsynced, renamed to NAME and the directory fsynced, so a name
// that exists holds every byte; the log records it only after that, and removes files it no
// longer records only after the record that replaced them committed.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "raft/types.h"

namespace coord::storage {

struct SnapshotFileInfo {
  std::string name;  // inside the log's directory: "snap-<index>-<nonce>.snap"
  std::uint64_t bytes = 0;
  std::uint32_t crc = 0;  // CRC-32C of every byte

  bool operator==(const SnapshotFileInfo&) const = default;
};

// A fresh name for a snapshot at `index`: unique even when a snapshot at the same index is
// written again (the old file may still be the recorded one).
std::string new_snapshot_file_name(raft::Index index);
// Whether `name` is one this module makes (finished or ".part").
bool is_snapshot_file_name(std::string_view name);

// Writes a new snapshot file in `directory`. Errors are LogStoreError (Full when the file system
// has no room, Io otherwise); an unfinished writer removes its ".part" file when destroyed.
class SnapshotFileWriter {
 public:
  SnapshotFileWriter(std::string directory, raft::Index index);
  ~SnapshotFileWriter();
  SnapshotFileWriter(const SnapshotFileWriter&) = delete;
  SnapshotFileWriter& operator=(const SnapshotFileWriter&) = delete;

  void append(std::string_view bytes);
  // fsync, rename into place, fsync the directory: the file is durable under info().name.
  // With `sync` false, only the rename: the file must be synced (SnapshotFile::sync) before a
  // log records it (a follower's loop thread receives chunks; the disk thread syncs them).
  SnapshotFileInfo finish(bool sync = true);

 private:
  std::string directory_;
  SnapshotFileInfo info_;
  std::string part_path_;
  int fd_ = -1;
};

// A finished snapshot file, mapped read-only: the core's SnapshotData. Mapping reads nothing;
// pages come in as they are read. The file may be unlinked while mapped (a newer snapshot
// replaced it): the mapping keeps its bytes.
class SnapshotFile final : public raft::SnapshotData {
 public:
  // Opens and maps DIR/info.name; LogStoreError{Corrupt} naming the file if it is missing or
  // its size is not info.bytes. Does not read it: see verify().
  // `durable`: known to be synced under its name (finished with sync, or recorded by a log).
  // `unlink_unless_recorded`: a file just made (received from a leader, written by a snapshot
  // worker) that no log records yet: removed when the last reference goes unless a log store
  // recorded it by then (mark_recorded), so that one the core or the host ends up ignoring
  // does not linger in the directory until the next open.
  static std::shared_ptr<const SnapshotFile> open(const std::string& directory, const SnapshotFileInfo& info,
                                                  bool durable = true, bool unlink_unless_recorded = false);
  ~SnapshotFile() override;
  SnapshotFile(const SnapshotFile&) = delete;
  SnapshotFile& operator=(const SnapshotFile&) = delete;

  std::string_view bytes() const override { return {data_, info_.bytes}; }
  const SnapshotFileInfo& info() const { return info_; }
  const std::string& directory() const { return directory_; }
  std::string path() const { return directory_ + "/" + info_.name; }
  // Reads every byte and checks the CRC-32C: LogStoreError{Corrupt} naming the file when it
  // differs (a torn or damaged file). Then lets go of the pages it read.
  void verify() const;
  // The same, asking `go_on(offset)` before each piece (8 MiB): false from it gives up, and
  // verify returns false, having said nothing about the file; true when it was read whole and
  // is intact. A thread that checks a large file this way can be stopped promptly.
  bool verify(const std::function<bool(std::uint64_t offset)>& go_on) const;
  // Drops the pages read so far from this process's resident set (they stay in the page cache).
  void release_pages() const;
  // Makes the file and its name durable (fsync of the file and its directory), unless known to be.
  void sync() const;
  // A log store committed a record naming this file: from now on the store removes it (when a
  // later record replaces it), never this object.
  void mark_recorded() const { recorded_ = true; }

 private:
  SnapshotFile(std::string directory, SnapshotFileInfo info) : directory_(std::move(directory)), info_(std::move(info)) {}

  std::string directory_;
  SnapshotFileInfo info_;
  const char* data_ = nullptr;
  std::size_t mapped_ = 0;
  mutable std::atomic<bool> durable_{true};
  bool unlink_unless_recorded_ = false;
  mutable std::atomic<bool> recorded_{false};
};

// Writes `bytes` as a new snapshot file of `directory` (a snapshot received whole in memory).
std::shared_ptr<const SnapshotFile> write_snapshot_file(const std::string& directory, raft::Index index,
                                                        std::string_view bytes);

// The snapshot index in a name this module made.
std::optional<raft::Index> snapshot_file_index(std::string_view name);

// After a log recorded `keep` (a snapshot at `index`): removes the finished snapshot files of
// `directory` it replaced, those at or below `index` but `keep`. Later ones are left alone: a
// follower's received snapshot waits in a Ready for its record. Best effort: what cannot be
// removed is left for the next time.
void remove_replaced_snapshot_files(const std::string& directory, const std::string& keep, raft::Index index);
// At open, when nothing can be writing: removes every snapshot file but `keep` (may be empty),
// finished or not.
void remove_snapshot_files_except(const std::string& directory, const std::string& keep);

}  // namespace coord::storage
