// The Raft log of a real server, on LMDB: hard state, the latest snapshot's metadata and the
// entries after it, in one environment (a directory) that only this process opens; the
// snapshot's bytes are a file of their own in that directory (storage/snapshot_file.h).
// It is the production twin of sim/disk.h and follows the same rules (raft/ready.h): a Ready's
// snapshot, entries and hard state go to disk in one write transaction, so a crash at any
// moment leaves the state before or after that Ready, never a mixture, and one commit (one
// fsync) covers the whole batch. See storage/README.md for the layout and the guarantees.
//
// Errors are LogStoreError exceptions. A refused or failed call that never reached the commit
// changed nothing, and the store stays usable, as after a Full error (no space: the commit
// failed before anything could become visible); any other failed commit leaves the disk in a state this
// process can no longer vouch for (an fsync error may have dropped pages silently), so the store
// refuses everything after it and the host must fail-stop and restart from load().
// Single-threaded: the host's event loop owns the store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "raft/node.h"
#include "raft/ready.h"
#include "raft/types.h"
#include "storage/log_records.h"
#include "storage/log_shape.h"
#include "storage/log_store_files.h"
#include "storage/log_store_error.h"
#include "storage/snapshot_file.h"

struct MDB_env;

namespace coord::storage {

// Address space reserved for the environment. The file grows only as pages are used, so a
// generous bound costs nothing until the log really is that big.
inline constexpr std::size_t log_map_bytes_default = std::size_t{64} << 30;

struct LogStoreOptions {
  std::size_t map_bytes = log_map_bytes_default;
};


class LmdbLogStore {
 public:
  // Opens (creating when missing) the store in `directory`. Throws LogStoreError.
  static std::unique_ptr<LmdbLogStore> open(const std::string& directory,
                                            const LogStoreOptions& options = {});
  ~LmdbLogStore();
  LmdbLogStore(const LmdbLogStore&) = delete;
  LmdbLogStore& operator=(const LmdbLogStore&) = delete;

  // Everything durable, every checksum verified: what raft::Node restarts from. `applied` is the
  // snapshot's index; a host whose state machine persists its own applied index raises it.
  raft::RestoreState load();

  // Persists the Ready's snapshot (replacing the whole log), entries (dropping the stored suffix
  // from entries[0].index first) and hard state in one transaction and one fsync. Messages,
  // committed entries and reads are not storage's business. A Ready with none of the three
  // costs nothing. A host seeds a brand-new store with its initial configuration by writing a
  // Ready whose snapshot is {index 0, term 0, conf}.
  void write(const raft::Ready& ready);

  // The host's own compaction, in two steps so that a crash between them leaves both the
  // snapshot and the log it covers, never neither: save_snapshot records a snapshot of the
  // state machine at meta.index (which must be in the stored log, with that term) and keeps
  // the log; drop_prefix(through) then deletes the entries up to `through` (at most the
  // snapshot's index; a host may keep some for lagging followers). Each is one transaction.
  // Snapshot bytes are stored as a file (storage/snapshot_file.h): `data` that is already a
  // SnapshotFile of this directory (written by the host, off the loop) is recorded as it is,
  // other bytes are first written to a new file (so is a Ready's snapshot). Only after the
  // commit are the files it replaced removed. Saving the stored snapshot's meta again records
  // new bytes for it (a host replacing a damaged file with a fresh snapshot of the same state).
  void save_snapshot(const raft::SnapshotMeta& meta, raft::SnapshotDataPtr data);
  void drop_prefix(raft::Index through);

  // Entries [lo, hi) by raft::RaftLog::slice's rule (the core's Config::read_entries): at least
  // one, none that would take the data past max_bytes; fewer (or none) when the log ends or lo
  // is not stored. Safe on the loop thread while the disk thread writes (its own read
  // transaction; no bookkeeping of this object is touched). Throws LogStoreError (Corrupt for a
  // damaged entry).
  std::vector<raft::Entry> read_entries(raft::Index lo, raft::Index hi, std::size_t max_bytes) const;

  const raft::HardState& hard_state() const { return shape_.hard_state; }
  const raft::SnapshotMeta& snapshot_meta() const { return shape_.snapshot.meta; }
  // The latest snapshot's bytes as a mapped file; null when it has none or they are in the
  // snapshot_data row of a store written before snapshot files (load() returns those).
  const std::shared_ptr<const SnapshotFile>& snapshot_file() const { return snapshot_file_; }
  // First stored entry (0 when none) and the log's last index (the snapshot's when no entry
  // follows it).
  raft::Index first_index() const { return shape_.first; }
  raft::Index last_index() const { return shape_.last_index(); }
  const LogShape& shape() const { return shape_; }
  LogStoreStats stats() const;
  bool failed() const { return failed_; }
  const std::string& directory() const { return directory_; }

 private:
  class Txn;

  LmdbLogStore() = default;
  void open_env(const LogStoreOptions& options);
  void check_usable() const;
  // Commits `txn`; on failure marks the store failed (see above) and throws.
  void commit(Txn& txn, const char* what);
  // Term of a stored entry, read inside `txn`.
  std::optional<raft::Term> stored_term(Txn& txn, raft::Index index);
  void truncate_from(Txn& txn, raft::Index index);
  void append(Txn& txn, const std::vector<raft::Entry>& entries);
  void put_snapshot(Txn& txn, const SnapshotRecord& record);
  // The transaction of write(Ready), up to its commit; `next` becomes the shape after it.
  void write_ready(Txn& txn, LogShape& next, const raft::Ready& ready, const SnapshotRecord* record);
  // `data` as a snapshot file of this directory: itself if it is one, else a new file.
  std::shared_ptr<const SnapshotFile> file_for(const raft::SnapshotMeta& meta, const raft::SnapshotDataPtr& data);
  // After a committed snapshot record: keep its file mapped, remove the files it replaced.
  void adopt_snapshot_file(std::shared_ptr<const SnapshotFile> file);

  std::string directory_;
  MDB_env* env_ = nullptr;
  unsigned entries_dbi_ = 0;
  unsigned meta_dbi_ = 0;
  int owner_lock_fd_ = -1;
  std::size_t map_bytes_ = 0;
  LogShape shape_;
  std::uint64_t commits_ = 0;
  bool failed_ = false;
  std::string scratch_;
  std::shared_ptr<const SnapshotFile> snapshot_file_;  // reused entry encoding buffer: one allocation per batch, not per entry
};

}  // namespace coord::storage
