// The Raft log of a real server, on LMDB: hard state, the latest snapshot (metadata and bytes)
// and the entries after it, in one environment (a directory) that only this process opens.
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

struct MDB_env;

namespace coord::storage {

// Address space reserved for the environment. The file grows only as pages are used, so a
// generous bound costs nothing until the log really is that big.
inline constexpr std::size_t log_map_bytes_default = std::size_t{64} << 30;

struct LogStoreOptions {
  std::size_t map_bytes = log_map_bytes_default;
};

class LogStoreError : public std::runtime_error {
 public:
  enum class Kind : std::uint8_t {
    Io,       // the OS or LMDB failed (errno or LMDB code in code())
    Full,     // the map is full (MDB_MAP_FULL), one write is too big for a transaction, or the
              // file system has no room (ENOSPC, EDQUOT, a short write): nothing was written,
              // the store stays usable, and the same call may be retried
    Corrupt,  // a checksum, record or log invariant does not hold on disk
    Invalid,  // the caller broke a storage rule (a gap, a term going backwards, ...)
    InUse,    // another process (or another store in this one) has the directory open
    Failed,   // an earlier commit failed: the store refuses everything until reopened
  };

  LogStoreError(Kind kind, int code, const std::string& message)
      : std::runtime_error(message), kind_(kind), code_(code) {}

  Kind kind() const { return kind_; }
  int code() const { return code_; }  // LMDB or errno code; 0 when there is none

 private:
  Kind kind_;
  int code_;
};

const char* to_string(LogStoreError::Kind kind);

struct LogStoreStats {
  raft::Index first_index = 0;  // first stored entry (0 when none; may be <= snapshot index)
  raft::Index last_index = 0;   // last index of the log, the snapshot's when no entry follows it
  std::uint64_t entry_count = 0;
  std::uint64_t snapshot_bytes = 0;
  std::uint64_t used_bytes = 0;  // pages in use in the file (its high-water mark)
  std::uint64_t map_bytes = 0;
  std::uint64_t commits = 0;  // write transactions since open, each one fsync
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
  void save_snapshot(const raft::SnapshotMeta& meta, std::shared_ptr<const std::string> data);
  void drop_prefix(raft::Index through);

  const raft::HardState& hard_state() const { return shape_.hard_state; }
  const raft::SnapshotMeta& snapshot_meta() const { return shape_.snapshot.meta; }
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
  void put_snapshot(Txn& txn, const SnapshotRecord& record, const std::string* data);

  std::string directory_;
  MDB_env* env_ = nullptr;
  unsigned entries_dbi_ = 0;
  unsigned meta_dbi_ = 0;
  int owner_lock_fd_ = -1;
  std::size_t map_bytes_ = 0;
  LogShape shape_;
  std::uint64_t commits_ = 0;
  bool failed_ = false;
  std::string scratch_;  // reused entry encoding buffer: one allocation per batch, not per entry
};

}  // namespace coord::storage
