// The on-disk backend: one LMDB environment (a directory holding data.mdb and lock.mdb) with one
// named database per table. LMDB gives what the state machine needs: write transactions that
// commit atomically (so after a crash the state is that of some applied index), and read
// transactions that see a fixed version while the writer continues (snapshots without
// stopping writes). Every value is stored behind a CRC-32C of its table, key and value
// (kv/record_checksum.h), checked on every read: damage is a StorageError with code
// MDB_CORRUPTED naming the file, the table and the key, never data.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kv/storage.h"

struct MDB_env;
struct MDB_txn;

namespace coord::kv {

class PageRoom;

struct LmdbOptions {
  std::string directory;  // created if missing
  // Upper bound on the database size (address space reserved; the file grows as needed).
  std::size_t map_bytes = std::size_t{1} << 30;
  // fsync on every commit. Off, a process crash still loses nothing (the page cache survives);
  // a machine crash may lose the latest commits but never tears one.
  bool sync = true;
  // Concurrent read transactions (reads plus snapshots in progress).
  unsigned readers_max = 126;
  // Read every row once at open and check its checksum (a StorageError naming the file, the
  // table and the key if one fails). Rows are checked whenever they are read anyway; this finds
  // damage before the store serves anything, at the cost of reading it all.
  bool verify = true;
  // Open with MDB_WRITEMAP: a commit changes its pages in place in the shared mapping rather
  // than writing each dirty page with pwrite, with the file's blocks allocated ahead so that a
  // full disk is still an ENOSPC error, never SIGBUS (kv/lmdb_page_room.h). Ignored (the store
  // opens without it) where this LMDB or this file system cannot allocate ahead.
  bool write_map = true;
};

class LmdbStorage final : public Storage {
 public:
  // Throws StorageError when the environment cannot be opened.
  explicit LmdbStorage(const LmdbOptions& options);
  ~LmdbStorage() override;
  LmdbStorage(const LmdbStorage&) = delete;
  LmdbStorage& operator=(const LmdbStorage&) = delete;

  std::unique_ptr<ReadTxn> read() override;
  std::unique_ptr<ReadTxn> pin() override;  // an LMDB read transaction; the env is MDB_NOTLS
  std::unique_ptr<WriteTxn> write() override;

  // Flushes every commit to disk (mdb_env_sync); with `sync` off, the owner calls it before it
  // relies on the file's durability. Throws StorageError.
  void sync();

  // Key bytes LMDB accepts (511 unless LMDB was built otherwise).
  std::size_t key_bytes_max() const override;

  // Whether the environment is open with MDB_WRITEMAP (LmdbOptions::write_map, where it works).
  bool write_map() const { return room_ != nullptr; }
  // Bytes of the data file with blocks allocated ahead (0 without MDB_WRITEMAP).
  std::uint64_t allocated_bytes() const;

 private:
  void open_env(const LmdbOptions& options, unsigned extra_flags);
  // With MDB_WRITEMAP: whether blocks can be kept ahead of the map (room_ set up), or not.
  bool start_page_room();
  // After falling back from MDB_WRITEMAP: drops the sparse tail that open gave the file.
  void cut_to_committed_pages();
  // Marks a new store as checksummed, or adds the checksums to one written without them.
  int add_checksums(MDB_txn* txn);
  void verify();

  std::string file_;  // DIR/data.mdb, for messages
  MDB_env* env_ = nullptr;
  std::array<unsigned, table_count> dbis_{};
  std::unique_ptr<PageRoom> room_;  // with MDB_WRITEMAP only
};

}  // namespace coord::kv
